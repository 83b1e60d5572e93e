"""Dynamic MLM masking of a whole batch at once, vectorised with numpy.

One function, ``mask_batch``, serves training and the masking preview: it
returns the masked ids, the labels (original id where predicted, -100
elsewhere) and the *kind* of every position, so a viewer can draw exactly
what the model was trained on.

Selection works on *units*: single tokens (``strategy = "token"``), whole
words (a WordPiece ``##`` piece belongs to the word before it) or spans of
whole words. Each sequence first gets a budget of tokens to predict:

* ``exact`` (Google's BERT): ``min(cap, max(1, round(length * probability)))``
  where ``length`` counts [CLS] and [SEP] as Google's
  ``create_pretraining_data.py`` does and ``cap`` is ``max_predictions_per_seq``
  (0: no cap);
* ``bernoulli`` (the ``transformers`` collator): ``Binomial(candidates,
  probability)``; choosing that many tokens uniformly at random is exactly
  an independent per-token coin flip. The budget is then clipped to
  ``[min_predictions_per_seq, cap]`` so that no
  sequence is left without a prediction (a NaN loss) unless asked for.

With whole words or spans a budget of one token may fit no word at all; such
a sequence then gets one random whole word (of at most
``cap`` tokens), so it still has a prediction.

Units are then taken in random order while they fit the budget, skipping a
unit that would overflow it and continuing with the next (Google's
whole-word rule); spans are drawn as in SpanBERT (geometric length in words,
clipped, uniform start, no overlap, shortened to fit the budget).
Special tokens ([CLS] [SEP] [PAD] [UNK] [MASK] [unused*]) are never
selected and never drawn as random replacements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.config import MaskingConfig
from workbench.data.tokenizer import Vocabulary

IGNORE_INDEX = -100  # label of positions that are not predicted, as in transformers

# Kind of every position (``MaskedTokens.kinds``).
NOT_SELECTED, MASKED, RANDOM, KEPT = 0, 1, 2, 3
KIND_NAMES = ("not selected", "[MASK]", "random", "kept")

_MAX_ROUNDS = 64  # bound on the vectorised selection loops (each round is O(B*T))


@dataclass
class MaskedTokens:
    input_ids: np.ndarray  # (B, T) int64: ids the model sees
    labels: np.ndarray     # (B, T) int64: original id where predicted, -100 elsewhere
    kinds: np.ndarray      # (B, T) int8: NOT_SELECTED | MASKED | RANDOM | KEPT


def mask_batch(input_ids: np.ndarray, attention_mask: np.ndarray, vocab: Vocabulary,
               config: MaskingConfig, rng: np.random.Generator) -> MaskedTokens:
    """Select positions to predict and corrupt them. ``input_ids`` (B, T) is not modified."""
    input_ids = np.asarray(input_ids, dtype=np.int64)
    real = np.asarray(attention_mask).astype(bool)                       # (B, T)
    candidate = real & ~vocab.is_special[input_ids]                       # (B, T)
    n_candidates = candidate.sum(axis=1)                                  # (B,)

    if config.selection == "exact":
        lengths = real.sum(axis=1)  # includes [CLS]/[SEP], as Google counts
        budget = np.maximum(1, np.rint(lengths * config.probability).astype(np.int64))
    else:
        budget = rng.binomial(n_candidates, config.probability).astype(np.int64)
        budget = np.maximum(budget, config.min_predictions_per_seq)
    cap = config.prediction_cap(input_ids.shape[1])
    budget = np.minimum(np.minimum(budget, cap), n_candidates)

    word_id, n_words = _word_ids(input_ids, candidate, vocab, config.strategy)
    if config.strategy == "span":
        selected = _select_spans(word_id, n_words, candidate, budget, config, rng)
    else:
        selected = _select_units(word_id, n_words, candidate, budget, rng)
    if config.strategy != "token" and (config.selection == "exact" or config.min_predictions_per_seq > 0):
        selected |= _one_word_where_empty(selected, word_id, candidate, cap, rng)

    kinds = np.zeros(input_ids.shape, dtype=np.int8)
    draw = rng.random(input_ids.shape)
    kinds[selected & (draw < config.mask_fraction)] = MASKED
    kinds[selected & (draw >= config.mask_fraction) & (draw < config.mask_fraction + config.random_fraction)] = RANDOM
    kinds[selected & (draw >= config.mask_fraction + config.random_fraction)] = KEPT

    masked = input_ids.copy()
    masked[kinds == MASKED] = vocab.mask_id
    n_random = int((kinds == RANDOM).sum())
    if n_random:
        masked[kinds == RANDOM] = vocab.replacement_ids[rng.integers(0, len(vocab.replacement_ids), n_random)]
    labels = np.where(selected, input_ids, IGNORE_INDEX)
    return MaskedTokens(masked, labels, kinds)


def _word_ids(input_ids: np.ndarray, candidate: np.ndarray, vocab: Vocabulary, strategy: str) -> tuple[np.ndarray, np.ndarray]:
    """Unit index of every candidate position (-1 elsewhere), and the number of units per row."""
    if strategy == "token":
        starts = candidate
    else:
        previous_candidate = np.zeros_like(candidate)
        previous_candidate[:, 1:] = candidate[:, :-1]
        # A word starts at a candidate that is not a ## piece, or whose left neighbour is not a candidate.
        starts = candidate & (~vocab.is_continuation[input_ids] | ~previous_candidate)
    word_id = np.cumsum(starts, axis=1) - 1
    word_id[~candidate] = -1
    return word_id, starts.sum(axis=1)


def _select_units(word_id: np.ndarray, n_words: np.ndarray, candidate: np.ndarray,
                  budget: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Take units in random order while they fit ``budget``; skip one that overflows and go on."""
    B, T = word_id.shape
    rows = np.arange(B)[:, None]
    if (n_words == candidate.sum(axis=1)).all():
        # Every unit is one token: the first ``budget`` candidates in a random order.
        key = np.where(candidate, rng.random((B, T)), 2.0)
        order = np.argsort(key, axis=1)
        selected = np.zeros((B, T), dtype=bool)
        np.put_along_axis(selected, order, np.arange(T)[None, :] < budget[:, None], axis=1)
        return selected
    safe_word = np.where(candidate, word_id, 0)
    size = np.zeros((B, T), dtype=np.int64)                   # tokens per unit
    np.add.at(size, (np.broadcast_to(rows, (B, T))[candidate], word_id[candidate]), 1)
    key = rng.random((B, T))[rows, safe_word]                 # every token carries its unit's key
    key = np.where(candidate, key, 2.0)
    order = np.argsort(key, axis=1, kind="stable")             # units contiguous, tokens in order
    sorted_word = np.take_along_axis(safe_word, order, axis=1)
    sorted_candidate = np.take_along_axis(candidate, order, axis=1)
    sorted_size = size[rows, sorted_word]

    selected_sorted = np.zeros((B, T), dtype=bool)
    remaining = budget.copy()
    for _ in range(_MAX_ROUNDS):
        eligible = sorted_candidate & ~selected_sorted & (sorted_size <= remaining[:, None])
        if not eligible.any():
            break
        running = np.cumsum(eligible, axis=1)
        # Token count when the unit containing this token is complete: units are contiguous,
        # so the largest running count over the unit's tokens.
        unit_end = np.zeros((B, T), dtype=np.int64)
        np.maximum.at(unit_end, (np.broadcast_to(rows, (B, T))[eligible], sorted_word[eligible]), running[eligible])
        take = eligible & (unit_end[rows, sorted_word] <= remaining[:, None])
        if not take.any():
            break
        selected_sorted |= take
        remaining = remaining - take.sum(axis=1)
    selected = np.zeros((B, T), dtype=bool)
    np.put_along_axis(selected, order, selected_sorted, axis=1)
    return selected & candidate


