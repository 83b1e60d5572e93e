"""Masking: invariants as properties over random batches and configs, then realised rates."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.config import MaskingConfig
from workbench.data.masking import IGNORE_INDEX, KEPT, MASKED, NOT_SELECTED, RANDOM, mask_batch


def random_batch(vocab, rng: np.random.Generator, rows: int, width: int):
    """[CLS] A [SEP] B [SEP] [PAD]... with ordinary tokens, ## pieces and the odd [UNK]."""
    ids = np.full((rows, width), vocab.pad_id, dtype=np.int64)
    attention = np.zeros((rows, width), dtype=np.int64)
    normal = vocab.replacement_ids
    for r in range(rows):
        length = int(rng.integers(5, width + 1))
        body = normal[rng.integers(0, len(normal), length)]
        body[rng.random(length) < 0.02] = vocab.unk_id
        ids[r, :length] = body
        split = int(rng.integers(1, length - 2))
        ids[r, 0], ids[r, split], ids[r, length - 1] = vocab.cls_id, vocab.sep_id, vocab.sep_id
        attention[r, :length] = 1
    return ids, attention


def words_of(row_ids, row_attention, vocab):
    """Whole words as lists of positions (a ## piece joins the candidate before it)."""
    words, current = [], []
    for pos, (token, real) in enumerate(zip(row_ids, row_attention)):
        candidate = real and not vocab.is_special[token]
        if candidate and vocab.is_continuation[token] and current:
            current.append(pos)
            continue
        if current:
            words.append(current)
        current = [pos] if candidate else []
    if current:
        words.append(current)
    return words


configs = st.builds(
    MaskingConfig,
    probability=st.floats(0.01, 0.9),
    mask_fraction=st.sampled_from([0.8, 1.0, 0.0, 0.5]),
    random_fraction=st.sampled_from([0.1, 0.0, 0.5]),
    selection=st.sampled_from(["exact", "bernoulli"]),
    strategy=st.sampled_from(["token", "whole_word", "span"]),
    max_predictions_per_seq=st.integers(0, 40),   # 0: no cap
    min_predictions_per_seq=st.integers(0, 1),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=configs, seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 12), width=st.integers(6, 96))
def test_masking_invariants(dataset, config, seed, rows, width):
    vocab = dataset.vocabulary
    rng = np.random.default_rng(seed)
    ids, attention = random_batch(vocab, rng, rows, width)
    out = mask_batch(ids, attention, vocab, config, np.random.default_rng(seed))
    selected = out.kinds != NOT_SELECTED
    candidate = attention.astype(bool) & ~vocab.is_special[ids]

    # labels and kinds agree; labels hold the original token
    assert np.array_equal(out.labels != IGNORE_INDEX, selected)
    assert np.array_equal(out.labels[selected], ids[selected])
    # special tokens ([CLS] [SEP] [PAD] [UNK]) are never selected
    assert not (selected & ~candidate).any()
    # what the model sees matches the kind
    assert np.array_equal(out.input_ids[~selected], ids[~selected])
    assert (out.input_ids[out.kinds == MASKED] == vocab.mask_id).all()
    assert np.array_equal(out.input_ids[out.kinds == KEPT], ids[out.kinds == KEPT])
    assert not vocab.is_special[out.input_ids[out.kinds == RANDOM]].any()

    counts = selected.sum(axis=1)
    n_candidates = candidate.sum(axis=1)
    cap = config.max_predictions_per_seq or width
    assert (counts <= cap).all()
    assert (counts <= n_candidates).all()
    if config.selection == "exact":
        budget = np.minimum(np.minimum(cap,
                                       np.maximum(1, np.rint(attention.sum(axis=1) * config.probability))),
                            n_candidates)
        if config.strategy == "token":
            assert np.array_equal(counts, budget)  # the exact-count rule
    else:
        assert (counts >= np.minimum(config.min_predictions_per_seq, n_candidates)).all() or config.strategy != "token"
    if config.selection == "exact" or config.min_predictions_per_seq:
        for r in range(rows):  # at least one prediction wherever a word fits under the cap
            fits = any(len(w) <= cap for w in words_of(ids[r], attention[r], vocab))
            assert counts[r] >= 1 or not fits

    for r in range(rows):
        words = words_of(ids[r], attention[r], vocab)
        if config.strategy == "token":
            continue
        for word in words:  # whole words go together
            assert len({bool(selected[r, p]) for p in word}) == 1
        if config.strategy == "whole_word" and config.selection == "exact":
            # greedy: no unselected word would still have fitted the budget
            left = int(budget[r] - counts[r])
            assert all(len(w) > left for w in words if not selected[r, w[0]]) or counts[r] > budget[r]


