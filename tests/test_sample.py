"""The built-in sample corpus: real prose from the Python installation, built offline."""

from __future__ import annotations

import sysconfig
from pathlib import Path

from workbench.data.corpus import read_corpus
from workbench.data.sample import module_sentences, sample_corpus_path


def test_module_sentences_are_prose_from_docstrings_and_comments():
    path = Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py"
    sentences = module_sentences(str(path))
    assert len(sentences) > 20
    assert all(s[0].isupper() or s[0] in "\"'(" for s in sentences)
    assert not any(s.startswith(">>>") for s in sentences)
    assert any("whitespace" in s.lower() for s in sentences)


def test_sample_corpus_is_several_megabytes_of_documents(tmp_path):
    calls = []
    path = sample_corpus_path(tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert path.stat().st_size > 2_500_000
    assert calls and calls[-1][0] == calls[-1][1]
    documents = list(read_corpus([path]))
    assert len(documents) > 800
    assert sum(len(d.sentences) for d in documents) > 30_000
    assert sample_corpus_path(tmp_path) == path  # cached: the second call builds nothing
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sample-")]
