"""Tokenized store: content, fingerprint reuse, atomic writes, diagnostics, damaged datasets."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from workbench.data.corpus import read_corpus
from workbench.data.dataset import TokenizedDataset
from workbench.data.prepare import Cancelled, prepare_dataset
from workbench.errors import CorpusError, DatasetError

from conftest import write_text_corpus


def test_store_holds_every_sentence_tokenized_in_order(dataset, corpus_file):
    documents = list(read_corpus([corpus_file]))
    assert dataset.num_documents == len(documents) == 300
    sentences = [s for d in documents for s in d.sentences]
    assert dataset.num_sentences == len(sentences)
    assert dataset.tokens.dtype == np.uint16
    tokenizer = dataset.tokenizer
    for index in (0, 1, len(sentences) // 2, len(sentences) - 1):
        expected = tokenizer.encode(sentences[index], add_special_tokens=False).ids
        assert dataset.sentence(index).tolist() == expected
    # document offsets count sentences; sentence offsets count tokens, back to back
    first, last = dataset.document_sentence_range(1)
    assert last - first == len(documents[1].sentences)
    assert dataset.sentence_offsets[-1] == dataset.num_tokens
    assert np.all(np.diff(dataset.sentence_offsets) > 0)
    stats = dataset.stats
    assert stats["counts"]["documents"] == 300
    assert stats["sentence_tokens"]["count"] == dataset.num_sentences
    assert sum(stats["document_sentences"]["histogram"]) == 300


def test_preparing_again_is_recognised_and_changes_are_not(tmp_path, small_config):
    corpus = write_text_corpus(tmp_path / "c.txt", documents=40)
    out = tmp_path / "ds"
    first = prepare_dataset([corpus], out, small_config)
    assert not first.reused
    stamp = os.stat(out / "tokens.bin").st_mtime_ns
    again = prepare_dataset([corpus], out, small_config)
    assert again.reused and again.dataset.fingerprint == first.dataset.fingerprint
    assert os.stat(out / "tokens.bin").st_mtime_ns == stamp
    with open(corpus, "a") as f:
        f.write("A brand new document appears.\n")
    changed = prepare_dataset([corpus], out, small_config)
    assert not changed.reused and changed.dataset.num_documents == 41
    other_settings = prepare_dataset([corpus], out, small_config.with_overrides(["data.sentences=lines"]))
    assert not other_settings.reused


def test_cancelled_prepare_leaves_nothing(tmp_path, small_config):
    corpus = write_text_corpus(tmp_path / "c.txt", documents=40)
    out = tmp_path / "ds"
    with pytest.raises(Cancelled):
        prepare_dataset([corpus], out, small_config, should_stop=lambda: True)
    assert sorted(os.listdir(tmp_path)) == ["c.txt"]


def test_failed_prepare_keeps_the_previous_dataset(tmp_path, small_config):
    good = write_text_corpus(tmp_path / "good.txt", documents=40)
    out = tmp_path / "ds"
    before = prepare_dataset([good], out, small_config).dataset.fingerprint
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"Fine.\n\xff\xfe broken\n")
    with pytest.raises(CorpusError, match=r"bad.txt:2: invalid UTF-8"):
        prepare_dataset([good, bad], out, small_config)
    assert TokenizedDataset(out).fingerprint == before
    assert sorted(os.listdir(tmp_path)) == ["bad.txt", "ds", "good.txt"]


def test_refuses_to_overwrite_a_folder_that_is_not_a_dataset(tmp_path, small_config):
    corpus = write_text_corpus(tmp_path / "c.txt", documents=5)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(DatasetError, match="folder exists and is not a prepared dataset"):
        prepare_dataset([corpus], tmp_path / "mine", small_config)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_damaged_and_foreign_datasets_are_clear_errors(tmp_path, small_config):
    corpus = write_text_corpus(tmp_path / "c.txt", documents=10)
    out = tmp_path / "ds"
    prepare_dataset([corpus], out, small_config)
    with pytest.raises(DatasetError, match="no such dataset"):
        TokenizedDataset(tmp_path / "elsewhere")
    with pytest.raises(DatasetError, match="not a prepared dataset"):
        TokenizedDataset(tmp_path)
    with open(out / "tokens.bin", "r+b") as f:
        f.truncate(10)
    with pytest.raises(DatasetError, match=r"tokens.bin: dataset is incomplete or damaged \(10 bytes"):
        TokenizedDataset(out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["format_version"] = 99
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="format 99 is newer"):
        TokenizedDataset(out)
    (out / "manifest.json").write_text("{")
    with pytest.raises(DatasetError, match="damaged manifest"):
        TokenizedDataset(out)


def test_diagnostics_point_at_the_place(tmp_path, small_config, dataset):
    corpus = tmp_path / "c.txt"
    long_sentence = " ".join(["word"] * 200) + "."
    corpus.write_text("Alone in its document.\n\nFirst of two.\nSecond of two.\n\n"
                      f"Short.\n{long_sentence}\n\nSymbols \u2603 and \u2602 are rare.\n", encoding="utf-8")
    # The stories tokenizer has never seen a snowman: it becomes [UNK].
    config = small_config.with_overrides([f"tokenizer.path={json.dumps(str(dataset.path / 'tokenizer.json'))}"])
    stats = prepare_dataset([corpus], tmp_path / "ds", config).dataset.stats
    found = stats["diagnostics"]
    assert found["one_sentence_document"] == {"count": 2, "example": f"{corpus}:1"}
    assert found["long_sentence"] == {"count": 1, "example": f"{corpus}:7"}
    assert found["unknown_token"]["example"] == f"{corpus}:9"
    assert stats["unknown_token_share"] > 0


def test_given_tokenizer_is_used_and_large_vocabularies_use_uint32(tmp_path, small_config):
    corpus = write_text_corpus(tmp_path / "c.txt", documents=10)
    vocab = tmp_path / "vocab.txt"
    letters = sorted(set("abcdefghijklmnopqrstuvwxyz.,"))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + letters + [f"##{c}" for c in letters]
    tokens += [f"filler{i}" for i in range(70_000)]
    vocab.write_text("\n".join(tokens) + "\n")
    config = small_config.with_overrides([f"tokenizer.path={json.dumps(str(vocab))}"])
    ds = prepare_dataset([corpus], tmp_path / "ds", config).dataset
    assert ds.tokens.dtype == np.uint32
    assert ds.vocabulary.size == len(tokens)
    assert ds.tokenizer.encode("cat", add_special_tokens=False).tokens == ["c", "##a", "##t"]


def test_offsets_whose_differences_wrap_around_are_refused(tmp_path, small_config):
    """A damaged offset of 2**62 followed by a negative one: their 64-bit difference wraps to a positive number,
    so "increasing" must be checked by comparing, not subtracting (found by the fuzz test)."""
    out = tmp_path / "ds"
    prepare_dataset([write_text_corpus(tmp_path / "c.txt", documents=10)], out, small_config)
    offsets = np.fromfile(out / "sentence_offsets.bin", dtype=np.int64)
    offsets[3], offsets[4] = offsets[3] + 2**56, -(2**63) + 2**56    # what 11 junk bytes at one place made
    offsets.tofile(out / "sentence_offsets.bin")
    with pytest.raises(DatasetError, match=r"sentence_offsets.bin is not increasing"):
        TokenizedDataset(out)


def test_a_long_document_read_in_pieces_is_stored_whole_and_exactly(tmp_path, small_config, monkeypatch):
    """Pieces of long documents (and batches cutting through them) change nothing that is written."""
    import random

    import workbench.data.corpus as corpus
    import workbench.data.prepare as prepare
    from conftest import make_sentence

    rng = random.Random(5)
    paragraphs = ["\n".join(make_sentence(rng) for _ in range(n)) for n in (400, 1, 3, 250, 2)]
    path = tmp_path / "long.txt"
    path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")

    def files(out):
        data = TokenizedDataset(out)
        names = ("tokens.bin", "sentence_offsets.bin", "document_offsets.bin", "stats.json", "tokenizer.json")
        return data, {name: (out / name).read_bytes() for name in names}

    whole, whole_files = files(prepare_dataset([path], tmp_path / "whole", small_config).dataset.path)
    monkeypatch.setattr(corpus, "PIECE_CHARS", 1500)
    monkeypatch.setattr(prepare, "BATCH_CHARS", 4000)
    pieces = list(read_corpus([path]))
    assert len(pieces) > 20 and sum(not p.more for p in pieces) == 5
    cut, cut_files = files(prepare_dataset([path], tmp_path / "cut", small_config).dataset.path)
    assert cut.num_documents == whole.num_documents == 5
    assert [cut.document_sentence_range(d) for d in range(5)] == [whole.document_sentence_range(d)
                                                                   for d in range(5)]
    assert cut_files == whole_files


def test_a_large_corpus_trains_its_tokenizer_on_evenly_spread_stretches_the_same_every_time(tmp_path, small_config):
    """Words found only in the last part of the corpus still make the vocabulary: the sample is not the head."""
    import copy
    import random

    from workbench.data.corpus import list_corpus_files
    from workbench.data.tokenizer_sample import SamplePlan, sampled_texts
    from workbench.config import DataConfig

    rng = random.Random(9)
    head = [" ".join(rng.choice(["alpha", "beta", "gamma", "delta"]) for _ in range(12)) + "." for _ in range(30000)]
    tail = [" ".join(rng.choice(["zebrafish", "quokka", "narwhal"]) for _ in range(12)) + "." for _ in range(30000)]
    path = tmp_path / "two-halves.txt"
    path.write_text("\n".join(head + tail) + "\n", encoding="utf-8")
    size = path.stat().st_size
    assert size > 2_000_000

    plan = SamplePlan(size, size // 10)
    texts = [t for batch in sampled_texts(list_corpus_files([path]), DataConfig(), plan) for t in batch]
    sampled = sum(len(t.encode()) for t in texts)
    assert 0.09 * size < sampled < 0.11 * size
    assert sum("quokka" in t for t in texts) > 0.4 * len(texts) and sum("alpha" in t for t in texts) > 0.4 * len(texts)
    assert all(t.endswith("\n") and t[0] in "abdgqnz" for t in texts)  # whole lines only

    config = copy.deepcopy(small_config)
    config.tokenizer.sample_mb = 1
    first = prepare_dataset([path], tmp_path / "first", config).dataset
    training = first.manifest["tokenizer"]["training"]
    assert training["whole"] is False and training["sampled_bytes"] == 1_000_000 and training["stretches"] == 64
    vocab = first.tokenizer.get_vocab()
    assert {"quokka", "alpha"} <= set(vocab)
    second = prepare_dataset([path], tmp_path / "second", config).dataset
    assert (second.path / "tokenizer.json").read_bytes() == (first.path / "tokenizer.json").read_bytes()


def test_a_compressed_corpus_is_sampled_from_the_same_stretches_of_its_file(tmp_path):
    import random

    from conftest import write_corpus_file
    from workbench.config import DataConfig
    from workbench.data.corpus import list_corpus_files
    from workbench.data.tokenizer_sample import SamplePlan, sampled_texts

    rng = random.Random(4)
    texts = [f"Document {i} says {rng.random()}." for i in range(40000)]
    write_corpus_file(tmp_path / "docs.jsonl.gz", texts)
    files = list_corpus_files([tmp_path / "docs.jsonl.gz"])
    plan = SamplePlan(files[0].size, files[0].size // 4, stretches=4)
    sampled = [t for batch in sampled_texts(files, DataConfig(), plan) for t in batch]
    numbers = [int(t.split()[1]) for t in sampled]
    assert 0.15 * len(texts) < len(numbers) < 0.35 * len(texts)  # positions move in steps of compressed reads
    assert min(numbers) < 3000 and max(numbers) > 30000  # from the start to the last stretch
    assert sampled == [t for batch in sampled_texts(files, DataConfig(), plan) for t in batch]


def load_cased_copy(tokenizer):
    from tokenizers import Tokenizer

    raw = json.loads(tokenizer.to_str())
    raw["normalizer"].update(lowercase=False, strip_accents=False)
    return Tokenizer.from_str(json.dumps(raw))


def test_sentences_encoded_in_marked_runs_get_exactly_their_own_ids(dataset):
    import random

    from workbench.data.sentence_encoding import SentenceEncoder

    tokenizer = dataset.tokenizer
    encoder = SentenceEncoder(tokenizer)
    rng = random.Random(0)
    awkward = ["", "\x07\x08", "[SEP] inside [MASK] text", "[sep] lower [Mask]", "中文 and Ünïcödé", "tail\ue000",
               "\u2063\ue001head", "x" * 150, "a" * 5000, "Tabs\tand\x0bvertical\x0cfeed\x7f DEL\x1fUS", "ÀÉÎ accents",
               "MiXeD CaSe Words, PUNCT!? (yes) {no} $5 ~x^y|z`q"]
    texts = [rng.choice(awkward) if rng.random() < 0.3 else " ".join(rng.choice(["river", "old", "the", ","])
                                                                        for _ in range(rng.randint(1, 30)))
             for _ in range(3000)]
    expected = [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]

    def split(lengths, flat):
        ends = np.cumsum(lengths)
        return [flat[end - n:end].tolist() for n, end in zip(lengths, ends)]

    assert split(*encoder.encode(texts, np.uint16)) == expected
    # Runs of ASCII text only, normalised by the encoder itself (tabs, controls, capitals, special tokens).
    ascii_texts = [t for t in texts if t.isascii()]
    normalised_here = []
    original = encoder._normalised_ascii
    encoder._normalised_ascii = lambda chunk: normalised_here.append(original(chunk)) or normalised_here[-1]
    assert split(*encoder.encode(ascii_texts, np.uint16)) == [
        e.ids for e in tokenizer.encode_batch(ascii_texts, add_special_tokens=False)]
    assert sum(n is not None for n in normalised_here) >= 2 and None in normalised_here  # both paths taken
    cased = load_cased_copy(tokenizer)
    for some in (texts, ascii_texts):
        assert split(*SentenceEncoder(cased).encode(some, np.uint16)) == [
            e.ids for e in cased.encode_batch(some, add_special_tokens=False)]
    # A run holding every separator the vocabulary offers is encoded sentence by sentence.
    every = "".join(c for c, _ in encoder._separators)
    assert every
    with_all = texts[:50] + [f"a sentence holding {every} all"] + texts[50:100]
    assert split(*encoder.encode(with_all, np.uint16)) == [
        e.ids for e in tokenizer.encode_batch(with_all, add_special_tokens=False)]
    assert encoder.encode([], np.uint16)[0].shape == (0,)


# --- resuming an interrupted prepare ------------------------------------------------------------------

def _dataset_bytes(folder) -> dict:
    names = ("tokens.bin", "sentence_offsets.bin", "document_offsets.bin", "stats.json", "tokenizer.json", "vocab.txt")
    return {name: (folder / name).read_bytes() for name in names}


@pytest.fixture
def small_batches(monkeypatch):
    import workbench.data.prepare as prepare

    monkeypatch.setattr(prepare, "BATCH_CHARS", 3000)
    monkeypatch.setattr(prepare, "CHECKPOINT_SECONDS", 0.0)


def test_a_cancelled_prepare_goes_on_where_it_stopped_and_writes_the_same_bytes(tmp_path, small_config,
                                                                               small_batches, monkeypatch):
    import workbench.data.prepare as prepare

    corpus = write_text_corpus(tmp_path / "c.txt", documents=400, seed=3)
    reference = prepare_dataset([corpus], tmp_path / "reference", small_config).dataset.path
    out = tmp_path / "ds"
    batches = []

    def stop_after_some(stage, done, total):
        if stage == "tokenize":
            batches.append(done)

    with pytest.raises(Cancelled, match="goes on from where it stopped"):
        prepare_dataset([corpus], out, small_config, progress=stop_after_some, should_stop=lambda: len(batches) >= 6)
    assert not out.exists()
    partials = [p for p in tmp_path.iterdir() if p.name.startswith(".ds.partial-")]
    assert len(partials) == 1 and (partials[0] / "resume.json").exists()  # hidden, never looks complete

    def no_training(*args):
        raise AssertionError("the tokenizer of the interrupted prepare is reused, not trained again")

    monkeypatch.setattr(prepare, "_train_on_corpus", no_training)
    result = prepare_dataset([corpus], out, small_config)
    assert 0 < result.resumed_at < 1
    assert _dataset_bytes(out) == _dataset_bytes(reference)
    assert not (out / "resume.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt", "ds", "reference"]


KILLED_PREPARE = """
import sys, time
import workbench.data.prepare as prepare
from workbench.config import WorkbenchConfig
prepare.BATCH_CHARS = 3000
prepare.CHECKPOINT_SECONDS = 0.0
config = WorkbenchConfig()
config.tokenizer.vocab_size, config.tokenizer.min_frequency, config.data.max_seq_length = 200, 1, 64
prepare.prepare_dataset([sys.argv[1]], sys.argv[2], config, progress=lambda *a: time.sleep(0.05))
"""


@pytest.mark.subprocess
def test_a_prepare_killed_with_sigkill_resumes_from_its_checkpoint(tmp_path, small_config, small_batches):
    import json
    import signal
    import subprocess
    import sys
    import time

    corpus = write_text_corpus(tmp_path / "c.txt", documents=600, seed=4)
    reference = prepare_dataset([corpus], tmp_path / "reference", small_config).dataset.path
    out = tmp_path / "ds"
    child = subprocess.Popen([sys.executable, "-c", KILLED_PREPARE, str(corpus), str(out)])
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            checkpoints = list(tmp_path.glob(".ds.partial-*/resume.json"))
            if checkpoints and json.loads(checkpoints[0].read_text())["pieces"] > 100:
                break
            assert child.poll() is None, "the prepare finished before it could be killed"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert not out.exists()
    result = prepare_dataset([corpus], out, small_config)
    assert result.resumed_at is not None and result.resumed_at > 0
    assert _dataset_bytes(out) == _dataset_bytes(reference)


def test_an_abandoned_prepare_of_another_corpus_is_not_resumed_but_cleared(tmp_path, small_config, small_batches):
    corpus = write_text_corpus(tmp_path / "c.txt", documents=200, seed=5)
    out = tmp_path / "ds"
    calls = []
    with pytest.raises(Cancelled):
        prepare_dataset([corpus], out, small_config, progress=lambda s, d, t: calls.append(s),
                        should_stop=lambda: calls.count("tokenize") >= 2)
    (abandoned,) = [p for p in tmp_path.iterdir() if p.name.startswith(".ds.partial-")]
    # As if its process had died: our own pid is alive, so give it one that is not.
    dead = abandoned.with_name(f".ds.partial-{2**22 + 12345}-deadbeef")
    abandoned.rename(dead)
    write_text_corpus(corpus, documents=200, seed=6)  # the corpus changed since
    result = prepare_dataset([corpus], out, small_config)
    assert result.resumed_at is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt", "ds"]


def test_the_tokenizer_sample_size_only_matters_for_a_corpus_larger_than_it(tmp_path, small_config):
    import copy

    corpus = write_text_corpus(tmp_path / "c.txt", documents=50)
    config = copy.deepcopy(small_config)
    first = prepare_dataset([corpus], tmp_path / "ds", config)
    config.tokenizer.sample_mb = 512  # still larger than the corpus: the same tokenizer, nothing to redo
    assert prepare_dataset([corpus], tmp_path / "ds", config).reused
    config.tokenizer.sample_mb = 0
    assert prepare_dataset([corpus], tmp_path / "ds", config).reused
    assert not first.reused


def test_an_unusable_checkpoint_is_not_resumed_and_preparing_starts_afresh(tmp_path, small_config, small_batches):
    import json

    corpus = write_text_corpus(tmp_path / "c.txt", documents=200, seed=7)
    reference = prepare_dataset([corpus], tmp_path / "reference", small_config).dataset.path
    out = tmp_path / "ds"
    calls = []
    with pytest.raises(Cancelled):
        prepare_dataset([corpus], out, small_config, progress=lambda s, d, t: calls.append(s),
                        should_stop=lambda: calls.count("tokenize") >= 3)
    (checkpoint,) = tmp_path.glob(".ds.partial-*/resume.json")
    state = json.loads(checkpoint.read_text())
    state["stats"]["sentence_hist"] = [1, 2, 3]  # damaged: the wrong shape
    checkpoint.write_text(json.dumps(state))
    result = prepare_dataset([corpus], out, small_config)
    assert result.resumed_at is None
    assert _dataset_bytes(out) == _dataset_bytes(reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt", "ds", "reference"]
