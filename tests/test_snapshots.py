"""Inspection snapshots, tested on constructed cases where the right answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from workbench.config import ModelConfig, WorkbenchConfig
from workbench.model import build_model
from workbench.snapshots.conllu import TreebankError, head_accuracy, parse_conllu, read_treebank
from workbench.snapshots.probe_pack import ProbePack, build_probe_pack
from workbench.snapshots.probes import ProbeFileError, read_probes
from workbench.snapshots.reductions import (HEAD_FEATURES, SNAPSHOT_FORMAT, head_feature_sums, jensen_shannon,
                                            take_snapshot)
from workbench.snapshots.schedule import is_snapshot_step, snapshot_steps
from workbench.snapshots.store import SnapshotError, SnapshotStore
from workbench.snapshots.views import RunInspection, aligned_pca, classify_heads, learned_step, table


def pack_config(dataset) -> WorkbenchConfig:
    config = WorkbenchConfig()
    config.data.dataset = str(dataset.path)
    config.data.max_seq_length = 32
    config.data.heldout_fraction = 0.05
    config.inspect.sequences = 6
    config.inspect.patterns = 4
    config.inspect.words = 50
    return config


def small_model(vocab_size: int, architecture: str = "modernbert", seed: int = 0):
    torch.manual_seed(seed)
    config = ModelConfig(architecture=architecture, preset="custom", vocab_size=vocab_size, hidden_size=32,
                         num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    return build_model(config.resolved())


# --- the schedule ------------------------------------------------------------------------------------------

def test_schedule_is_log_spaced_then_regular():
    assert snapshot_steps(1000, 250) == [0, 1, 2, 4, 8, 16, 32, 64, 128, 250, 500, 750, 1000]
    assert snapshot_steps(1000, 250, first=8) == [0, 8, 16, 32, 64, 128, 250, 500, 750, 1000]
    assert snapshot_steps(100, 50, first=3) == [0, 3, 6, 12, 24, 48, 50, 100]


# --- heads ------------------------------------------------------------------------------------------------

def constructed_attention(T: int) -> torch.Tensor:
    """(1, L=1, nh=4, T, T): head 0 on the previous token, head 1 on [CLS], head 2 uniform, head 3 a fifth on
    each of itself and its neighbours and the rest spread evenly."""
    previous = torch.zeros(T, T)
    previous[0, 0] = 1.0
    previous[torch.arange(1, T), torch.arange(T - 1)] = 1.0
    cls = torch.zeros(T, T)
    cls[:, 0] = 1.0
    uniform = torch.full((T, T), 1.0 / T)
    local = torch.full((T, T), 0.4 / T) + 0.2 * (torch.eye(T) + torch.eye(T).roll(1, 0) + torch.eye(T).roll(-1, 0))
    local = local / local.sum(-1, keepdim=True)
    return torch.stack([previous, cls, uniform, local])[None, None]


def test_a_head_wired_to_the_previous_token_is_classified_as_such():
    T = 20
    real = torch.ones(1, T, dtype=torch.bool)
    key_classes = torch.zeros(3, 1, T)
    key_classes[0, 0, 0] = 1.0                         # position 0 is [CLS]
    key_classes[1, 0, T - 1] = 1.0                     # the last is [SEP]
    heads = (head_feature_sums(constructed_attention(T), real, key_classes) / T).numpy()   # (1, 4, 8)
    previous = HEAD_FEATURES.index("previous")
    assert heads[0, 0, previous] == pytest.approx((T - 1) / T)
    assert heads[0, 2, HEAD_FEATURES.index("entropy")] == pytest.approx(math.log(T), rel=1e-5)
    assert list(classify_heads(heads, mean_length=T)[0]) == ["previous", "cls", "broad", "local"]


def test_captured_attention_is_what_the_model_computes(learnable_dataset):
    """The explicit path that inspection switches on gives the fused path's output."""
    from workbench.model.common import capturing_attention

    for architecture in ("modernbert", "bert"):
        model = small_model(learnable_dataset.vocabulary.size, architecture).eval()
        ids = torch.randint(5, learnable_dataset.vocabulary.size, (3, 16))
        mask = torch.ones(3, 16, dtype=torch.long)
        mask[1, 12:] = 0
        types = torch.zeros_like(ids)
        with torch.no_grad():
            fused = model.final_states(ids, types, mask)
            with capturing_attention(model) as captured:
                explicit = model.final_states(ids, types, mask)
        assert len(captured) == 2 and captured[0].shape == (3, 2, 16, 16)
        assert torch.allclose(captured[0].sum(-1), torch.ones(3, 2, 16), atol=1e-5)
        assert float(captured[0][1, :, :, 12:].abs().max()) == 0.0          # padding is never attended
        assert torch.allclose(fused[mask.bool()], explicit[mask.bool()], atol=1e-4)
        assert all(m.capture is None for m in model.modules() if hasattr(m, "capture"))


