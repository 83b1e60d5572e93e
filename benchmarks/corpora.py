"""Corpora for the learning benchmarks, made offline, and their prepared datasets (cached).

* ``sample``: the built-in sample (Python's documentation; technical prose).
* ``debian``: Debian package descriptions (one document per package: the
  synopsis, then each paragraph of the long description), deduplicated, from
  apt's English translation lists. Container images often skip those lists;
  fetch them once with ``apt-get update -o Acquire::Languages=en``.

``python benchmarks/corpora.py`` builds both and prints their sizes.
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


def corpus_path(name: str) -> Path:
    if name == "sample":
        from workbench.data.sample import sample_corpus_path

        return Path(sample_corpus_path())
    if name == "debian":
        return debian_corpus(CACHE / "debian-descriptions.txt")
    raise SystemExit(f"unknown corpus {name!r} (sample, debian)")


def prepared(name: str, max_seq_length: int = 128):
    """The prepared dataset of a corpus with the default tokenizer settings (cached)."""
    from workbench.config import WorkbenchConfig
    from workbench.data.prepare import prepare_dataset

    config = WorkbenchConfig()
    config.data.max_seq_length = max_seq_length
    return prepare_dataset([corpus_path(name)], CACHE / f"{name}-{max_seq_length}", config).dataset


if __name__ == "__main__":
    for corpus in sys.argv[1:] or ["sample", "debian"]:
        dataset = prepared(corpus)
        print(json.dumps({"corpus": corpus, "path": str(dataset.path), **dataset.manifest["counts"]}))