def test_same_seed_same_masking_and_input_untouched(dataset):
    vocab = dataset.vocabulary
    ids, attention = random_batch(vocab, np.random.default_rng(0), 8, 64)
    before = ids.copy()
    for strategy in ("token", "whole_word", "span"):
        config = MaskingConfig(strategy=strategy)
        a = mask_batch(ids, attention, vocab, config, np.random.default_rng(5))
        b = mask_batch(ids, attention, vocab, config, np.random.default_rng(5))
        c = mask_batch(ids, attention, vocab, config, np.random.default_rng(6))
        assert np.array_equal(a.input_ids, b.input_ids) and np.array_equal(a.kinds, b.kinds)
        assert not np.array_equal(a.kinds, c.kinds)
    assert np.array_equal(ids, before)


def many(dataset, config, batches=300, rows=32, width=128, seed=0):
    vocab = dataset.vocabulary
    rng = np.random.default_rng(seed)
    kinds, candidates, replaced = np.zeros(4, np.int64), 0, []
    for _ in range(batches):
        ids, attention = random_batch(vocab, rng, rows, width)
        out = mask_batch(ids, attention, vocab, config, rng)
        kinds += np.bincount(out.kinds.ravel(), minlength=4)
        candidates += int((attention.astype(bool) & ~vocab.is_special[ids]).sum())
        replaced.append(out.input_ids[out.kinds == RANDOM])
    return kinds, candidates, np.concatenate(replaced)


@pytest.mark.parametrize("strategy", ["token", "whole_word"])
def test_bernoulli_rate_and_split_are_realised(dataset, strategy):
    config = MaskingConfig(selection="bernoulli", strategy=strategy, probability=0.15)   # no cap: the default
    kinds, candidates, replaced = many(dataset, config)
    selected = kinds[1:].sum()
    assert selected / candidates == pytest.approx(0.15, abs=0.005)
    assert kinds[MASKED] / selected == pytest.approx(0.8, abs=0.01)
    assert kinds[RANDOM] / selected == pytest.approx(0.1, abs=0.01)
    assert kinds[KEPT] / selected == pytest.approx(0.1, abs=0.01)
    # random replacements cover the ordinary vocabulary and nothing else
    vocab = dataset.vocabulary
    assert set(np.unique(replaced).tolist()) == set(vocab.replacement_ids.tolist())


def test_span_masking_selects_runs_of_words(dataset):
    config = MaskingConfig(strategy="span", max_predictions_per_seq=40)
    vocab = dataset.vocabulary
    rng = np.random.default_rng(3)
    runs = []
    for _ in range(50):
        ids, attention = random_batch(vocab, rng, 16, 128)
        out = mask_batch(ids, attention, vocab, config, rng)
        for row in out.kinds != NOT_SELECTED:
            edges = np.diff(np.concatenate([[0], row.astype(np.int8), [0]]))
            runs.extend((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).tolist())
    # Geometric(0.2) clipped at 10 words has mean ~3.8 words (more tokens); single tokens would give 1.
    assert np.mean(runs) > 2.5


def test_bernoulli_never_leaves_a_sequence_without_prediction(dataset):
    vocab = dataset.vocabulary
    ids, attention = random_batch(vocab, np.random.default_rng(0), 256, 12)
    out = mask_batch(ids, attention, vocab, MaskingConfig(selection="bernoulli", probability=0.02),
                     np.random.default_rng(0))
    assert ((out.kinds != NOT_SELECTED).sum(axis=1) >= 1).all()
    zero_allowed = mask_batch(ids, attention, vocab,
                              MaskingConfig(selection="bernoulli", probability=0.02, min_predictions_per_seq=0),
                              np.random.default_rng(0))
    assert ((zero_allowed.kinds != NOT_SELECTED).sum(axis=1) == 0).any()
