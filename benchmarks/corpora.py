"""Corpora for the learning benchmarks, made offline, and their prepared datasets (cached).

* ``sample``: the built-in sample (Python's documentation; technical prose).
* ``debian``: Debian package descriptions (one document per package: the
  synopsis, then each paragraph of the long description), deduplicated, from
  apt's English translation lists. Container images often skip those lists;
  fetch them once with ``apt-get update -o Acquire::Languages=en``.
* ``manpages``: German and French manual pages (``apt-get install manpages-de manpages-fr``),
  one document per page, its paragraphs as text (roff requests and escapes removed); another
  language and another kind of text than the two above, kept for validation.
* ``python``: Python source code, the standard library of the interpreter that runs the benchmark
  (one document per module, each non-blank line a sentence; tests and modules over 200 KB, which
  are mostly data tables, left out); not prose at all, a second validation corpus.

``python benchmarks/corpora.py`` builds all four and prints their sizes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CACHE = Path(os.environ.get("WORKBENCH_BENCH_CACHE", Path.home() / ".cache" / "pretrain-workbench-bench"))
MAX_DEBIAN_BYTES = 12_000_000   # about the size where 5 minutes of tiny training see each pair at most once


def debian_corpus(path: Path) -> Path:
    """Write the Debian package-description corpus to ``path`` (a .txt, blank line between documents)."""
    if path.exists():
        return path
    lists = sorted(Path("/var/lib/apt/lists").glob("*_main_i18n_Translation-en*"))
    if not lists:
        raise SystemExit("no Debian description lists: run `apt-get update -o Acquire::Languages=en` once first")
    text = "\n\n".join(subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", str(f)], capture_output=True,
                                      text=True, check=True).stdout for f in lists)
    seen: set[str] = set()
    documents: list[str] = []
    size = 0
    for stanza in text.split("\n\n"):
        lines = stanza.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("Description-en:"):
                synopsis = line[len("Description-en:"):].strip()
                paragraphs, current = [], []
                for extra in lines[i + 1:]:
                    if not extra.startswith(" "):
                        break
                    extra = extra.strip()
                    if extra == ".":
                        if current:
                            paragraphs.append(" ".join(current))
                        current = []
                    elif extra:
                        current.append(extra)
                if current:
                    paragraphs.append(" ".join(current))
                body = "\n".join([synopsis[0].upper() + synopsis[1:] + "."] + paragraphs) if synopsis else ""
                if paragraphs and body not in seen:
                    seen.add(body)
                    documents.append(body)
                    size += len(body)
                break
        if size > MAX_DEBIAN_BYTES:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(documents) + "\n", encoding="utf-8")
    return path


ROFF_GLYPHS = {":a": "ä", ":o": "ö", ":u": "ü", ":A": "Ä", ":O": "Ö", ":U": "Ü", "ss": "ß", ":e": "ë", ":i": "ï",
               "'e": "é", "'a": "á", "'E": "É", "`e": "è", "`a": "à", "`u": "ù", "^e": "ê", "^a": "â", "^i": "î",
               "^o": "ô", "^u": "û", ",c": "ç", ",C": "Ç", "Fo": "«", "Fc": "»", "fo": "‹", "fc": "›", "em": "—",
               "en": "–", "aq": "'", "cq": "'", "oq": "'", "dq": '"', "lq": '"', "rq": '"', "bu": "•", "co": "©",
               "rg": "®", "mu": "×", "de": "°", "hy": "-", "ha": "^", "ti": "~", "rs": "\\", "at": "@", "sh": "#",
               "Do": "$", "sl": "/", "lB": "[", "rB": "]", "lC": "{", "rC": "}", "la": "<", "ra": ">", "ga": "`"}
ROFF_ESCAPE = r"\\(?:\((..)|\[([^]]*)\]|[fF*](?:\(..|\[[^]]*\]|.)|s[-+]?\d+|(.))"


def _glyph(match) -> str:
    """One roff escape as text: named glyphs, ``\\[uXXXX]``, the common one-character escapes; fonts and
    strings dropped."""
    short, long, single = match.group(1), match.group(2), match.group(3)
    if short is not None:
        return ROFF_GLYPHS.get(short, "")
    if long is not None:
        if long.startswith("u") and all(c in "0123456789ABCDEFabcdef" for c in long[1:]) and len(long) > 1:
            return chr(int(long[1:], 16))
        return ROFF_GLYPHS.get(long, "")
    return {"-": "-", "e": "\\", " ": " ", "~": " "}.get(single or "", "")


TEXT_MACROS = {"B", "I", "BR", "BI", "IB", "IR", "RB", "RI", "SM", "SB"}
BREAK_MACROS = {"SH", "SS", "PP", "P", "LP", "TP", "IP", "HP", "sp", "br", "RS", "RE", "EX", "EE", "nf", "fi"}


def roff_text(source: str) -> str:
    """The paragraphs of a manual page's roff source as plain text, one per line."""
    import re

    escape = re.compile(ROFF_ESCAPE)
    paragraphs, current = [], []

    def clean(text: str) -> str:
        return escape.sub(_glyph, text).strip()

    for line in source.splitlines():
        if line.startswith((".\\\"", "'\\\"", '.\\"', "'\\\"")):
            continue
        if line.startswith((".", "'")):
            macro, _, rest = line[1:].strip().partition(" ")
            if macro in BREAK_MACROS:
                if current:
                    paragraphs.append(" ".join(current))
                current = []
                if macro in ("SH", "SS") and rest:
                    paragraphs.append(clean(rest.replace('"', "")).capitalize())
            elif macro in TEXT_MACROS and rest:
                current.append(clean(rest.replace('"', "")))
            continue
        text = clean(line)
        if text:
            current.append(text)
    if current:
        paragraphs.append(" ".join(current))
    return "\n".join(p for p in paragraphs if len(p) >= 3)


