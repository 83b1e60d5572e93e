"""The probe pack: fixed held-out sequences that every snapshot of a run is measured on.

Each sequence is real, contiguous held-out text (``[CLS] A [SEP] B [SEP]`` with B the true continuation).
Its tokens are split into ``patterns`` disjoint mask patterns: pattern j masks position t of row s when
``(t + s) % patterns == j``. Scoring every pattern once masks every token exactly once, so each token's
surprisal is known at every snapshot, and no two neighbours are masked together (the previous token is
always visible, which the bigram reference of the stage meter relies on).

The pack also carries what the views compare against, counted on the *training* documents: the unigram
distribution (token frequencies, add-one smoothed as the context-free floor of the loss curves is) and the
bigram counts ``count(prev, next)`` for every ``prev`` that occurs in the pack. It is built once per run and
stored with it (``RUN/inspect/pack.npz``), so a resumed run and a later ``inspect`` use the same pack.
"""

from __future__ import annotations

import copy
import unicodedata
from dataclasses import dataclass, fields

import numpy as np

from workbench.config import WorkbenchConfig
from workbench.data.batches import BatchStream
from workbench.data.tokenizer import Vocabulary
from workbench.data.frequencies import training_bigram_counts, training_token_counts

PACK_SEED = 20251201          # independent of any run's seed: runs of one dataset share a pack
PACK_FORMAT = 1
BIGRAM_SMOOTHING = 5.0        # b(w | p) = (count(p, w) + 5 u(w)) / (count(p) + 5): unigram backoff for rare p
FREQUENCY_BANDS = (100, 1000, 5000)   # frequency-rank edges: top 100, 100-1k, 1k-5k, the rest