# --- the probe pack and surprisal -------------------------------------------------------------------------------

def test_the_patterns_cover_every_token_once_and_never_neighbours(learnable_dataset):
    pack = build_probe_pack(learnable_dataset, pack_config(learnable_dataset))
    real = pack.attention_mask.astype(bool) & ~pack.is_special[pack.input_ids]
    assert ((pack.pattern >= 0) == real).all()
    inputs, labels = pack.masked_inputs(4)
    S = len(pack.input_ids)
    covered = (labels.reshape(pack.patterns, S, -1) != -100).sum(0)
    assert (covered == real).all()                                  # each real token masked exactly once
    same = (pack.pattern[:, 1:] == pack.pattern[:, :-1]) & (pack.pattern[:, 1:] >= 0)
    assert not same.any()                                           # neighbours never masked together
    assert pack.from_heldout


@pytest.mark.parametrize("architecture", ["modernbert", "bert"])
def test_surprisal_of_the_pack_equals_the_trainers_mlm_loss_on_the_same_positions(learnable_dataset, architecture):
    config = pack_config(learnable_dataset)
    pack = build_probe_pack(learnable_dataset, config)
    model = small_model(learnable_dataset.vocabulary.size, architecture)
    snapshot = take_snapshot(model, pack, step=0)
    mask_id = learnable_dataset.vocabulary.mask_id
    inputs, labels = pack.masked_inputs(mask_id)
    S = len(pack.input_ids)
    types = np.tile(pack.token_type_ids, (pack.patterns, 1))
    attention = np.tile(pack.attention_mask, (pack.patterns, 1))
    for j in range(pack.patterns):
        rows = slice(j * S, (j + 1) * S)
        with torch.no_grad():
            out = model.eval()(*(torch.from_numpy(a[rows]) for a in (inputs, types, attention)),
                               mlm_labels=torch.from_numpy(labels[rows]))
        ours = snapshot.surprisal[pack.pattern == j].astype(np.float64).mean()
        assert ours == pytest.approx(float(out.mlm_loss), rel=2e-3)


def test_jensen_shannon_is_zero_for_equal_and_one_for_disjoint_distributions():
    p = torch.tensor([[0.5, 0.5, 0.0, 0.0]])
    assert float(jensen_shannon(p, p)) == pytest.approx(0.0, abs=1e-6)
    assert float(jensen_shannon(p, torch.tensor([[0.0, 0.0, 0.5, 0.5]]))) == pytest.approx(1.0, abs=1e-6)


# --- a word that only becomes predictable after step N ------------------------------------------------------

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def synthetic_pack(vocab: int, rows: np.ndarray) -> ProbePack:
    S, T = rows.shape
    pattern = ((np.arange(T)[None, :] + np.arange(S)[:, None]) % 2).astype(np.int8)
    pattern[:, 0] = pattern[:, -1] = -1
    special = np.zeros(vocab, bool)
    special[:5] = True
    unigram = np.where(special, 0.0, 1.0)
    tokens = np.array(SPECIALS + [f"w{i}" for i in range(5, vocab)])
    return ProbePack(rows, np.zeros_like(rows), np.ones_like(rows), pattern, unigram / unigram.sum(),
                     np.arange(vocab), np.arange(5, vocab), np.zeros(0, np.int64), np.zeros(0, np.int64),
                     np.zeros(0), np.zeros(vocab, bool), np.zeros(vocab, bool), np.zeros(vocab, bool), special,
                     tokens, "synthetic", True)


def synthetic_rows(rng: np.random.Generator, n: int, T: int, a: int, x: int, vocab: int, linked: bool) -> np.ndarray:
    """[CLS] then random words; at odd positions after an ``a``, ``x`` when ``linked`` else a random word."""
    rows = rng.integers(5, vocab, (n, T))
    rows[rows == x] = 6                              # x never appears by chance
    rows[:, 1::4] = a
    follow = x if linked else rng.integers(7, vocab, (n, len(range(2, T, 4))))
    rows[:, 2::4] = follow
    rows[:, 0], rows[:, -1] = 2, 3
    return rows


