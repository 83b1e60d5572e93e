"""WordPiece tokenizers: trained on a corpus, or loaded from tokenizer.json / vocab.txt.

Whatever its origin, a tokenizer here is a ``tokenizers.Tokenizer`` with the
BERT normalizer and pre-tokenizer, the five special tokens present, and a
``[CLS] A [SEP] B [SEP]`` post-processor (so that a saved ``tokenizer.json``
works unchanged in ``transformers``). ``Vocabulary`` holds what batch
construction needs from it as plain numpy lookup tables.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from workbench.config import TokenizerConfig
from workbench.data.wordpiece_training import MergeProgress, WordCounter, batched_by_chars, train_vocabulary
from workbench.errors import TokenizerError

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)  # a trained tokenizer gives them ids 0..4
COUNT_BATCH_CHARS = 1 << 20  # text normalised and split in one call while counting words


def train_tokenizer(sentences: Iterable[str], config: TokenizerConfig, progress: MergeProgress | None = None):
    """Train a WordPiece tokenizer on a stream of sentences; the same sentences and settings give the
    same ``tokenizer.json``, byte for byte (see ``workbench.data.wordpiece_training``)."""
    counter = WordCounter(config.lowercase, config.strip_accents)
    for batch in batched_by_chars(sentences, COUNT_BATCH_CHARS):
        counter.add(batch)
    return tokenizer_from_counts(counter.counts(), config, progress)


def tokenizer_from_counts(word_counts: dict[str, int], config: TokenizerConfig,
                          progress: MergeProgress | None = None):
    """The tokenizer whose vocabulary is trained on ``word_counts`` (word -> occurrences)."""
    from tokenizers import Tokenizer, models

    vocab = train_vocabulary(word_counts, config.vocab_size, SPECIAL_TOKENS, config.min_frequency,
                             config.limit_alphabet, progress)
    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token=UNK, max_input_chars_per_word=100))
    _set_bert_pipeline(tokenizer, config.lowercase, config.strip_accents)
    from tokenizers import AddedToken

    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    _set_post_processor(tokenizer)
    return tokenizer


def _set_bert_pipeline(tokenizer, lowercase: bool, strip_accents: bool) -> None:
    from tokenizers import decoders, normalizers, pre_tokenizers

    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=strip_accents, lowercase=lowercase
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")


def _set_post_processor(tokenizer) -> None:
    from tokenizers import processors

    cls_id, sep_id = tokenizer.token_to_id(CLS), tokenizer.token_to_id(SEP)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{CLS}:0 $A:0 {SEP}:0",
        pair=f"{CLS}:0 $A:0 {SEP}:0 $B:1 {SEP}:1",
        special_tokens=[(CLS, cls_id), (SEP, sep_id)],
    )


def load_tokenizer(path: str | Path, case: str = "auto"):
    """Load a ``tokenizer.json`` or a BERT ``vocab.txt``, checking it is usable for BERT. ``case`` (``auto``,
    ``lowercase``, ``cased``) decides whether a ``vocab.txt`` lower-cases its input; ``auto`` infers it."""
    from tokenizers import Tokenizer, models

    path = Path(path)
    if not path.is_file():
        raise TokenizerError(f"{path}: tokenizer file not found")
    if path.suffix == ".json":
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise TokenizerError(f"{path}: not a valid tokenizer.json ({_first_line(exc)})") from None
    else:
        vocab = _read_vocab_txt(path)
        # Unless told, casing follows the vocabulary: a cased vocab.txt (with upper-case tokens) gives a
        # cased tokenizer, since lower-casing its input would lose words.
        lowercase = _looks_uncased(vocab) if case == "auto" else case == "lowercase"
        tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token=UNK, max_input_chars_per_word=100))
        _set_bert_pipeline(tokenizer, lowercase, lowercase)
    missing = [t for t in SPECIAL_TOKENS if tokenizer.token_to_id(t) is None]
    if missing:
        raise TokenizerError(f"{path}: tokenizer lacks the special token(s) {', '.join(missing)} that BERT needs")
    if tokenizer.get_vocab_size() < len(SPECIAL_TOKENS) + 1:
        raise TokenizerError(f"{path}: tokenizer has no tokens besides the special ones")
    ids = sorted(tokenizer.get_vocab(with_added_tokens=True).values())
    if ids[0] != 0 or ids[-1] != len(ids) - 1:
        gap = next((i for i, v in enumerate(ids) if v != i), len(ids))
        raise TokenizerError(f"{path}: token ids are not contiguous (no token has id {gap}); "
                             "BERT needs ids 0..V-1")
    # [MASK] and the others must be matched as wholes in text (before lower-casing and splitting on
    # punctuation), and every sequence must get [CLS] ... [SEP]: set both, whatever the file said.
    from tokenizers import AddedToken

    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    _set_post_processor(tokenizer)
    return tokenizer


def _read_vocab_txt(path: Path) -> dict[str, int]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TokenizerError(f"{path}: vocab.txt is not UTF-8 text") from None
    vocab: dict[str, int] = {}
    for line in text.splitlines():
        token = line.rstrip("\r\n")
        if not token:
            continue
        if token in vocab:
            raise TokenizerError(f"{path}: token {token!r} appears twice (line {len(vocab) + 1})")
        vocab[token] = len(vocab)
    if not vocab:
        raise TokenizerError(f"{path}: vocab.txt is empty")
    return vocab


def _looks_uncased(vocab: dict[str, int]) -> bool:
    normal = [t for t in vocab if not (t.startswith("[") and t.endswith("]"))]
    upper = sum(1 for t in normal if any(c.isupper() for c in t))
    return upper < 0.01 * max(1, len(normal))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def tokenizer_hash(tokenizer) -> str:
    """SHA-256 of the tokenizer's canonical JSON: same hash, same tokenization."""
    return hashlib.sha256(tokenizer.to_str().encode("utf-8")).hexdigest()


