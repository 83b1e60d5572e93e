"""Training a WordPiece vocabulary deterministically: same corpus and settings, same bytes.

``tokenizers``' own ``WordPieceTrainer`` breaks ties between equally frequent
merges (and numbers its first pieces) in hash-map order, so the same text gives
a different vocabulary on every run. Here the two halves are split:

* ``WordCounter`` counts words with the ``tokenizers`` normaliser and
  pre-tokenizer (Rust, deterministic, the exact pipeline encoding uses), a
  batch of text per call;
* ``train_vocabulary`` runs the merge loop of WordPiece training (BPE with a
  ``##`` continuation prefix, as ``tokenizers`` does it) in our own code with a
  total order: the most frequent pair first, ties to the pair whose parts
  entered the vocabulary first.

The result is a ``token -> id`` dictionary, ids in a fixed order: the special
tokens, the alphabet by code point, the ``##`` forms of the alphabet by code
point, then merges in the order they were made.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from typing import Callable, Iterable, Iterator, Sequence

PREFIX = "##"
MAX_WORDS = 1_000_000  # distinct words a vocabulary is trained on, at most (the most frequent)

# progress(merges made, merges wanted at most); called every few hundred merges.
MergeProgress = Callable[[int, int], None]


# The characters both Python and the BERT normaliser take for word boundaries; text is cut at them first
# and each distinct piece is normalised and pre-tokenized once (character-local work, so the words come
# out as if the whole text had gone through the pipeline, at a fraction of the cost).
_BOUNDARIES = str.maketrans({"\t": " ", "\n": " ", "\r": " "})
# For a piece of ASCII text the BERT pipeline is simple enough to do here, exactly and much faster than a
# call into ``tokenizers`` per piece: control characters go, ASCII punctuation stands alone.
_ASCII_PUNCTUATION = r"!-/:-@\[-`{-~"
_ASCII_WORDS = re.compile(rf"[^\s{_ASCII_PUNCTUATION}]+|[{_ASCII_PUNCTUATION}]")
_ASCII_CONTROL = str.maketrans({c: None for c in [*range(0, 9), 11, 12, *range(14, 32), 127]})
PIECES_HELD = 1 << 20  # distinct pieces held before they are turned into words (bounds memory)


class WordCounter:
    """Counts of the words the BERT normaliser and pre-tokenizer make of some text."""

    def __init__(self, lowercase: bool, strip_accents: bool):
        from tokenizers import normalizers, pre_tokenizers

        self._normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=strip_accents, lowercase=lowercase)
        self._pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        self._lowercase = lowercase
        self._pieces: Counter[str] = Counter()  # text between ASCII white space -> occurrences
        self._words: Counter[str] = Counter()
        self.characters = 0

    def add(self, texts: Sequence[str]) -> None:
        """Count the words of a batch of texts."""
        for text in texts:
            self.characters += len(text)
        self._pieces.update(" ".join(texts).translate(_BOUNDARIES).split(" "))
        if len(self._pieces) > PIECES_HELD:
            self._fold()

    def _fold(self) -> None:
        """Turn the pieces held into words (the same words whenever this happens: counts only add up)."""
        normalize, split = self._normalizer.normalize_str, self._pre_tokenizer.pre_tokenize_str
        words = self._words
        for piece, count in self._pieces.items():
            if not piece:
                continue
            if piece.isascii():
                if self._lowercase:
                    piece = piece.lower()
                for word in _ASCII_WORDS.findall(piece.translate(_ASCII_CONTROL)):
                    words[word] += count
            else:
                for word, _ in split(normalize(piece)):
                    words[word] += count
        self._pieces.clear()

    def counts(self) -> dict[str, int]:
        """Word -> occurrences, words as the tokenizer's normaliser and pre-tokenizer make them."""
        self._fold()
        return dict(self._words)


