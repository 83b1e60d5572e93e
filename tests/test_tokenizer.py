"""Tokenizer: training, fixed special ids, save/load round-trips, broken files."""

from __future__ import annotations

import json

import pytest

from workbench.config import TokenizerConfig
from workbench.data.tokenizer import SPECIAL_TOKENS, Vocabulary, load_tokenizer, save_vocab_txt, train_tokenizer
from workbench.errors import TokenizerError

from conftest import make_sentence


@pytest.fixture(scope="module")
def tokenizer():
    import random

    rng = random.Random(1)
    return train_tokenizer((make_sentence(rng) for _ in range(3000)), TokenizerConfig(vocab_size=150, min_frequency=1))


def test_special_tokens_have_fixed_ids(tokenizer):
    assert [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert tokenizer.get_vocab_size() <= 150


def test_trained_tokenizer_is_uncased_wordpiece_with_bert_template(tokenizer):
    encoding = tokenizer.encode("The UNBELIEVABLE sunset.", "A dog!")
    assert encoding.tokens[0] == "[CLS]" and encoding.tokens.count("[SEP]") == 2
    assert encoding.type_ids[-1] == 1 and encoding.type_ids[0] == 0
    assert any(t.startswith("##") for t in encoding.tokens)  # a small vocab splits long words
    assert "the" in encoding.tokens
    assert tokenizer.decode(tokenizer.encode("the red boat").ids) == "the red boat"


def test_tokenizer_json_round_trip(tokenizer, tmp_path):
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))
    loaded = load_tokenizer(path)
    text = "Every student admired the frozen waterfall."
    assert loaded.encode(text).ids == tokenizer.encode(text).ids


def test_vocab_txt_round_trip_and_case_detection(tokenizer, tmp_path):
    path = tmp_path / "vocab.txt"
    save_vocab_txt(tokenizer, path)
    lines = path.read_text().splitlines()
    assert lines[:5] == list(SPECIAL_TOKENS)
    loaded = load_tokenizer(path)  # lowercase inferred: no upper-case tokens
    text = "The QUIET engineer repaired a wooden chair."
    assert loaded.encode(text, add_special_tokens=False).ids == tokenizer.encode(text, add_special_tokens=False).ids


def test_vocabulary_tables(tokenizer):
    vocab = Vocabulary.from_tokenizer(tokenizer)
    assert vocab.is_special[[vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id]].all()
    assert not vocab.is_special[5:].any()
    assert set(vocab.replacement_ids.tolist()) == set(range(5, vocab.size))
    assert all(vocab.tokens[i].startswith("##") for i in range(vocab.size) if vocab.is_continuation[i])


def test_missing_mask_token_is_refused(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n")
    with pytest.raises(TokenizerError, match=r"lacks the special token\(s\) \[MASK\]"):
        load_tokenizer(path)


def test_corrupt_tokenizer_json_is_a_clear_error(tmp_path, tokenizer):
    path = tmp_path / "tokenizer.json"
    path.write_text('{"version": "1.0", "model": ')
    with pytest.raises(TokenizerError, match="not a valid tokenizer.json"):
        load_tokenizer(path)
    raw = json.loads(tokenizer.to_str())
    del raw["model"]["vocab"]["[MASK]"]
    raw["added_tokens"] = [t for t in raw["added_tokens"] if t["content"] != "[MASK]"]
    path.write_text(json.dumps(raw))
    with pytest.raises(TokenizerError, match=r"\[MASK\]"):
        load_tokenizer(path)


def test_missing_and_duplicate_vocab(tmp_path):
    with pytest.raises(TokenizerError, match="tokenizer file not found"):
        load_tokenizer(tmp_path / "nope.txt")
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nhello\n")
    with pytest.raises(TokenizerError, match="'hello' appears twice"):
        load_tokenizer(path)