def test_a_word_predictable_only_after_step_n_is_reported_learned_after_n(tmp_path):
    """x follows a only from step N on: its surprisal curve must show it learned at or after N, not before."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    vocab, T, N, a, x = 24, 18, 60, 5, 23
    model = small_model(vocab)
    pack = synthetic_pack(vocab, synthetic_rows(rng, 4, T, a, x, vocab, linked=True))
    store = SnapshotStore(tmp_path)
    store.folder.mkdir()
    pack.save(store.pack_path)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(0, 181):
        if step % 10 == 0:
            store.write(step, take_snapshot(model, pack, step).to_arrays(), SNAPSHOT_FORMAT)
        ids = synthetic_rows(rng, 32, T, a, x, vocab, linked=step >= N)
        chosen = rng.random(ids.shape) < 0.25
        chosen[:, 0] = chosen[:, -1] = False
        labels = np.where(chosen, ids, -100)
        inputs = np.where(chosen, 4, ids)
        model.train()
        out = model(torch.from_numpy(inputs), torch.zeros(32, T, dtype=torch.long), torch.ones(32, T, dtype=torch.long),
                    mlm_labels=torch.from_numpy(labels), pair_head=False)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    inspection = RunInspection(tmp_path)
    word = next(w for w in inspection.word_curves() if w.token == f"w{x}")
    assert word.learned_step is not None and N <= word.learned_step <= N + 80
    assert word.surprisal[-1] < 0.5 < word.surprisal[inspection.index_at(N)]


def test_learned_step_of_constructed_curves():
    steps = np.array([0, 10, 20, 30, 40])
    assert learned_step(np.array([5.0, 5.0, 1.0, 1.0, 1.0]), steps) == 20
    assert learned_step(np.array([5.0, 2.0, 5.0, 1.0, 1.0]), steps) == 30     # a dip that came back is not it
    assert learned_step(np.array([5.0, 4.8, 4.7, 4.6, 4.5]), steps) is None   # never fell a nat
    assert learned_step(np.array([5.0, 5.0, 5.0, 5.0, 1.0]), steps) == 40


# --- embeddings ------------------------------------------------------------------------------------------

def test_the_2d_alignment_keeps_an_unchanged_embedding_still():
    rng = np.random.default_rng(0)
    first = rng.normal(size=(50, 16))
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    moved = first.copy()
    moved[:5] += rng.normal(size=(5, 16)) * 3.0
    maps = aligned_pca([first, first, first @ rotation, moved])
    assert np.allclose(maps[1], maps[0], atol=1e-8)                 # unchanged: not one point moves
    assert np.allclose(maps[2], maps[0], atol=1e-6)                 # a rotation of the space changes nothing
    still = np.linalg.norm(maps[3][5:] - maps[0][5:], axis=1)
    assert np.median(still) < np.linalg.norm(maps[3][:5] - maps[0][:5], axis=1).min()


# --- attention and syntax ---------------------------------------------------------------------------------

CONLLU = """# text = the old river holds two keys
1\tthe\tthe\tDET\t_\t_\t3\tdet\t_\t_
2\told\told\tADJ\t_\t_\t3\tamod\t_\t_
3\triver\triver\tNOUN\t_\t_\t4\tnsubj\t_\t_
4\tholds\thold\tVERB\t_\t_\t0\troot\t_\t_
5\ttwo\ttwo\tNUM\t_\t_\t6\tnummod\t_\t_
6\tkeys\tkey\tNOUN\t_\t_\t4\tobj\t_\t_