def batched_by_chars(texts: Iterable[str], chars: int) -> Iterator[list[str]]:
    """Consecutive texts in lists of about ``chars`` characters (a list ends once it reaches that)."""
    batch: list[str] = []
    size = 0
    for text in texts:
        batch.append(text)
        size += len(text)
        if size >= chars:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def train_vocabulary(word_counts: dict[str, int], vocab_size: int, special_tokens: Sequence[str],
                     min_frequency: int = 2, limit_alphabet: int | None = None,
                     progress: MergeProgress | None = None) -> dict[str, int]:
    """The WordPiece vocabulary (token -> id) of ``word_counts``; the same input gives the same output."""
    vocab: dict[str, int] = {}
    tokens: list[str] = []

    def add(token: str) -> int:
        index = vocab.get(token)
        if index is None:
            index = vocab[token] = len(tokens)
            tokens.append(token)
        return index

    for token in special_tokens:
        add(token)
    # Words in a fixed order (their counts came from a dict whose order may vary between callers); past
    # MAX_WORDS distinct words only the most frequent are kept (memory stays bounded whatever the text).
    items = sorted(word_counts.items())
    if len(items) > MAX_WORDS:
        items = sorted(sorted(items, key=lambda item: (-item[1], item[0]))[:MAX_WORDS])
    alphabet = _alphabet(items, limit_alphabet)
    for char in sorted(alphabet):
        add(char)
    continuing = sorted({c for word, _ in items for c in word[1:] if c in alphabet})
    for char in continuing:
        add(PREFIX + char)

    # Each word as a list of symbol ids; characters outside the alphabet are left out, as in ``tokenizers``.
    words: list[list[int]] = []
    counts: list[int] = []
    for word, count in items:
        symbols = [vocab[c if i == 0 else PREFIX + c] for i, c in enumerate(word) if c in alphabet]
        if len(symbols) > 1:
            words.append(symbols)
            counts.append(count)

    # A pair (left, right) is the int left << 32 | right: smaller than a tuple, and ordered the same way.
    pair_counts: dict[int, int] = {}
    where: dict[int, list[int]] = {}  # pair -> words that held it (may repeat, may be out of date)
    for index, (symbols, count) in enumerate(zip(words, counts)):
        for left, right in zip(symbols, symbols[1:]):
            pair = left << 32 | right
            pair_counts[pair] = pair_counts.get(pair, 0) + count
            where.setdefault(pair, []).append(index)
    # Max-heap by count; among equal counts the smaller (left id, right id) first: a total order.
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    wanted = max(0, vocab_size - len(tokens))
    made = 0
    while len(tokens) < vocab_size and heap:
        negative, pair = heapq.heappop(heap)
        actual = pair_counts.get(pair, 0)
        if actual != -negative:  # a stale entry: put it back at its current count
            if actual > 0:
                heapq.heappush(heap, (-actual, pair))
            continue
        if actual < min_frequency:
            break
        left, right = tokens[pair >> 32], tokens[pair & 0xFFFFFFFF]
        merged = add(left + (right[len(PREFIX):] if right.startswith(PREFIX) else right))
        for other in _merge(pair, merged, words, counts, pair_counts, where):
            count = pair_counts.get(other, 0)
            if count > 0:
                heapq.heappush(heap, (-count, other))
        made += 1
        if progress is not None and made % 256 == 0:
            progress(made, wanted)
    return vocab


def _alphabet(items: Iterable[tuple[str, int]], limit: int | None) -> set[str]:
    """The characters kept: the ``limit`` most frequent (weighted by word count), ties by code point."""
    chars: Counter[str] = Counter()
    for word, count in items:
        for char in word:
            chars[char] += count
    ranked = sorted(chars.items(), key=lambda item: (-item[1], item[0]))
    if limit is not None:
        ranked = ranked[:limit]
    return {char for char, _ in ranked}


def _merge(pair: int, merged: int, words: list[list[int]], counts: list[int],
           pair_counts: dict[int, int], where: dict[int, list[int]]) -> set[int]:
    """Replace ``pair`` by ``merged`` in every word holding it; return the pairs whose count grew."""
    first, second = pair >> 32, pair & 0xFFFFFFFF
    grown: set[int] = set()
    for index in set(where.pop(pair, ())):
        symbols = words[index]
        count = counts[index]
        out: list[int] = []
        i, n = 0, len(symbols)
        replaced = False
        while i < n:
            if i + 1 < n and symbols[i] == first and symbols[i + 1] == second:
                out.append(merged)
                i += 2
                replaced = True
            else:
                out.append(symbols[i])
                i += 1
        if not replaced:
            continue
        for left, right in zip(symbols, symbols[1:]):
            pair_counts[left << 32 | right] -= count
        for left, right in zip(out, out[1:]):
            new = left << 32 | right
            pair_counts[new] = pair_counts.get(new, 0) + count
            if left == merged or right == merged:
                grown.add(new)
                where.setdefault(new, []).append(index)
        words[index] = out
    pair_counts.pop(pair, None)
    return grown