def _one_word_where_empty(selected: np.ndarray, word_id: np.ndarray, candidate: np.ndarray, cap: int,
                          rng: np.random.Generator) -> np.ndarray:
    """A random whole word of at most ``cap`` tokens for rows where every word overflowed the budget."""
    B, T = word_id.shape
    empty = ~selected.any(axis=1) & candidate.any(axis=1)
    if not empty.any():
        return np.zeros_like(selected)
    rows = np.broadcast_to(np.arange(B)[:, None], (B, T))
    size = np.zeros((B, T), dtype=np.int64)
    np.add.at(size, (rows[candidate], word_id[candidate]), 1)
    key = np.where((size >= 1) & (size <= cap), rng.random((B, T)), 2.0)
    chosen = key.argmin(axis=1)
    usable = empty & (key.min(axis=1) < 2.0)
    return candidate & usable[:, None] & (word_id == chosen[:, None])


def _select_spans(word_id: np.ndarray, n_words: np.ndarray, candidate: np.ndarray, budget: np.ndarray,
                  config: MaskingConfig, rng: np.random.Generator) -> np.ndarray:
    """SpanBERT: spans of whole words, geometric lengths, uniform starts, no overlaps."""
    B, T = word_id.shape
    rows = np.arange(B)
    max_len = config.span_max_words
    size = np.zeros((B, T + 1), dtype=np.int64)
    np.add.at(size, (np.broadcast_to(rows[:, None], (B, T))[candidate], word_id[candidate]), 1)
    cum_size = np.concatenate([np.zeros((B, 1), np.int64), np.cumsum(size, axis=1)], axis=1)  # (B, T+2)
    word_selected = np.zeros((B, T + 1), dtype=bool)
    remaining = budget.copy()
    misses = np.zeros(B, dtype=np.int64)
    offsets = np.arange(1, max_len + 1)
    for _ in range(_MAX_ROUNDS):
        active = (remaining > 0) & (n_words > 0) & (misses < 8)
        if not active.any():
            break
        length = np.minimum(rng.geometric(config.span_geometric_p, B), max_len)
        start = np.minimum((rng.random(B) * n_words).astype(np.int64), np.maximum(n_words - 1, 0))
        ends = np.minimum(start[:, None] + offsets[None, :], n_words[:, None])               # (B, L)
        tokens = cum_size[rows[:, None], ends] - cum_size[rows, start][:, None]              # (B, L)
        fits = (offsets[None, :] <= length[:, None]) & (tokens <= remaining[:, None]) & (ends > start[:, None])
        # Longest prefix of the span that fits the budget (at least one word, else a miss).
        best = np.where(fits, offsets[None, :], 0).max(axis=1)
        end = np.minimum(start + best, n_words)
        taken_before = np.concatenate([np.zeros((B, 1), np.int64), np.cumsum(word_selected, axis=1)], axis=1)
        overlap = (taken_before[rows, end] - taken_before[rows, start]) > 0
        accept = active & (best > 0) & ~overlap
        misses = np.where(active & ~accept, misses + 1, np.where(accept, 0, misses))
        span = accept[:, None] & (offsets[None, :] <= (end - start)[:, None])                 # (B, L)
        r, k = np.nonzero(span)
        word_selected[r, start[r] + k] = True
        remaining = remaining - np.where(accept, cum_size[rows, end] - cum_size[rows, start], 0)
    safe_word = np.where(candidate, word_id, T)
    return candidate & word_selected[rows[:, None], safe_word]
