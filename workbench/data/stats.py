"""Corpus statistics and diagnostics gathered while the store is written.

Everything is kept as bounded histograms (memory does not grow with the
corpus) from which means and percentiles are derived. The result is plain
JSON (``stats.json`` in a dataset), read by the CLI and the GUI's corpus panel.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from workbench.data.diagnostics import Diagnostics

SENTENCE_CAP = 1024   # sentence lengths (tokens) >= this share the last bin
DOC_SENTENCES_CAP = 512
DOC_TOKENS_BIN = 32   # documents are binned by tokens // 32
DOC_TOKENS_CAP = 1024  # ... up to 32 * 1024 tokens


class CorpusStatsBuilder:
    def __init__(self, max_seq_length: int, diagnostics: Diagnostics):
        self.max_sentence_tokens = max_seq_length - 3  # room for [CLS] A [SEP] B [SEP]
        self.max_seq_length = max_seq_length
        self.diagnostics = diagnostics
        self.characters = 0
        self.unknown = 0
        self.sentence_hist = np.zeros(SENTENCE_CAP + 1, np.int64)
        self.doc_sentence_hist = np.zeros(DOC_SENTENCES_CAP + 1, np.int64)
        self.doc_token_hist = np.zeros(DOC_TOKENS_CAP + 1, np.int64)

    def add_sentences(self, characters: int, lengths: np.ndarray, kept: np.ndarray, flat: np.ndarray,
                      unk_id: int, where: Callable[[int], str]) -> None:
        """Account for a batch of sentences: ``lengths`` (S,) tokens each, ``kept`` (S,) those with any
        token, ``flat`` their ids back to back; ``where(i)`` names the place of sentence i."""
        self.characters += characters
        self.sentence_hist += np.bincount(np.minimum(lengths[kept], SENTENCE_CAP), minlength=SENTENCE_CAP + 1)
        long = np.flatnonzero(lengths > self.max_sentence_tokens)
        if len(long):
            self.diagnostics.note("long_sentence", where(int(long[0])), len(long))
        unk_positions = np.flatnonzero(flat == unk_id)
        if len(unk_positions):
            ends = np.cumsum(lengths)
            sentence = int(np.searchsorted(ends, unk_positions[0], side="right"))
            self.diagnostics.note("unknown_token", where(sentence), len(unk_positions))
            self.unknown += len(unk_positions)

    def add_documents(self, sentences_per_doc: np.ndarray, tokens_per_doc: np.ndarray,
                      where: Callable[[int], str]) -> None:
        """Account for finished documents (each with at least one sentence): (D,) sentences and tokens."""
        self.doc_sentence_hist += np.bincount(np.minimum(sentences_per_doc, DOC_SENTENCES_CAP),
                                              minlength=DOC_SENTENCES_CAP + 1)
        self.doc_token_hist += np.bincount(np.minimum(tokens_per_doc // DOC_TOKENS_BIN, DOC_TOKENS_CAP),
                                           minlength=DOC_TOKENS_CAP + 1)
        single = np.flatnonzero(sentences_per_doc == 1)
        if len(single):
            self.diagnostics.note("one_sentence_document", where(int(single[0])), len(single))

    def state(self) -> dict:
        """What has been gathered so far, as JSON (a prepare checkpoint keeps it)."""
        return {"characters": self.characters, "unknown": self.unknown,
                "sentence_hist": self.sentence_hist.tolist(), "doc_sentence_hist": self.doc_sentence_hist.tolist(),
                "doc_token_hist": self.doc_token_hist.tolist()}

    def restore(self, state: dict) -> None:
        self.characters, self.unknown = int(state["characters"]), int(state["unknown"])
        for name in ("sentence_hist", "doc_sentence_hist", "doc_token_hist"):
            values = np.asarray(state[name], dtype=np.int64)
            if values.shape != getattr(self, name).shape:
                raise ValueError(f"checkpoint {name} has the wrong shape")
            setattr(self, name, values)

    def finish(self, counts: dict, diagnostics: Diagnostics) -> dict:
        tokens = max(1, counts["tokens"])
        return {
            "counts": {k: counts[k] for k in ("documents", "sentences", "tokens", "characters", "bytes")},
            "max_seq_length": self.max_seq_length,
            "unknown_token_share": self.unknown / tokens,
            "sentence_tokens": summarize(self.sentence_hist, 1),
            "document_sentences": summarize(self.doc_sentence_hist, 1),
            "document_tokens": summarize(self.doc_token_hist, DOC_TOKENS_BIN),
            "diagnostics": diagnostics.to_dict(),
        }


def summarize(hist: np.ndarray, bin_width: int) -> dict:
    """Mean and percentiles of a histogram whose bin i holds values in [i*w, (i+1)*w)."""
    total = int(hist.sum())
    if total == 0:
        return {"count": 0, "mean": 0.0, "p50": 0, "p90": 0, "p99": 0, "max": 0,
                "bin_width": bin_width, "histogram": []}
    values = np.arange(len(hist)) * bin_width
    cumulative = np.cumsum(hist)

    def percentile(q: float) -> int:
        return int(values[np.searchsorted(cumulative, q * total)])

    last = int(np.flatnonzero(hist)[-1])
    return {
        "count": total,
        "mean": float((hist * (values + (bin_width - 1) / 2 if bin_width > 1 else values)).sum() / total),
        "p50": percentile(0.5),
        "p90": percentile(0.9),
        "p99": percentile(0.99),
        "max": int(values[last]),
        "capped": bool(hist[-1] > 0),
        "bin_width": bin_width,
        "histogram": hist[: last + 1].tolist(),
    }