@dataclass
class ProbePack:
    input_ids: np.ndarray        # (S, T) int64, the original tokens with [CLS] / [SEP] / [PAD]
    token_type_ids: np.ndarray   # (S, T) int64
    attention_mask: np.ndarray   # (S, T) int64
    pattern: np.ndarray          # (S, T) int8: which pattern masks the position; -1 for specials and padding
    unigram: np.ndarray          # (V,) float64 training-set token probabilities
    frequency_rank: np.ndarray   # (V,) int64: 0 for the most frequent token of the training set
    top_words: np.ndarray        # (K,) int64: the K most frequent non-special tokens (embeddings are kept)
    bigram_prev: np.ndarray      # (E,) int64  } sparse count(prev, next) on the training documents, sorted by prev,
    bigram_next: np.ndarray      # (E,) int64  } for the prev tokens of the pack
    bigram_count: np.ndarray     # (E,) float64
    is_punctuation: np.ndarray   # (V,) bool
    is_number: np.ndarray        # (V,) bool
    is_continuation: np.ndarray  # (V,) bool: WordPiece "##" pieces
    is_special: np.ndarray       # (V,) bool
    tokens: np.ndarray           # (V,) str: the vocabulary, for labels
    fingerprint: str             # dataset fingerprint and pack settings: a pack is reused only when equal
    from_heldout: bool           # False when the dataset has no held-out documents (drawn from training text)

    @property
    def patterns(self) -> int:
        return int(self.pattern.max()) + 1 if (self.pattern >= 0).any() else 1

    @property
    def vocab_size(self) -> int:
        return len(self.unigram)

    def masked_inputs(self, mask_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Every pattern applied once: inputs and MLM labels, each (P * S, T); row p * S + s is pattern p of s."""
        P = self.patterns
        ids = np.tile(self.input_ids, (P, 1))
        which = np.repeat(np.arange(P), len(self.input_ids))[:, None]          # (P*S, 1)
        chosen = np.tile(self.pattern, (P, 1)) == which
        labels = np.where(chosen, ids, -100)
        return np.where(chosen, mask_id, ids), labels

    def save(self, path) -> None:
        from workbench.snapshots.store import write_npz

        write_npz(path, {f.name: getattr(self, f.name) for f in fields(self)}, format=PACK_FORMAT)

    @classmethod
    def load(cls, path) -> "ProbePack":
        from workbench.snapshots.store import read_npz

        arrays = read_npz(path)
        values = {f.name: arrays[f.name] for f in fields(cls)}
        values["fingerprint"] = str(values["fingerprint"])
        values["from_heldout"] = bool(values["from_heldout"])
        return cls(**values)


def pack_fingerprint(dataset, config: WorkbenchConfig) -> str:
    i, d = config.inspect, config.data
    return f"{dataset.fingerprint}:{i.sequences}:{i.patterns}:{i.words}:{d.max_seq_length}:{d.heldout_fraction}"


def build_probe_pack(dataset, config: WorkbenchConfig) -> ProbePack:
    """The pack of ``config.inspect`` for this dataset (the same for every run of the dataset and settings)."""
    fixed = copy.deepcopy(config)
    fixed.nsp.random_next_probability = 0.0     # true continuations: a passage reads as text
    fixed.nsp.short_seq_prob = 0.0               # full-length sequences
    wanted = config.inspect.sequences
    heldout = True
    stream = BatchStream(dataset, fixed, wanted, PACK_SEED, "heldout")
    if len(stream.documents) == 0 or len(stream.plan(0)) == 0:
        heldout = False
        stream = BatchStream(dataset, fixed, wanted, PACK_SEED, "train")
    batch = stream.batch(0, 0)
    ids, real = batch.original_ids, batch.attention_mask.astype(bool)
    vocab = dataset.vocabulary
    S, T = ids.shape
    specials = vocab.is_special[ids] | ~real
    pattern = ((np.arange(T)[None, :] + np.arange(S)[:, None]) % config.inspect.patterns).astype(np.int8)
    pattern[specials] = -1

    counts = training_token_counts(dataset, config.data.heldout_fraction)
    unigram = counts + (~vocab.is_special)                  # add-one over non-special tokens
    unigram[vocab.is_special] = 0.0
    unigram = unigram / unigram.sum()
    order = np.lexsort((np.arange(len(counts)), -counts))    # by count, ties by id: deterministic
    rank = np.empty(len(counts), np.int64)
    rank[order] = np.arange(len(counts))
    ordinary = order[~vocab.is_special[order]]
    top_words = ordinary[: config.inspect.words].astype(np.int64)
    prevs = np.unique(ids[real])
    bigram_prev, bigram_next, bigram_count = training_bigram_counts(dataset, config.data.heldout_fraction, prevs)
    texts = np.array(vocab.tokens, dtype=object).astype(str)
    punctuation, number = token_classes(vocab)
    return ProbePack(ids, batch.token_type_ids, batch.attention_mask, pattern, unigram, rank, top_words,
                     bigram_prev, bigram_next, bigram_count, punctuation, number, vocab.is_continuation.copy(),
                     vocab.is_special.copy(), texts, pack_fingerprint(dataset, config), heldout)


def token_classes(vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """(is_punctuation, is_number), each (V,): punctuation or symbol characters only; digits (with . , only)."""
    punctuation = np.zeros(vocab.size, bool)
    number = np.zeros(vocab.size, bool)
    for index, token in enumerate(vocab.tokens):
        if vocab.is_special[index]:
            continue
        text = token[2:] if token.startswith("##") else token
        if not text:
            continue
        punctuation[index] = all(unicodedata.category(c)[0] in "PS" for c in text)
        number[index] = any(c.isdigit() for c in text) and all(c.isdigit() or c in ".,"
                                                                 for c in text)
    return punctuation, number


def bigram_rows(pack: ProbePack, prev: np.ndarray) -> np.ndarray:
    """The smoothed bigram distribution b(. | p) for each ``prev`` id, (len(prev), V) float32; the unigram
    where the previous token is special (it says nothing about the next word)."""
    unigram = pack.unigram.astype(np.float32)
    rows = np.empty((len(prev), len(unigram)), np.float32)
    rows[:] = unigram * np.float32(BIGRAM_SMOOTHING)
    lo = np.searchsorted(pack.bigram_prev, prev)                      # bigram_prev is sorted (np.unique's order)
    hi = np.searchsorted(pack.bigram_prev, prev, side="right")
    hi[pack.is_special[prev]] = lo[pack.is_special[prev]]            # no counts after a special token
    lengths = hi - lo
    row_of = np.repeat(np.arange(len(prev)), lengths)
    entries = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)]) if len(prev) else np.zeros(0, np.int64)
    counts = pack.bigram_count[entries].astype(np.float32)
    rows[row_of, pack.bigram_next[entries]] += counts      # (row, next) pairs are unique: no np.add.at needed
    totals = BIGRAM_SMOOTHING + np.bincount(row_of, weights=counts, minlength=len(prev)).astype(np.float32)
    rows /= totals[:, None]
    return rows
