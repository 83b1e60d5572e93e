"""Sentence pairs for NSP / SOP, cut as in Google's ``create_instances_from_document``.

A pair is four numbers - the token slices of segment A and segment B in the
tokenized store - plus its label, so an epoch's plan is a few numpy arrays
and a training example is assembled with one gather (see ``batches``).

Per document (Google's recipe):
  * target length ``max_seq_length - 3``; with probability ``short_seq_prob``
    a random shorter target in [2, max] (drawn once per document, as Google does);
  * sentences are gathered into a chunk until the target is reached; A is
    the chunk's first ``a_end`` sentences (``a_end`` uniform in [1, len-1]);
  * NSP, NotNext (probability ``random_next_probability``): B is a run of
    sentences of another document from a random start, and the chunk's
    unused sentences go back to the stream; IsNext: B is the rest of the
    chunk;
  * SOP: B is always the rest of the chunk; NotNext means A and B swapped;
  * the pair is trimmed to the maximum, one token at a time from the longer
    segment, at the front or the back at random.

Where Google forces every one-sentence chunk to NotNext (so the realised
share drifts above the configured one), we draw the label first and, for an
IsNext of a one-sentence chunk, continue into the document's next sentences,
or - at the end of the document - cut the sentence at a random token. Only a
final one-token sentence alone, which no label fits, is skipped (before any
label is drawn). So the realised NotNext share is the configured one.

Labels follow ``transformers``: 0 = IsNext (in order), 1 = NotNext (random or swapped).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.config import DataConfig, NspConfig

IS_NEXT, NOT_NEXT = 0, 1


@dataclass
class PairPlan:
    """The pairs of one epoch, in training order. All arrays have shape (N,)."""

    a_start: np.ndarray  # int64 token offset of segment A in the store
    a_len: np.ndarray    # int64
    b_start: np.ndarray  # int64
    b_len: np.ndarray    # int64
    label: np.ndarray    # int64: IS_NEXT | NOT_NEXT
    truncated: np.ndarray  # bool: the pair was trimmed to fit

    def __len__(self) -> int:
        return len(self.label)

    def take(self, index) -> "PairPlan":
        return PairPlan(self.a_start[index], self.a_len[index], self.b_start[index], self.b_len[index],
                        self.label[index], self.truncated[index])


def document_split(num_documents: int, heldout_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) document ids, chosen by a hash of the id: stable as a corpus grows."""
    ids = np.arange(num_documents, dtype=np.uint64)
    # splitmix64 finaliser: a well-mixed, seed-free hash of the document index.
    z = ids + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    score = (z % np.uint64(1_000_000)).astype(np.float64)
    heldout = score < heldout_fraction * 1_000_000
    if heldout_fraction > 0 and not heldout.any() and num_documents >= 2:
        heldout[int(np.argmin(score))] = True  # a small corpus still gets one document to evaluate on
    if heldout.all() and num_documents:
        heldout[0] = False
    return np.flatnonzero(~heldout), np.flatnonzero(heldout)


