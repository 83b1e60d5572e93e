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
import lzma
import os
import shutil
import sys
import sysconfig
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

from workbench.data.stdlib_text import HELD_OUT_PACKAGES, module_sentences, paragraphs, prose_sentences

SAMPLE_FORMAT = 2  # bump when the extraction below changes, so caches rebuild (2: fine-tuning packages left out)
SHIPPED_PYTHON = "3.11.7"  # the CPython whose documentation the shipped sample was built from



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
        sentences = prose_sentences(paragraphs(topics[name].splitlines()))
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
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "dist-packages", "__pycache__", "lib2to3"}
    return [str(p) for p in sorted(root.rglob("*.py"))
            if not skip.intersection(p.parts) and p.relative_to(root).parts[0] not in HELD_OUT_PACKAGES]



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