1\tthe\tthe\tDET\t_\t_\t2\tdet\t_\t_
2\tforest\tforest\tNOUN\t_\t_\t3\tnsubj\t_\t_
3-4\tkeeps'\t_\t_\t_\t_\t_\t_\t_\t_
3\tkeeps\tkeep\tVERB\t_\t_\t0\troot\t_\t_
4\twater\twater\tNOUN\t_\t_\t3\tobj\t_\t_
"""


def test_a_head_wired_to_the_dependency_head_scores_100_percent():
    sentences = parse_conllu(CONLLU)
    assert [len(s.words) for s in sentences] == [6, 4]
    right = scored = 0
    for sentence in sentences:
        W = len(sentence.words)
        T = W + 2
        spans = [(i + 1, i + 2) for i in range(W)]              # one piece per word after [CLS]
        wired = np.zeros((1, 2, T, T))
        for i, head in enumerate(sentence.heads):
            wired[0, 0, i + 1, (head if head else i + 1)] = 1.0    # to the head's piece (root: itself)
            wired[0, 1, i + 1, i] = 1.0                            # head 1: the previous position
        wired[0, :, 0, 0] = wired[0, :, -1, -1] = 1.0
        hits, n = head_accuracy(wired, spans, sentence.heads)
        right, scored = right + hits, scored + n
    assert scored == 8
    assert right[0, 0] == scored                                  # 100%
    assert right[0, 1] < scored


@pytest.mark.parametrize("text, message", [
    ("1\tthe\tthe\tDET\t_\t_\t0\troot\t_\n", "10 tab-separated columns"),
    ("1\tthe\t_\t_\t_\t_\t0\troot\t_\t_\n2\tend\t_\t_\t_\t_\t0\troot\t_\t_\n", "exactly one root"),
    ("1\tthe\t_\t_\t_\t_\t7\tdet\t_\t_\n", "points past"),
    ("2\tthe\t_\t_\t_\t_\t0\troot\t_\t_\n", "should be 1"),
    ("# only a comment\n", "no CoNLL-U sentences"),
])
def test_a_malformed_treebank_is_refused_with_its_line(text, message):
    with pytest.raises(TreebankError, match=message):
        parse_conllu(text, "bank.conllu")


def test_a_treebank_of_another_script_is_refused(tmp_path, learnable_dataset):
    path = tmp_path / "greek.conllu"
    path.write_text("1\tο\t_\t_\t_\t_\t2\tdet\t_\t_\n2\tποταμός\t_\t_\t_\t_\t0\troot\t_\t_\n", encoding="utf-8")
    with pytest.raises(TreebankError, match="another language"):
        read_treebank(path, learnable_dataset.tokenizer)


# --- probes ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, message", [
    ('{"kind": "fill", "text": "The old [MASK] holds two keys.", "answer": "river"}', "is 4 tokens"),
    ('{"kind": "fill", "text": "The old river holds two keys.", "answer": "river"}', r"exactly one \[MASK\]"),
    ('{"kind": "minimal", "good": "The old river holds ¤ keys.", "bad": "The old river hold two keys."}',
     "not in the tokenizer's vocabulary"),
    ('{"kind": "guess", "text": "x"}', "must be one of fill, minimal, next"),
    ('{"kind": "next", "first": "The old river.", "second": "The forest."}', "needs 'is_next'"),
    ("not json", "not a JSON object"),
])
def test_a_bad_probe_is_refused_with_file_and_line(tmp_path, learnable_dataset, line, message):
    path = tmp_path / "probes.jsonl"
    path.write_text('{"kind": "fill", "text": "The old river holds two [MASK].", "answer": "keys"}\n' + line + "\n",
                    encoding="utf-8")
    with pytest.raises(ProbeFileError, match=message) as raised:
        read_probes(path, learnable_dataset.tokenizer)
    assert f"{path}:2" in str(raised.value)


def test_tsv_probes_are_read_and_scored(tmp_path, learnable_dataset):
    from workbench.snapshots.probes import score_probes

    path = tmp_path / "probes.tsv"
    path.write_text("# kind\tfirst\tsecond\n"
                    "fill\tThe old river holds two [MASK].\tkeys\n"
                    "minimal\tThe old river holds two keys.\tThe old river hold two keys.\tagreement\n"
                    "next\tThe old river holds two keys.\tThe old river needs some water.\tyes\n", encoding="utf-8")
    probes = read_probes(path, learnable_dataset.tokenizer)
    assert [p.kind for p in probes] == ["fill", "minimal", "next"] and probes[1].name == "agreement"
    model = small_model(learnable_dataset.vocabulary.size).eval()
    scores, right = score_probes(model, learnable_dataset.tokenizer, probes, torch.device("cpu"))
    assert scores[0] < 0 and np.isfinite(scores).all() and set(right.tolist()) <= {0, 1}


# --- the store --------------------------------------------------------------------------------------------

def test_a_run_without_snapshots_says_how_to_get_them(tmp_path):
    with pytest.raises(SnapshotError, match="--from-checkpoints"):
        RunInspection(tmp_path)


def test_a_damaged_snapshot_is_a_clear_error(tmp_path):
    store = SnapshotStore(tmp_path)
    store.folder.mkdir()
    store.path(3).write_bytes(b"not a zip")
    with pytest.raises(SnapshotError, match="step-0000003.npz: cannot read"):
        store.read(3)
    assert store.steps() == [3] and store.remove_after(2) == [3] and store.steps() == []


def test_views_give_tables_for_every_view(learnable_dataset, tmp_path):
    config = pack_config(learnable_dataset)
    pack = build_probe_pack(learnable_dataset, config)
    store = SnapshotStore(tmp_path)
    store.folder.mkdir()
    pack.save(store.pack_path)
    model = small_model(learnable_dataset.vocabulary.size)
    for step in (0, 1, 2):
        store.write(step, take_snapshot(model, pack, step).to_arrays(), SNAPSHOT_FORMAT)
    inspection = RunInspection(tmp_path)
    word = inspection.map_words(5)[0]
    for view in ("heads", "classes", "words", "stages", "embeddings", "probes", "syntax", "passage"):
        columns, rows = table(inspection, view)
        assert all(len(r) == len(columns) for r in rows), view
    columns, rows = table(inspection, "neighbours", word=word)
    assert len(rows) == 10 and rows[0][1] == word and -1.0 <= rows[0][3] <= 1.0
    with pytest.raises(SnapshotError, match="not among"):
        inspection.neighbours("zeppelin", 0)
