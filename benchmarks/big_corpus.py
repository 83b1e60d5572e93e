"""A multi-gigabyte corpus made offline from text on this machine, plain and zstd-compressed.

    python benchmarks/big_corpus.py [--gigabytes 2.2]

Writes ``big-corpus.jsonl`` (one document per record, its text in ``text``) and
``big-corpus.jsonl.zst`` (the same bytes, zstd level 3) to the benchmark cache
(``WORKBENCH_BENCH_CACHE``, default ``~/.cache/pretrain-workbench-bench``).

Documents, in a fixed order: every Python source file on the machine (sorted by
path, duplicates by content dropped), the Debian package descriptions and the
German and French man pages of ``benchmarks/corpora.py``. When these come to
less than the size asked for, they are written again, in the same order, until
the size is reached (a second pass adds bytes, not new words: the output says
how many bytes are distinct).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpora import CACHE, corpus_path  # noqa: E402

SKIP = ("/proc", "/sys", "/dev", "/tmp", "/run", str(CACHE))


def python_sources() -> list[Path]:
    found = []
    for root, dirs, names in os.walk("/"):
        if root.startswith(SKIP):
            dirs[:] = []
            continue
        dirs.sort()
        found.extend(Path(root) / name for name in sorted(names) if name.endswith(".py"))
    return found


def documents() -> Iterator[str]:
    seen: set[bytes] = set()
    for path in python_sources():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        digest = hashlib.sha1(text.encode()).digest()
        if len(text) < 200 or digest in seen:
            continue
        seen.add(digest)
        yield text
    for name in ("debian", "manpages"):
        document: list[str] = []
        for line in open(corpus_path(name), encoding="utf-8"):
            if line.strip():
                document.append(line.rstrip("\n"))
            elif document:
                yield "\n".join(document)
                document = []
        if document:
            yield "\n".join(document)


def build(gigabytes: float) -> dict:
    import zstandard

    plain, packed = CACHE / "big-corpus.jsonl", CACHE / "big-corpus.jsonl.zst"
    wanted = int(gigabytes * 1e9)
    if plain.exists() and packed.exists() and plain.stat().st_size >= wanted:
        return {"plain": str(plain), "plain_bytes": plain.stat().st_size, "zstd": str(packed),
                "zstd_bytes": packed.stat().st_size, "reused": True}
    CACHE.mkdir(parents=True, exist_ok=True)
    written = distinct = passes = 0
    with open(plain.with_suffix(".partial"), "wb") as out, open(packed.with_suffix(".partial"), "wb") as raw:
        with zstandard.ZstdCompressor(level=3).stream_writer(raw) as compressed:
            while written < wanted:
                passes += 1
                for text in documents():
                    line = (json.dumps({"text": text}, ensure_ascii=False) + "\n").encode("utf-8")
                    out.write(line)
                    compressed.write(line)
                    written += len(line)
                    if passes == 1:
                        distinct += len(line)
                    if written >= wanted:
                        break
    plain.with_suffix(".partial").replace(plain)
    packed.with_suffix(".partial").replace(packed)
    return {"plain": str(plain), "plain_bytes": written, "distinct_bytes": distinct, "passes": passes,
            "zstd": str(packed), "zstd_bytes": packed.stat().st_size, "reused": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=2.2)
    print(json.dumps(build(parser.parse_args().gigabytes), indent=1))


if __name__ == "__main__":
    main()
