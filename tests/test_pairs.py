"""NSP/SOP pairs: Google's semantics, unbiased labels, truncation law, layout of a batch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.config import DataConfig, NspConfig, WorkbenchConfig
from workbench.data.batches import BatchStream, assemble
from workbench.data.pairs import IS_NEXT, NOT_NEXT, _truncate, build_pair_plan, document_split
from workbench.data.prepare import prepare_dataset

from conftest import make_sentence


def plan_for(dataset, seed=0, max_seq_length=64, **nsp):
    data = DataConfig(max_seq_length=max_seq_length)
    return build_pair_plan(dataset.sentence_offsets, dataset.document_offsets, np.arange(dataset.num_documents),
                           data, NspConfig(**nsp), np.random.default_rng(seed))


def doc_of(dataset, token_positions):
    sentence = np.searchsorted(dataset.sentence_offsets, token_positions, side="right") - 1
    return np.searchsorted(dataset.document_offsets, sentence, side="right") - 1


def test_pairs_fit_and_follow_the_nsp_recipe(dataset):
    plan = plan_for(dataset)
    assert len(plan) > 300
    assert (plan.a_len >= 1).all() and (plan.b_len >= 1).all()
    assert (plan.a_len + plan.b_len <= 64 - 3).all()
    a_doc = doc_of(dataset, plan.a_start)
    b_doc = doc_of(dataset, plan.b_start)
    # segments never straddle documents
    assert np.array_equal(a_doc, doc_of(dataset, plan.a_start + plan.a_len - 1))
    assert np.array_equal(b_doc, doc_of(dataset, plan.b_start + plan.b_len - 1))
    is_next = plan.label == IS_NEXT
    # IsNext: B continues A in the same document; NotNext: B comes from another document
    assert np.array_equal(a_doc[is_next], b_doc[is_next])
    assert (plan.b_start[is_next] >= plan.a_start[is_next] + plan.a_len[is_next]).all()
    assert (a_doc[~is_next] != b_doc[~is_next]).all()
    # untruncated IsNext pairs are exactly contiguous text
    whole = is_next & ~plan.truncated
    assert np.array_equal(plan.b_start[whole], plan.a_start[whole] + plan.a_len[whole])


def test_realised_not_next_share_is_the_configured_one(dataset):
    labels = np.concatenate([plan_for(dataset, seed).label for seed in range(30)])
    assert len(labels) > 10_000
    assert labels.mean() == pytest.approx(0.5, abs=0.02)
    labels = np.concatenate([plan_for(dataset, seed, random_next_probability=0.2).label for seed in range(30)])
    assert labels.mean() == pytest.approx(0.2, abs=0.02)


def test_one_sentence_documents_do_not_bias_the_label(tmp_path, small_config):
    """Google's recipe makes every one-sentence chunk NotNext; ours keeps the configured share."""
    import random

    rng = random.Random(0)
    corpus = tmp_path / "single.txt"
    corpus.write_text("\n\n".join(" ".join(make_sentence(rng) for _ in range(3)) for _ in range(400)) + "\n")
    ds = prepare_dataset([corpus], tmp_path / "ds", small_config.with_overrides(["data.sentences=lines"])).dataset
    assert ds.num_sentences == ds.num_documents == 400
    labels = np.concatenate([plan_for(ds, seed).label for seed in range(20)])
    assert labels.mean() == pytest.approx(0.5, abs=0.02)
    plan = plan_for(ds, 0)
    is_next = plan.label == IS_NEXT
    # an IsNext from a lone sentence is that sentence cut in two: contiguous, same document
    assert np.array_equal(doc_of(ds, plan.a_start[is_next]), doc_of(ds, plan.b_start[is_next]))


def test_sentence_order_prediction_swaps_instead_of_sampling(dataset):
    plan = plan_for(dataset, objective="sop")
    swapped = plan.label == NOT_NEXT
    assert plan.label.mean() == pytest.approx(0.5, abs=0.06)
    assert np.array_equal(doc_of(dataset, plan.a_start), doc_of(dataset, plan.b_start))
    assert (plan.a_start[swapped] >= plan.b_start[swapped] + plan.b_len[swapped]).all()
    assert (plan.b_start[~swapped] >= plan.a_start[~swapped] + plan.a_len[~swapped]).all()


def test_no_pair_task_cuts_only_continuations(dataset):
    plan = plan_for(dataset, objective="none", random_next_probability=0.5)   # the share has no say
    assert len(plan) and (plan.label == IS_NEXT).all()
    assert np.array_equal(doc_of(dataset, plan.a_start), doc_of(dataset, plan.b_start))
    untrimmed = ~plan.truncated
    # B goes on where A ends, unless truncation trimmed the back of A or the front of B
    assert (plan.b_start[untrimmed] == plan.a_start[untrimmed] + plan.a_len[untrimmed]).all()
    assert (plan.b_start >= plan.a_start + plan.a_len).all()


def test_plans_are_deterministic_per_seed(dataset):
    a, b, c = plan_for(dataset, 1), plan_for(dataset, 1), plan_for(dataset, 2)
    assert np.array_equal(a.a_start, b.a_start) and np.array_equal(a.label, b.label)
    assert not np.array_equal(a.a_start[:50], c.a_start[:50])