def build_pair_plan(sentence_offsets: np.ndarray, document_offsets: np.ndarray, documents: np.ndarray,
                    data: DataConfig, nsp: NspConfig, rng: np.random.Generator, shuffle: bool = True) -> PairPlan:
    """Cut the given documents into pairs; ``shuffle`` puts them in random training order."""
    max_tokens = data.max_seq_length - 3
    sent_off = np.asarray(sentence_offsets)
    doc_off = np.asarray(document_offsets)
    documents = np.asarray(documents, dtype=np.int64)
    sop = nsp.objective == "sop"
    p_not_next = nsp.random_next_probability if nsp.pair_task else 0.0   # none: B always continues A
    out_a_start: list[int] = []
    out_a_len: list[int] = []
    out_b_start: list[int] = []
    out_b_len: list[int] = []
    out_label: list[int] = []

    def emit(a0: int, a1: int, b0: int, b1: int, label: int) -> None:
        out_a_start.append(a0)
        out_a_len.append(a1 - a0)
        out_b_start.append(b0)
        out_b_len.append(b1 - b0)
        out_label.append(label)

    for doc in documents.tolist():
        first, last = int(doc_off[doc]), int(doc_off[doc + 1])
        ends = sent_off[first:last + 1].tolist()  # token offsets: sentence k is ends[k]..ends[k+1]
        n = last - first
        target = max_tokens
        if rng.random() < nsp.short_seq_prob:
            target = int(rng.integers(2, max_tokens + 1))
        chunk_start = 0
        i = 0
        while i < n:
            length = ends[i + 1] - ends[chunk_start]
            if i != n - 1 and length < target:
                i += 1
                continue
            size = i + 1 - chunk_start  # sentences in the chunk chunk_start..i
            if size == 1 and i == n - 1 and ends[i + 1] - ends[i] < 2:
                break  # a lone one-token last sentence: no pair of any label fits
            label = NOT_NEXT if rng.random() < p_not_next else IS_NEXT
            a_end = chunk_start + (int(rng.integers(1, size)) if size >= 2 else 1)
            a0, a1 = ends[chunk_start], ends[a_end]
            if size >= 2:
                b0, b1 = ends[a_end], ends[i + 1]
                next_i = i + 1
            elif i + 1 < n:
                # One-sentence chunk: B continues into the next sentences of the document.
                j = i + 1
                while j + 1 < n and ends[j + 1] - ends[i + 1] < target - (a1 - a0):
                    j += 1
                b0, b1 = ends[i + 1], ends[j + 1]
                next_i = j + 1 if (label == IS_NEXT or sop) else i + 1
            elif label == IS_NEXT or sop:
                # Last sentence of the document alone: cut it at a random token.
                cut = a0 + int(rng.integers(1, a1 - a0))
                a1, b0, b1 = cut, cut, ends[i + 1]
                next_i = i + 1
            else:
                next_i = i + 1  # NotNext: B comes from another document below
            if label == NOT_NEXT and not sop:
                b0, b1 = _random_segment(ends, doc, doc_off, sent_off, documents, target - (a1 - a0), rng)
                if size >= 2:
                    next_i = a_end  # the unused sentences of the chunk go back to the stream
                else:
                    next_i = i + 1
            if label == NOT_NEXT and sop:
                a0, a1, b0, b1 = b0, b1, a0, a1
            emit(a0, a1, b0, b1, label)
            chunk_start = i = next_i
    plan = _truncate(out_a_start, out_a_len, out_b_start, out_b_len, out_label, max_tokens, rng)
    if shuffle and len(plan):
        plan = plan.take(rng.permutation(len(plan)))
    return plan


def _random_segment(ends: list[int], doc: int, doc_off: np.ndarray, sent_off: np.ndarray,
                    documents: np.ndarray, target_b: int, rng: np.random.Generator) -> tuple[int, int]:
    """Token slice of a run of sentences from another document, from a random start, of ~target_b tokens."""
    other = doc
    for _ in range(10):
        other = int(documents[rng.integers(0, len(documents))])
        if other != doc:
            break
    first, last = int(doc_off[other]), int(doc_off[other + 1])
    start = first + int(rng.integers(0, last - first))
    stop = start + 1
    b0 = int(sent_off[start])
    while stop < last and int(sent_off[stop]) - b0 < target_b:
        stop += 1
    return b0, int(sent_off[stop])


def _truncate(a_start, a_len, b_start, b_len, label, max_tokens: int, rng: np.random.Generator) -> PairPlan:
    """Google's ``truncate_seq_pair`` in closed form: the same lengths, the same front/back law.

    Google removes one token at a time from the longer segment (B on ties), at the
    front or the back with equal probability. The final lengths follow from the
    start lengths; the number removed from the front of a segment is Binomial(removed, 1/2).
    """
    a0 = np.asarray(a_start, dtype=np.int64)
    a = np.asarray(a_len, dtype=np.int64)
    b0 = np.asarray(b_start, dtype=np.int64)
    b = np.asarray(b_len, dtype=np.int64)
    over = a + b > max_tokens
    longer = np.maximum(a, b)
    shorter = np.minimum(a, b)
    only_longer = longer - (a + b - max_tokens) >= shorter
    # Both shrink to halves when trimming the longer alone is not enough; A keeps the odd token.
    half_a, half_b = max_tokens - max_tokens // 2, max_tokens // 2
    a_is_longer = a > b
    new_a = np.where(~over, a, np.where(only_longer, np.where(a_is_longer, max_tokens - b, a), half_a))
    new_b = np.where(~over, b, np.where(only_longer, np.where(a_is_longer, b, max_tokens - a), half_b))
    cut_a, cut_b = a - new_a, b - new_b
    a0 = a0 + rng.binomial(cut_a, 0.5)
    b0 = b0 + rng.binomial(cut_b, 0.5)
    return PairPlan(a0, new_a, b0, new_b, np.asarray(label, dtype=np.int64), over)