def save_vocab_txt(tokenizer, path: str | Path) -> None:
    """Write ``vocab.txt`` (one token per line, in id order) as BERT tools expect."""
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    tokens = [""] * len(vocab)
    for token, index in vocab.items():
        tokens[index] = token
    Path(path).write_text("\n".join(tokens) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class Vocabulary:
    """What batch construction needs from a tokenizer, as arrays indexed by token id."""

    size: int
    pad_id: int
    unk_id: int
    cls_id: int
    sep_id: int
    mask_id: int
    tokens: tuple[str, ...]          # id -> token text
    is_special: np.ndarray           # (V,) bool: [PAD] [UNK] [CLS] [SEP] [MASK] and [unusedN]
    is_continuation: np.ndarray      # (V,) bool: WordPiece "##" pieces
    replacement_ids: np.ndarray      # (R,) int64: ids a random replacement may draw

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "Vocabulary":
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        size = max(vocab.values()) + 1
        tokens = [""] * size
        for token, index in vocab.items():
            tokens[index] = token
        is_special = np.zeros(size, dtype=bool)
        is_continuation = np.zeros(size, dtype=bool)
        for index, token in enumerate(tokens):
            if token in SPECIAL_TOKENS or (token.startswith("[unused") and token.endswith("]")) or token == "":
                is_special[index] = True
            elif token.startswith("##"):
                is_continuation[index] = True
        ids = {t: tokenizer.token_to_id(t) for t in SPECIAL_TOKENS}
        return cls(
            size=size, pad_id=ids[PAD], unk_id=ids[UNK], cls_id=ids[CLS], sep_id=ids[SEP], mask_id=ids[MASK],
            tokens=tuple(tokens), is_special=is_special, is_continuation=is_continuation,
            replacement_ids=np.flatnonzero(~is_special).astype(np.int64),
        )

    def decode_tokens(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[int(i)] for i in ids]


def describe(tokenizer) -> dict:
    """A small JSON-able summary of a tokenizer, for manifests and the GUI."""
    raw = json.loads(tokenizer.to_str())
    normalizer = raw.get("normalizer") or {}
    return {
        "vocab_size": tokenizer.get_vocab_size(),
        "lowercase": bool(normalizer.get("lowercase", False)),
        "strip_accents": normalizer.get("strip_accents"),
        "model": (raw.get("model") or {}).get("type"),
    }