def google_truncate(a: int, b: int, max_tokens: int) -> tuple[int, int]:
    while a + b > max_tokens:
        if a > b:
            a -= 1
        else:
            b -= 1
    return a, b


@settings(max_examples=300, deadline=None)
@given(a=st.integers(1, 300), b=st.integers(1, 300), max_tokens=st.integers(2, 253))
def test_closed_form_truncation_matches_googles_loop(a, b, max_tokens):
    plan = _truncate([1000], [a], [5000], [b], [0], max_tokens, np.random.default_rng(0))
    assert (int(plan.a_len[0]), int(plan.b_len[0])) == google_truncate(a, b, max_tokens)
    assert plan.truncated[0] == (a + b > max_tokens)
    assert 1000 <= plan.a_start[0] <= 1000 + a - plan.a_len[0]


def test_truncation_trims_front_and_back_equally_often():
    n = 4000
    plan = _truncate([0] * n, [100] * n, [0] * n, [10] * n, [0] * n, 50, np.random.default_rng(0))
    assert (plan.a_len == 40).all()
    assert plan.a_start.mean() == pytest.approx(30, abs=0.5)  # 60 removed, half from the front


def test_heldout_split_is_stable_and_disjoint():
    train, heldout = document_split(10_000, 0.05)
    assert len(heldout) == pytest.approx(500, abs=80)
    assert not set(train) & set(heldout)
    train2, heldout2 = document_split(20_000, 0.05)
    assert set(heldout) <= set(heldout2)  # documents keep their side as the corpus grows


def test_batch_layout(dataset):
    config = WorkbenchConfig()
    config.data.max_seq_length = 64
    stream = BatchStream(dataset, config, batch_size=16, seed=0)
    plan = stream.plan(0).take(slice(0, 16))
    vocab = dataset.vocabulary
    ids, types, attention = assemble(dataset.tokens, plan, vocab, 64)
    assert ids.shape[1] % 8 == 0 and ids.shape[1] <= 64
    for r in range(16):
        a, b = int(plan.a_len[r]), int(plan.b_len[r])
        assert ids[r, 0] == vocab.cls_id and ids[r, a + 1] == vocab.sep_id and ids[r, a + b + 2] == vocab.sep_id
        assert ids[r, 1:a + 1].tolist() == dataset.tokens[plan.a_start[r]:plan.a_start[r] + a].tolist()
        assert ids[r, a + 2:a + b + 2].tolist() == dataset.tokens[plan.b_start[r]:plan.b_start[r] + b].tolist()
        assert types[r].tolist() == [0] * (a + 2) + [1] * (b + 1) + [0] * (ids.shape[1] - a - b - 3)
        assert attention[r].sum() == a + b + 3
        assert (ids[r, a + b + 3:] == vocab.pad_id).all()


def test_batch_stream_is_deterministic_and_sharded(dataset):
    config = WorkbenchConfig()
    config.data.max_seq_length = 64
    one = BatchStream(dataset, config, batch_size=8, seed=3)
    again = BatchStream(dataset, config, batch_size=8, seed=3)
    assert np.array_equal(one.batch(0, 2).input_ids, again.batch(0, 2).input_ids)
    ranks = [BatchStream(dataset, config, batch_size=4, seed=3, rank=r, world_size=2) for r in range(2)]
    # the two ranks together cover the same pairs as one process with the global batch
    together = np.concatenate([r.batch(0, 2).original_ids[:, :8] for r in ranks])
    assert np.array_equal(np.sort(together, axis=0), np.sort(one.batch(0, 2).original_ids[:, :8], axis=0))
    assert not np.array_equal(ranks[0].batch(0, 2).original_ids[:, :8], ranks[1].batch(0, 2).original_ids[:, :8])
    heldout = BatchStream(dataset, config, batch_size=4, seed=3, split="heldout")
    assert not set(heldout.documents) & set(one.documents)


def test_the_masking_rate_follows_the_progress_the_stream_is_given(dataset):
    from workbench.data.masking import NOT_SELECTED

    config = WorkbenchConfig()
    config.data.max_seq_length = 64
    config.masking.probability, config.masking.final_probability = 0.4, 0.1
    stream = BatchStream(dataset, config, batch_size=16, seed=0)

    def rate(batch):
        return (batch.kinds != NOT_SELECTED).sum() / batch.attention_mask.sum()

    start, middle, end = (stream.batch(0, 1, progress) for progress in (0.0, 0.5, 1.0))
    assert np.array_equal(start.original_ids, end.original_ids)          # the same pairs, masked at other rates
    assert rate(start) == pytest.approx(0.4, abs=0.02) and rate(middle) == pytest.approx(0.25, abs=0.02)
    assert rate(end) == pytest.approx(0.1, abs=0.02)
    config.masking.final_probability = 0.0                               # constant: progress changes nothing
    constant = BatchStream(dataset, config, batch_size=16, seed=0)
    assert np.array_equal(constant.batch(0, 1, 0.0).kinds, constant.batch(0, 1, 1.0).kinds)
    config.masking.final_probability = 0.1
    clock = iter([0.0, 1.0])                                             # asked once per batch, as it is cut
    (_, _, first), (_, _, second) = (item for _, item in zip(range(2), stream.iterate(0, 0, lambda: next(clock))))
    assert rate(first) == pytest.approx(0.4, abs=0.03) and rate(second) == pytest.approx(0.1, abs=0.03)
