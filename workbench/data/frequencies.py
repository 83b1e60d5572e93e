"""Token and token-pair counts of a dataset's training documents (its held-out documents left out).

The context-free floor of the loss curves (``workbench.train.evaluation``) and the stage meter of the
Inspect panel (``workbench.snapshots``) compare a model against these. Read in pieces: flat memory.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from workbench.data.pairs import document_split

PIECE = 1 << 22


def heldout_ranges(dataset, heldout_fraction: float) -> Iterator[tuple[int, int]]:
    """(first, last) token offsets of every held-out document."""
    _, heldout = document_split(dataset.num_documents, heldout_fraction)
    doc_off, sent_off = dataset.document_offsets, dataset.sentence_offsets
    for doc in heldout:
        yield int(sent_off[doc_off[doc]]), int(sent_off[doc_off[doc + 1]])


def training_token_counts(dataset, heldout_fraction: float) -> np.ndarray:
    """How often each token id occurs in the training documents, (V,) float64."""
    size = dataset.vocabulary.size
    counts = np.zeros(size, dtype=np.float64)
    for start in range(0, len(dataset.tokens), PIECE):
        counts += np.bincount(np.asarray(dataset.tokens[start:start + PIECE]), minlength=size)[:size]
    for first, last in heldout_ranges(dataset, heldout_fraction):
        counts -= np.bincount(np.asarray(dataset.tokens[first:last]), minlength=size)[:size]
    return counts


def training_bigram_counts(dataset, heldout_fraction: float, prevs: np.ndarray,
                           limit: int = 50_000_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse count(prev, next) over the training documents (within the first ``limit`` tokens), for the
    ``prevs`` given only: (prev ids, next ids, counts).

    Pairs that cross a sentence or document boundary count too: the model sees them as neighbours in its
    sequences as well."""
    V = dataset.vocabulary.size
    tokens = dataset.tokens
    end = min(len(tokens), limit)
    keys: list[np.ndarray] = []
    weights: list[np.ndarray] = []

    def count(first: int, last: int, sign: float) -> None:
        for start in range(first, last - 1, PIECE):
            piece = np.asarray(tokens[start:min(last, start + PIECE + 1)], dtype=np.int64)
            prev, nxt = piece[:-1], piece[1:]
            keep = np.isin(prev, prevs)
            unique, n = np.unique(prev[keep] * V + nxt[keep], return_counts=True)
            keys.append(unique)
            weights.append(sign * n.astype(np.float64))

    count(0, end, 1.0)
    for first, last in heldout_ranges(dataset, heldout_fraction):
        if first < end:
            count(first, min(last, end), -1.0)
    if not keys:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0)
    unique, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    totals = np.bincount(inverse, weights=np.concatenate(weights))
    keep = totals > 0
    return unique[keep] // V, unique[keep] % V, totals[keep]
