"""The built-in sample corpus: English prose from the Python installation itself.

Every Python ships its documentation: the language reference topics
(``pydoc_data.topics``) and the docstrings and comments of the standard
library. Those are real English prose written by many people, several MB of
it, free to redistribute (PSF licence, shipped beside it). We turn them into a
corpus in our text format, one document per topic or module and one sentence
per line, without importing any module (sources are parsed with ``ast``).

The package ships that text, built once from CPython ``SHIPPED_PYTHON``
(``resources/sample/``, 0.7 MB compressed), so that a first run is ready in a
second instead of parsing the standard library (3-7 s on two cores) and every
user trains on the same text whatever their Python. ``sample_corpus_path``
unpacks it into the user's cache folder; only a package without it (a trimmed
install) builds the text from the running Python instead.
``python -m workbench.data.sample --ship`` rebuilds the shipped copy.
"""

from __future__ import annotations

import argparse
import ast
import lzma
import os
import re
import shutil
import sys
import sysconfig
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

from workbench.data.sentences import split_sentences

SAMPLE_FORMAT = 2  # bump when the extraction below changes, so caches rebuild (2: fine-tuning packages left out)
SHIPPED_PYTHON = "3.11.7"  # the CPython whose documentation the shipped sample was built from

_ROLE = re.compile(r":[\w:.-]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_LITERAL = re.compile(r"``([^`]*)``|`([^`]*)`")
_RULE = re.compile(r"^[=\-~^*#+]{3,}$")
_LETTERS = re.compile(r"[A-Za-z]")


def shipped_sample() -> Path:
    """The compressed sample text inside the package (it may be missing from a trimmed install)."""
    from workbench.packaged import resource

    return resource(f"sample/python-docs-{SHIPPED_PYTHON}-v{SAMPLE_FORMAT}.txt.xz")


def sample_corpus_path(cache_dir: Path | None = None, progress: Callable[[int, int], None] | None = None) -> Path:
    """Path of the sample corpus file in the cache folder, made on first use: unpacked from the package
    (well under a second), or, where the package lacks it, built from this Python (3-7 s)."""
    if cache_dir is None:
        from workbench.user_folders import cache_folder

        cache_dir = cache_folder()
    cache_dir = Path(cache_dir)
    shipped = shipped_sample()
    version = SHIPPED_PYTHON if shipped.is_file() else ".".join(map(str, sys.version_info[:3]))
    path = cache_dir / f"python-docs-{version}-v{SAMPLE_FORMAT}.txt"
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".sample-", suffix=".txt")
    try:
        with os.fdopen(fd, "wb") as out:
            if shipped.is_file():
                with lzma.open(shipped) as packed:
                    shutil.copyfileobj(packed, out, 1 << 20)
                if progress:
                    progress(1, 1)
            else:
                write_sample(out, progress)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_sample(out, progress: Callable[[int, int], None] | None = None) -> None:
    """Build the sample text from this Python into the binary file ``out`` (UTF-8)."""
    for document in build_sample_documents(progress):
        out.write(("\n".join(document) + "\n\n").encode("utf-8"))


def build_sample_documents(progress: Callable[[int, int], None] | None = None) -> Iterable[list[str]]:
    """Yield documents (lists of sentences): language topics, then one per stdlib module."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions strip it
        topics = {}
    for name in sorted(topics):
        sentences = _prose_sentences(_paragraphs(topics[name].splitlines()))
        if len(sentences) >= 2:
            yield sentences
    files = _stdlib_sources()
    workers = max(1, min(4, os.cpu_count() or 1))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for i, sentences in enumerate(pool.map(module_sentences, files, chunksize=16)):
            if progress:
                progress(i + 1, len(files))
            if len(sentences) >= 2:
                yield sentences


def _stdlib_sources() -> list[str]:
    """Standard-library sources, without the packages of the built-in fine-tuning task (nothing of it is
    pre-trained on: see ``workbench.data.labelled``)."""
    from workbench.data.labelled import BUILTIN_PACKAGES

    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "dist-packages", "__pycache__", "lib2to3"}
    return [str(p) for p in sorted(root.rglob("*.py"))
            if not skip.intersection(p.parts) and p.relative_to(root).parts[0] not in BUILTIN_PACKAGES]


def module_sentences(path: str) -> list[str]:
    """Sentences of a module's docstrings and comment blocks, in source order."""
    try:
        source = Path(path).read_bytes().decode("utf-8")
        tree = ast.parse(source)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return []
    pieces: list[tuple[int, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                pieces.append((getattr(node, "lineno", 0), _paragraphs(doc.splitlines())))
    pieces.extend(_comment_blocks(source))
    pieces.sort(key=lambda item: item[0])
    return _prose_sentences(p for _, paragraphs in pieces for p in paragraphs)


def _comment_blocks(source: str) -> list[tuple[int, list[str]]]:
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for lineno, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#") and not stripped.startswith("#!"):
            text = stripped.lstrip("#").strip()
            if not current:
                start = lineno
            if text:
                current.append(text)
            elif current:
                blocks.append((start, [" ".join(current)]))
                current = []
            continue
        if current:
            blocks.append((start, [" ".join(current)]))
            current = []
    if current:
        blocks.append((start, [" ".join(current)]))
    return blocks


def _paragraphs(lines: list[str]) -> list[str]:
    """Unwrap text into paragraphs, dropping code blocks, doctests and rules."""
    out: list[str] = []
    current: list[str] = []
    for line in lines + [""]:
        stripped = line.strip()
        if not stripped:
            if current:
                out.append(" ".join(current))
                current = []
            continue
        indented = line[:1].isspace()
        if stripped.startswith((">>>", "...", "$ ", "%")) or _RULE.match(stripped):
            current = []  # a doctest or an underline: drop the paragraph it belongs to
            continue
        if indented and not current:
            continue  # an indented block: code, or a parameter table
        current.append(stripped)
    return out


def _clean(paragraph: str) -> str:
    paragraph = _ROLE.sub(r"\1", paragraph)
    paragraph = _LITERAL.sub(lambda m: m.group(1) or m.group(2) or "", paragraph)
    paragraph = paragraph.replace("::", ":")
    return " ".join(paragraph.split())


def _looks_like_prose(sentence: str) -> bool:
    words = sentence.split()
    if len(words) < 4 or len(sentence) > 1000:
        return False
    letters = len(_LETTERS.findall(sentence))
    if letters < 0.6 * len(sentence):
        return False
    if "copyright" in sentence.lower() or "license" in sentence.lower():
        return False
    return sentence[0].isupper() or sentence[0] in "\"'("


def _prose_sentences(paragraphs: Iterable[str]) -> list[str]:
    out = []
    for paragraph in paragraphs:
        for sentence in split_sentences(_clean(paragraph)):
            if _looks_like_prose(sentence):
                out.append(sentence)
    return out



def main(argv: list[str] | None = None) -> int:
    """``python -m workbench.data.sample --ship``: rebuild the shipped sample from this Python."""
    parser = argparse.ArgumentParser(prog="python -m workbench.data.sample", description=main.__doc__)
    parser.add_argument("--ship", action="store_true", help="write workbench/resources/sample/ from this Python")
    args = parser.parse_args(argv)
    if not args.ship:
        parser.print_help()
        return 0
    version = ".".join(map(str, sys.version_info[:3]))
    folder = shipped_sample().parent
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"python-docs-{version}-v{SAMPLE_FORMAT}.txt.xz"
    with lzma.open(target, "wb", preset=9 | lzma.PRESET_EXTREME) as out:
        write_sample(out)
    license_file = Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"
    if license_file.is_file():
        shutil.copyfile(license_file, folder / "LICENSE-Python.txt")
    print(f"wrote {target} ({target.stat().st_size:,} bytes); set SHIPPED_PYTHON = {version!r} and remove "
          f"older files in {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
