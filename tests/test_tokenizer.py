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


# --- deterministic training ------------------------------------------------------

TRAIN_SCRIPT = """
import sys
from workbench.config import TokenizerConfig
from workbench.data.tokenizer import train_tokenizer
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
tokenizer = train_tokenizer(iter(lines), TokenizerConfig(vocab_size=400, min_frequency=2))
sys.stdout.write(tokenizer.to_str())
"""


def _varied_corpus(path, lines: int = 4000) -> list[str]:
    """Text with many equally frequent pairs (the ties ``tokenizers`` breaks in hash order)."""
    import random

    rng = random.Random(7)
    syllables = ["ka", "to", "mi", "ré", "su", "ne", "lo", "ba", "Dü", "fi", "ga", "po"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(300)]
    text = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) + rng.choice([".", "!", ", ja."])
            for _ in range(lines)]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return text


def test_training_twice_gives_the_same_bytes_in_one_process_and_across_processes(tmp_path):
    import os
    import subprocess
    import sys

    text = _varied_corpus(tmp_path / "corpus.txt")
    config = TokenizerConfig(vocab_size=400, min_frequency=2)
    first = train_tokenizer(iter(text), config).to_str()
    assert train_tokenizer(iter(text), config).to_str() == first
    # Other processes: other hash seeds (dict and set order) and other thread counts in tokenizers.
    outputs = []
    for hash_seed, threads in (("1", "1"), ("12345", "2")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "RAYON_NUM_THREADS": threads,
               "TOKENIZERS_PARALLELISM": "true"}
        result = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT, str(tmp_path / "corpus.txt")],
                                env=env, capture_output=True, text=True, check=True)
        outputs.append(result.stdout)
    assert outputs == [first, first]


def test_the_trained_vocabulary_is_the_one_tokenizers_would_learn_up_to_ties():
    """Same pipeline and merge rule as ``tokenizers``' WordPiece trainer: only tie-broken entries differ."""
    import random

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    rng = random.Random(3)
    text = [make_sentence(rng) for _ in range(3000)] + ["Crème brûlée, naïve café! Ünïcödé text."] * 5
    ours = train_tokenizer(iter(text), TokenizerConfig(vocab_size=300, min_frequency=2))
    theirs = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    theirs.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    theirs.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    theirs.train_from_iterator(text, trainers.WordPieceTrainer(
        vocab_size=300, min_frequency=2, limit_alphabet=1000, special_tokens=list(SPECIAL_TOKENS),
        show_progress=False))
    ours_vocab, their_vocab = set(ours.get_vocab()), set(theirs.get_vocab())
    assert len(ours_vocab) == len(their_vocab) == 300
    # tokenizers' own runs on this text share 286-300 of their 300 entries (ties fall differently each
    # time); a different merge rule or pipeline would share far fewer.
    assert len(ours_vocab & their_vocab) >= 275
    assert {"c", "##e", "the"} <= ours_vocab and not {"é", "##é", "C"} & ours_vocab  # normalised text


def test_word_counts_match_the_tokenizers_pipeline_on_awkward_text():
    from tokenizers import normalizers, pre_tokenizers

    from workbench.data.wordpiece_training import WordCounter

    texts = ["Hello,world!  Tabs\there\r\nand\u00a0no-break\u3000space", "中文字符 mixed\x1fcontrol\u200bzero",
             "e\u0301t\u00e9 ÉTÉ", ""]
    counter = WordCounter(lowercase=True, strip_accents=True)
    counter.add(texts)
    normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    expected: dict[str, int] = {}
    for text in texts:
        for word, _ in pre_tokenizers.BertPreTokenizer().pre_tokenize_str(normalizer.normalize_str(text)):
            expected[word] = expected.get(word, 0) + 1
    assert counter.counts() == expected
