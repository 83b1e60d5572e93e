"""Attention and syntax: how often a head's strongest attention from a word goes to its dependency head.

Reads a CoNLL-U treebank directly (no parser library): sentences separated by blank lines, one word per
line with ten tab-separated columns; multi-word token ranges (``1-2``) and empty nodes (``1.1``) are
skipped, as the evaluation of Clark et al. (2019) does. Each word's attention to another word is the
mean over the word's pieces of the summed attention to the other word's pieces; [CLS] and [SEP] are not
candidates. The baseline is the best fixed offset (always the word k to the left or right), which a
positional head gets for free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from workbench.errors import WorkbenchError, read_user_text
from workbench.model.common import capturing_attention

MAX_SENTENCES = 200          # per snapshot: enough for a stable share, a bounded cost
UNKNOWN_LIMIT = 0.2          # more unknown words than this: not the corpus' language
OFFSETS = range(-5, 6)


class TreebankError(WorkbenchError):
    """A CoNLL-U file that is malformed or does not fit the tokenizer."""


@dataclass(frozen=True)
class TreebankSentence:
    words: tuple[str, ...]
    heads: tuple[int, ...]        # 1-based head of each word; 0 for the root


def parse_conllu(text: str, source: str = "treebank") -> list[TreebankSentence]:
    sentences: list[TreebankSentence] = []
    words: list[str] = []
    heads: list[int] = []
    start = 1
    lines = text.splitlines()
    for number, line in enumerate(lines + [""], 1):
        if not line.strip():
            if words:
                _check_sentence(words, heads, f"{source}:{start}")
                sentences.append(TreebankSentence(tuple(words), tuple(heads)))
            words, heads, start = [], [], number + 1
            continue
        if line.startswith("#"):
            continue
        columns = line.split("\t")
        if len(columns) != 10:
            raise TreebankError(f"{source}:{number}: a CoNLL-U word line has 10 tab-separated columns; found "
                                f"{len(columns)}")
        ident, form, head = columns[0], columns[1], columns[6]
        if "-" in ident or "." in ident:
            continue
        if not ident.isdigit() or int(ident) != len(words) + 1:
            raise TreebankError(f"{source}:{number}: word ID {ident!r} should be {len(words) + 1}")
        if not head.isdigit():
            raise TreebankError(f"{source}:{number}: HEAD {head!r} is not a word number")
        words.append(form)
        heads.append(int(head))
    if not sentences:
        raise TreebankError(f"{source}: holds no CoNLL-U sentences")
    return sentences


def _check_sentence(words: list[str], heads: list[int], where: str) -> None:
    bad = [h for h in heads if h > len(words)]
    if bad:
        raise TreebankError(f"{where}: HEAD {bad[0]} points past the sentence's {len(words)} words")
    if heads.count(0) != 1:
        raise TreebankError(f"{where}: a sentence needs exactly one root (HEAD 0); it has {heads.count(0)}")


@dataclass
class Treebank:
    sentences: list[TreebankSentence]
    ids: list[list[int]]              # each sentence encoded: [CLS] pieces [SEP]
    spans: list[list[tuple[int, int]]]  # piece range of each word in ``ids``

    def __len__(self) -> int:
        return len(self.sentences)


def read_treebank(path: str | Path, tokenizer, max_length: int = 512) -> Treebank:
    path = Path(path)
    text = read_user_text(path, TreebankError, "treebank")
    sentences = parse_conllu(text, str(path))[:MAX_SENTENCES]
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    unk = tokenizer.token_to_id("[UNK]")
    kept, all_ids, all_spans = [], [], []
    words = unknown = 0
    for sentence in sentences:
        ids, spans = [cls_id], []
        for word in sentence.words:
            pieces = tokenizer.encode(word, add_special_tokens=False).ids or [unk]
            spans.append((len(ids), len(ids) + len(pieces)))
            ids.extend(pieces)
            words += 1
            unknown += unk in pieces
        ids.append(sep_id)
        if len(ids) <= max_length:
            kept.append(sentence)
            all_ids.append(ids)
            all_spans.append(spans)
    if words and unknown / words > UNKNOWN_LIMIT:
        raise TreebankError(f"{path}: {unknown / words:.0%} of its words are unknown to the tokenizer; the treebank "
                            "seems to be in another language (or script) than the corpus")
    if not kept:
        raise TreebankError(f"{path}: every sentence is longer than the model takes ({max_length} tokens)")
    return Treebank(kept, all_ids, all_spans)


def word_attention(probabilities: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
    """(L, nh, T, T) piece attention -> (L, nh, W, W) word attention (mean over source pieces, sum over targets)."""
    W = len(spans)
    rows = np.stack([probabilities[..., a:b, :].mean(-2) for a, b in spans], -2)      # (L, nh, W, T)
    return np.stack([rows[..., a:b].sum(-1) for a, b in spans], -1)                    # (L, nh, W, W)


def head_accuracy(probabilities: np.ndarray, spans: list[tuple[int, int]], heads: tuple[int, ...]
                  ) -> tuple[np.ndarray, int]:
    """Per head, how many non-root words attend most to their dependency head; and how many were scored."""
    words = word_attention(probabilities, spans)                                        # (L, nh, W, W)
    W = len(spans)
    words[..., np.arange(W), np.arange(W)] = -1.0                                        # a word is not its own head
    guess = words.argmax(-1)                                                            # (L, nh, W)
    scored = np.array([h != 0 for h in heads])
    truth = np.array([h - 1 for h in heads])
    right = ((guess == truth) & scored).sum(-1)
    return right, int(scored.sum())


def offset_hits(heads: tuple[int, ...]) -> np.ndarray:
    """For each offset in ``OFFSETS``, how many non-root words have their head that many words away."""
    return np.array([sum(1 for i, h in enumerate(heads, 1) if h != 0 and h - i == k) for k in OFFSETS])


@torch.no_grad()
def dependency_accuracy(model, tokenizer, treebank: Treebank, device) -> tuple[np.ndarray, float]:
    """(L, nh) share of words whose strongest attention is their head; the best fixed-offset share."""
    right = total = 0
    offsets = np.zeros(len(OFFSETS))
    for sentence, ids, spans in zip(treebank.sentences, treebank.ids, treebank.spans):
        tensors = [torch.tensor([x], device=device) for x in (ids, [0] * len(ids), [1] * len(ids))]
        with capturing_attention(model) as captured:
            model.final_states(*tensors)
        probabilities = torch.stack(captured, 1)[0].float().cpu().numpy()             # (L, nh, T, T)
        hits, scored = head_accuracy(probabilities, spans, sentence.heads)
        right = right + hits
        total += scored
        offsets += offset_hits(sentence.heads)
    if not total:
        return np.full(np.shape(right), np.nan, np.float32), float("nan")
    return (right / total).astype(np.float32), float(offsets.max() / total)