def manpages_corpus(path: Path) -> Path:
    """Write the German and French manual-page corpus to ``path`` (a .txt, blank line between pages)."""
    import gzip

    if path.exists():
        return path
    pages = sorted(p for language in ("de", "fr") for p in Path("/usr/share/man", language).rglob("*")
                   if p.is_file())
    if len(pages) < 500:
        raise SystemExit("too few German/French manual pages: run `apt-get install manpages-de manpages-fr` first")
    texts = (roff_text((gzip.decompress(page.read_bytes()) if page.suffix == ".gz" else page.read_bytes())
                       .decode("utf-8", errors="replace")) for page in pages)
    return write_documents(path, texts)


def write_documents(path: Path, texts) -> Path:
    """Write the texts of at least four lines, in order, until the corpus passes ``MAX_DEBIAN_BYTES``."""
    documents, size = [], 0
    for text in texts:
        if text.count("\n") >= 3:
            documents.append(text)
            size += len(text)
        if size > MAX_DEBIAN_BYTES:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(documents) + "\n", encoding="utf-8")
    return path


MAX_MODULE_BYTES = 200_000


def python_corpus(path: Path) -> Path:
    """Write the Python-source corpus to ``path`` (a .txt, blank line between modules)."""
    import sysconfig

    if path.exists():
        return path
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    modules = sorted(f for f in stdlib.rglob("*.py")
                     if not {"site-packages", "dist-packages", "test", "tests"} & set(f.relative_to(stdlib).parts)
                     and f.stat().st_size <= MAX_MODULE_BYTES)
    texts = ("\n".join(line.rstrip() for line in module.read_text(encoding="utf-8", errors="replace").splitlines()
                       if line.strip()) for module in modules)
    return write_documents(path, texts)


CORPORA = ("sample", "debian", "manpages", "python")


def corpus_path(name: str) -> Path:
    if name == "sample":
        from workbench.data.sample import sample_corpus_path

        return Path(sample_corpus_path())
    if name == "debian":
        return debian_corpus(CACHE / "debian-descriptions.txt")
    if name == "manpages":
        return manpages_corpus(CACHE / "manpages-de-fr.txt")
    if name == "python":
        return python_corpus(CACHE / "python-stdlib.txt")
    raise SystemExit(f"unknown corpus {name!r} ({', '.join(CORPORA)})")


def prepared(name: str, max_seq_length: int = 128):
    """The prepared dataset of a corpus with the default tokenizer settings (cached)."""
    from workbench.config import WorkbenchConfig
    from workbench.data.prepare import prepare_dataset

    config = WorkbenchConfig()
    config.data.max_seq_length = max_seq_length
    return prepare_dataset([corpus_path(name)], CACHE / f"{name}-{max_seq_length}", config).dataset


if __name__ == "__main__":
    for corpus in sys.argv[1:] or CORPORA:
        dataset = prepared(corpus)
        print(json.dumps({"corpus": corpus, "path": str(dataset.path), **dataset.manifest["counts"]}))
