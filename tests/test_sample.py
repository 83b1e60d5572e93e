"""The built-in sample corpus: real prose from the Python installation, built offline."""

from __future__ import annotations

import io
import lzma
import sys
import sysconfig
from pathlib import Path

import pytest

from workbench.data.corpus import read_corpus
from workbench.data.sample import (SAMPLE_FORMAT, SHIPPED_PYTHON, module_sentences, sample_corpus_path, shipped_sample,
                                   write_sample)


def test_module_sentences_are_prose_from_docstrings_and_comments():
    path = Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py"
    sentences = module_sentences(str(path))
    assert len(sentences) > 20
    assert all(s[0].isupper() or s[0] in "\"'(" for s in sentences)
    assert not any(s.startswith(">>>") for s in sentences)
    assert any("whitespace" in s.lower() for s in sentences)


def test_the_shipped_sample_unpacks_into_the_cache_once(tmp_path):
    calls = []
    path = sample_corpus_path(tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert path.name == f"python-docs-{SHIPPED_PYTHON}-v{SAMPLE_FORMAT}.txt" and calls == [(1, 1)]
    assert path.stat().st_size > 2_500_000
    documents = list(read_corpus([path]))
    assert len(documents) > 800
    assert sum(len(d.sentences) for d in documents) > 30_000
    assert sample_corpus_path(tmp_path) == path  # cached: the second call unpacks nothing
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sample-")]
    assert (shipped_sample().parent / "LICENSE-Python.txt").is_file()   # the PSF licence travels with it


@pytest.mark.slow
def test_the_sample_builds_from_this_python_as_the_shipped_one_was_built():
    calls = []
    out = io.BytesIO()
    write_sample(out, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1] > 500
    built = out.getvalue()
    assert len(built) > 2_500_000 and b"\n\n" in built
    if ".".join(map(str, sys.version_info[:3])) == SHIPPED_PYTHON:
        assert built == lzma.decompress(shipped_sample().read_bytes())  # the shipped copy is reproducible
