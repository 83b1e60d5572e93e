"""Encoding millions of sentences fast, with exactly the ids each would get on its own.

``tokenizers`` spends more on per-string overhead than on encoding when handed one short sentence at a
time, so ``SentenceEncoder`` joins runs of about ``CHUNK_CHARS`` of sentences with a separator and
splits the ids again at the separator's id. The separator is a punctuation character that is a token of
the vocabulary and does not occur in the run (a different one per run if need be): the BERT
pre-tokenizer always makes punctuation a word of its own, and the normaliser works character by
character, so the words, and the ids, of each sentence are those it gets alone, and the separator's id
comes from nothing else. A run holding every candidate separator is encoded sentence by sentence.

For a tokenizer with BERT's normaliser and pre-tokenizer, a run of ASCII text (with an ASCII separator)
is also normalised here - lower-cased, control characters out: all that normaliser does to ASCII - with
``str`` methods, and encoded by a copy of the tokenizer without a normaliser. That saves about a third
of the encoding time on mostly-ASCII corpora (measured in ``benchmarks/big_prepare.py``).
"""

from __future__ import annotations

import itertools
import json
import string
import unicodedata

import numpy as np

from workbench.data.wordpiece_training import batched_by_chars

CHUNK_CHARS = 4096
# What BERT's normaliser does to ASCII besides lower-casing: \t \n \r become spaces, other controls go.
_ASCII_CLEAN = str.maketrans({**{c: None for c in [*range(0, 9), 11, 12, *range(14, 32), 127]},
                              9: " ", 10: " ", 13: " "})
# ASCII punctuation from the rarest in most text to the commonest; other punctuation (rarer still) first.
_ASCII_ORDER = "`~^|\\@$%&#*+=<>{}[]_;?!:'\"/()-,."


class SentenceEncoder:
    """``encode(texts)`` -> (lengths (S,), ids back to back), as ``tokenizer.encode(text)`` gives each."""

    def __init__(self, tokenizer):
        from tokenizers import Tokenizer

        self._tokenizer = tokenizer
        raw = json.loads(tokenizer.to_str())
        self._added = [token["content"] for token in raw.get("added_tokens", [])]
        self._separators = self._candidate_separators(tokenizer)
        self._ascii_first = sorted(self._separators, key=lambda item: not item[0].isascii())
        normalizer = raw.get("normalizer") or {}
        self._lowercase = bool(normalizer.get("lowercase"))
        self._bare = None  # the copy without a normaliser, for ASCII runs normalised here
        if (normalizer.get("type") == "BertNormalizer" and normalizer.get("clean_text")
                and (raw.get("pre_tokenizer") or {}).get("type") == "BertPreTokenizer"):
            raw["normalizer"] = None
            self._bare = Tokenizer.from_str(json.dumps(raw))

    def _candidate_separators(self, tokenizer) -> list[tuple[str, int]]:
        """Punctuation characters that are tokens, come through normalisation unchanged and stand alone."""
        if tokenizer.pre_tokenizer is None:
            return []
        vocab = tokenizer.get_vocab(with_added_tokens=False)
        in_added = set("".join(self._added))
        found = []
        for token, index in vocab.items():
            if len(token) != 1 or token in in_added:
                continue
            if not (token in string.punctuation or unicodedata.category(token).startswith("P")):
                continue
            normal = tokenizer.normalizer.normalize_str(token) if tokenizer.normalizer is not None else token
            if normal != token or [w for w, _ in tokenizer.pre_tokenizer.pre_tokenize_str("a" + token + "b")] != [
                    "a", token, "b"]:
                continue
            found.append((token, index))
        rank = {c: i for i, c in enumerate(_ASCII_ORDER)}
        return sorted(found, key=lambda item: (item[0].isascii(), rank.get(item[0], -1), item[0]))

    def encode(self, texts: list[str], dtype) -> tuple[np.ndarray, np.ndarray]:
        runs = list(batched_by_chars(texts, CHUNK_CHARS))
        joined_runs: list[str] = []
        bare_runs: list[str] = []  # ASCII runs normalised here, for the copy without a normaliser
        alone: list[str] = []
        plan: list[tuple[str, int, int]] = []  # per run: its batch, index there, separator id (or count)
        for run in runs:
            text = "".join(run)
            # An ASCII run keeps to ASCII separators first (so it can take the ASCII path); others the reverse.
            order = self._ascii_first if text.isascii() else self._separators
            separator = next(((c, i) for c, i in order if c not in text), None)
            if separator is None:
                plan.append(("alone", len(alone), len(run)))
                alone.extend(run)
                continue
            joined = separator[0].join(run) + separator[0]
            normalised = self._normalised_ascii(joined)
            if normalised is None:
                plan.append(("joined", len(joined_runs), separator[1]))
                joined_runs.append(joined)
            else:
                plan.append(("bare", len(bare_runs), separator[1]))
                bare_runs.append(normalised)

        encode = self._tokenizer.encode_batch_fast
        done = {"joined": encode(joined_runs, add_special_tokens=False) if joined_runs else [],
                "bare": self._bare.encode_batch_fast(bare_runs, add_special_tokens=False) if bare_runs else [],
                "alone": encode(alone, add_special_tokens=False) if alone else []}
        pieces: list = []
        ends: list[int] = []  # per run, the separator id that ends each of its sentences (-1: appended here)
        lengths_of_pieces: list[int] = []
        for kind, index, separator_id in plan:
            if kind == "alone":
                for encoding in done["alone"][index:index + separator_id]:
                    ids = encoding.ids
                    pieces.append(ids)
                    pieces.append((-1,))
                    lengths_of_pieces.append(len(ids) + 1)
                    ends.append(-1)
            else:
                ids = done[kind][index].ids
                pieces.append(ids)
                lengths_of_pieces.append(len(ids))
                ends.append(separator_id)
        marked = np.fromiter(itertools.chain.from_iterable(pieces), dtype=np.int64)
        is_end = marked == np.repeat(np.asarray(ends, np.int64), lengths_of_pieces)
        positions = np.flatnonzero(is_end)  # (S,) one after each sentence
        lengths = np.diff(positions, prepend=-1) - 1
        return lengths.astype(np.int64), marked[~is_end].astype(dtype)

    def _normalised_ascii(self, joined: str) -> str | None:
        """What the BERT normaliser makes of an ASCII run, or None when the tokenizer must see it itself
        (not ASCII, or an added token's text in it, whose matching lower-casing could change)."""
        if self._bare is None or not joined.isascii():
            return None
        text = joined.translate(_ASCII_CLEAN)
        if self._lowercase:
            text = text.lower()
        if any(token in joined or token in text for token in self._added):
            return None
        return text
