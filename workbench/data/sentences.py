"""Splitting free text into sentences, and cutting absurdly long ones.

A light rule-based splitter: a sentence ends at ``.``, ``!`` or ``?`` (and any
closing quotes or brackets) followed by white space and a capital letter,
digit, quote or bracket, unless the word before the dot is a common
abbreviation. It is meant for prose; corpora that are already one sentence
per line keep their lines (see ``DataConfig.sentences``).
"""

from __future__ import annotations

import re

# Longest sentence we keep whole; longer text (a minified file, a table dump)
# is cut at white space so that a single line can never exhaust memory.
MAX_SENTENCE_CHARS = 10_000

_ABBREVIATIONS = frozenset(
    "e.g i.e etc vs cf al mr mrs ms dr prof sr jr st no fig figs eq eqs approx dept est inc ltd "
    "co corp jan feb mar apr jun jul aug sep sept oct nov dec ca resp vol pp ed eds".split()
)

_BOUNDARY = re.compile(r"""[.!?]+["'\u2019\u201d)\]]*\s+(?=["'\u2018\u201c(\[]?[A-Z0-9])""")
_LAST_WORD = re.compile(r"(\S+)$")


def split_sentences(text: str) -> list[str]:
    """Split a paragraph of prose into sentences (white space normalised)."""
    text = " ".join(text.split())
    if not text:
        return []
    sentences = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.start() + len(match.group().rstrip())
        candidate = text[start:match.start() + 1]
        word = _LAST_WORD.search(candidate)
        if word and _is_abbreviation(word.group(1)):
            continue
        sentences.append(text[start:end])
        start = match.end()
    if start < len(text):
        sentences.append(text[start:])
    return [s for piece in sentences for s in cut_long(piece)]


def _is_abbreviation(word: str) -> bool:
    core = word.strip("\"'([").rstrip(".").lower()
    # Single letters ("J. Smith", "U.S.") and listed abbreviations do not end a sentence.
    return len(core) == 1 or core in _ABBREVIATIONS or (("." in core) and len(core) <= 5)


def cut_long(sentence: str, limit: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Cut a sentence longer than ``limit`` characters at white space (or hard, if it has none)."""
    if len(sentence) <= limit:
        return [sentence]
    pieces = []
    while len(sentence) > limit:
        cut = sentence.rfind(" ", limit // 2, limit)
        if cut <= 0:
            cut = limit
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    if sentence:
        pieces.append(sentence)
    return [p for p in pieces if p]
