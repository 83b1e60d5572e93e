"""Hostile and absurd input: exit 2 with one line naming the culprit, never a traceback; readers fuzzed."""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.errors import WorkbenchError

from test_data_safety import cli

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def trained(learnable_dataset, tmp_path_factory):
    from workbench.train.trainer import Trainer

    from conftest import tiny_train_config

    run_dir = tmp_path_factory.mktemp("hostile") / "run"
    Trainer(tiny_train_config(learnable_dataset.path, max_steps=2), run_dir).run()
    return run_dir


def one_line_error(code: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_cli_refuses_absurd_input_with_one_line(capsys, trained, learnable_dataset, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    long_text = "word " * 2000 + "[MASK]"
    cases = [
        (["train", "--dataset", learnable_dataset.path, "--no-db", "--set", "model.hidden_size=" + "9" * 40],
         ["model.hidden_size"]),
        (["train", "--dataset", learnable_dataset.path, "--no-db", "--set", "train.threads=99999999"], ["train.threads"]),
        (["train", "--dataset", learnable_dataset.path, "--no-db", "--set", "model.preset=\"custom\"",
          "--set", "model.hidden_size=65536", "--set", "model.num_hidden_layers=1024", "--set",
          "model.num_attention_heads=1", "--set", "model.intermediate_size=262144"], ["too large"]),
        (["train", "--dataset", learnable_dataset.path, "--no-db", "--set", "train.seed=-5"], ["train.seed"]),
        (["train", "--dataset", learnable_dataset.path, "--no-db", "--out", a_file / "run"], ["a-file"]),
        (["train", "--resume", "-3", "--no-db"], ["-3"]),
        (["runs", "delete", "-1", "--yes"], ["run id"]),
        (["fill-mask", trained, "a [MASK] b", "--top-k", "0"], ["--top-k"]),
        (["fill-mask", trained, "a [MASK] b", "--top-k", "-4"], ["--top-k"]),
        (["fill-mask", trained, long_text], ["tokens long", "at most"]),
        (["nsp", trained, long_text, "b"], ["tokens long"]),
        (["prepare", learnable_dataset.path / "tokens.bin", "--out", a_file], []),
        (["prepare", "--sample", "--out", a_file], ["a-file"]),
    ]
    for args, needles in cases:
        code, _, err = cli(capsys, *args)
        one_line_error(code, err, *needles)
    assert a_file.read_text() == "x"


def write_vocab(path: Path, tokens: list[str]) -> Path:
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path


def test_tokenizer_files_are_checked_and_made_consistent(tmp_path):
    from workbench.data.tokenizer import load_tokenizer

    with pytest.raises(WorkbenchError, match=r"lacks the special token\(s\) \[CLS\], \[MASK\]"):
        load_tokenizer(write_vocab(tmp_path / "vocab.txt", ["[PAD]", "[UNK]", "[SEP]", "the", "cat"]))
    cased = load_tokenizer(write_vocab(tmp_path / "cased.txt",
                                       ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Paris", "paris", "is", "."]))
    assert cased.encode("Paris is [MASK] .").tokens == ["[CLS]", "Paris", "is", "[MASK]", ".", "[SEP]"]
    # A tokenizer.json with a gap in its ids, and one without a BERT post-processor.
    good = json.loads(cased.to_str())
    gapped = json.loads(json.dumps(good))
    gapped["model"]["vocab"]["is"] = 40
    (tmp_path / "gap.json").write_text(json.dumps(gapped))
    with pytest.raises(WorkbenchError, match="not contiguous"):
        load_tokenizer(tmp_path / "gap.json")
    bare = json.loads(json.dumps(good))
    bare["post_processor"] = None
    (tmp_path / "bare.json").write_text(json.dumps(bare))
    loaded = load_tokenizer(tmp_path / "bare.json")
    encoding = loaded.encode("Paris", "is")
    assert encoding.tokens == ["[CLS]", "Paris", "[SEP]", "is", "[SEP]"] and encoding.type_ids == [0, 0, 0, 1, 1]


def test_csv_with_an_unterminated_quote_names_the_line(tmp_path, capsys):
    corpus = tmp_path / "rows.csv"
    corpus.write_text('text,label\n"fine row",1\n"opened here,2\nand never closed\n', encoding="utf-8")
    code, _, err = cli(capsys, "prepare", corpus, "--out", tmp_path / "ds")
    one_line_error(code, err, "rows.csv:3", "never closed")
    assert not (tmp_path / "ds").exists()


def test_a_deleted_stats_json_is_a_clear_error(learnable_dataset, tmp_path):
    from workbench.data.dataset import TokenizedDataset

    copy = shutil.copytree(learnable_dataset.path, tmp_path / "ds")
    (copy / "stats.json").unlink()
    with pytest.raises(WorkbenchError, match="stats.json is missing"):
        TokenizedDataset(copy)


def test_prepare_with_a_changed_setting_is_not_up_to_date(corpus_file, small_config, tmp_path):
    from workbench.data.prepare import prepare_dataset

    assert not prepare_dataset([corpus_file], tmp_path / "ds", small_config).reused
    assert prepare_dataset([corpus_file], tmp_path / "ds", small_config).reused
    for change in ("data.max_seq_length=48", "tokenizer.lowercase=false", "data.sentences=\"lines\""):
        changed = small_config.with_overrides([change])
        assert not prepare_dataset([corpus_file], tmp_path / "ds", changed).reused, change


# --- fuzzing every reader -----------------------------------------------------------------------------

def assert_clear_or_correct(action) -> None:
    """The property: a ``WorkbenchError`` (exit 2) or a correct result; never another exception."""
    try:
        action()
    except WorkbenchError:
        pass


@FUZZ
@given(st.binary(max_size=400) | st.text(alphabet=string.printable + "é\x00[]=\"'.", max_size=300).map(str.encode))
def test_fuzz_config_toml(tmp_path, data):
    from workbench.config import load_config

    path = tmp_path / "fuzz.toml"
    path.write_bytes(data)
    assert_clear_or_correct(lambda: load_config(path))


@FUZZ
@given(st.sampled_from([".txt", ".md", ".jsonl", ".csv"]),
       st.binary(max_size=300) | st.text(alphabet=string.printable + "é\x00\ufeff{}\",", max_size=300).map(str.encode))
def test_fuzz_corpus_files(tmp_path, suffix, data):
    from workbench.config import DataConfig
    from workbench.data.corpus import list_corpus_files, read_documents
    from workbench.data.diagnostics import Diagnostics

    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)

    def read():
        diagnostics = Diagnostics()
        for doc in read_documents(list_corpus_files([path], diagnostics), DataConfig(), diagnostics):
            assert all(isinstance(s, str) and s for s in doc.sentences)

    assert_clear_or_correct(read)


DATASET_FILES = ["manifest.json", "tokens.bin", "sentence_offsets.bin", "document_offsets.bin", "tokenizer.json",
                 "stats.json"]


@FUZZ
@given(st.sampled_from(DATASET_FILES), st.sampled_from(["bytes", "truncate", "int64", "json"]),
       st.integers(0, 10**6), st.binary(min_size=1, max_size=64))
def test_fuzz_dataset_folders(learnable_dataset, tmp_path_factory, name, how, where, junk):
    from workbench.data.dataset import TokenizedDataset
    from workbench.data.batches import BatchStream
    from workbench.config import WorkbenchConfig

    folder = Path(shutil.copytree(learnable_dataset.path, tmp_path_factory.mktemp("fuzz") / "ds"))
    path = folder / name
    data = bytearray(path.read_bytes())
    if how == "bytes":
        at = where % max(1, len(data))
        data[at:at + len(junk)] = junk
    elif how == "truncate":
        del data[where % max(1, len(data)):]
    elif how == "int64" and name.endswith(".bin") and len(data) >= 8:
        values = np.frombuffer(bytes(data[: len(data) // 8 * 8]), dtype=np.int64).copy()
        values[where % len(values)] = int.from_bytes(junk[:8].ljust(8, b"\0"), "little", signed=True)
        data[: len(values) * 8] = values.tobytes()
    else:
        data = bytearray(json.dumps({"format_version": 1, "counts": {"tokens": where}, "dtype": "uint16",
                                     "fingerprint": "x"}).encode())
    path.write_bytes(bytes(data))

    def use():
        dataset = TokenizedDataset(folder)
        config = WorkbenchConfig()
        config.data.max_seq_length = 32
        stream = BatchStream(dataset, config, 8, 0, "train")
        for _, _, batch in zip(range(3), range(3), stream.iterate(0, 0)):
            assert batch[2].input_ids.max() < dataset.vocabulary.size
        dataset.stats  # noqa: B018 - reading it must be clean too

    assert_clear_or_correct(use)


@FUZZ
@given(st.sampled_from(["model.safetensors", "training_state.pt", "checkpoint.json", "config.toml",
                        "tokenizer.json"]), st.integers(0, 10**7), st.binary(min_size=1, max_size=64),
       st.booleans())
def test_fuzz_checkpoints(trained, tmp_path_factory, name, where, junk, truncate):
    from workbench.services.run_launch import find_resume_target
    from workbench import checkpoint as ckpt

    run_dir = Path(shutil.copytree(trained, tmp_path_factory.mktemp("fuzz") / "run"))
    folder = ckpt.list_checkpoints(run_dir)[-1]
    data = bytearray((folder / name).read_bytes())
    if truncate:
        del data[where % max(1, len(data)):]
    else:
        at = where % max(1, len(data))
        data[at:at + len(junk)] = junk
    (folder / name).write_bytes(bytes(data))

    def use():
        target = find_resume_target(run_dir)
        state = ckpt.load_training_state(target.checkpoint, None)
        assert state.step == 2
        target.config()

    assert_clear_or_correct(use)


@FUZZ
@given(st.binary(max_size=300) | st.text(alphabet=string.printable + "#[]é\x00", max_size=300).map(str.encode),
       st.sampled_from(["vocab.txt", "tokenizer.json"]))
def test_fuzz_tokenizer_files(tmp_path, data, name):
    from workbench.data.tokenizer import load_tokenizer

    path = tmp_path / name
    path.write_bytes(data)

    def use():
        tokenizer = load_tokenizer(path)
        encoding = tokenizer.encode("some text [MASK] here")
        assert encoding.ids[0] == tokenizer.token_to_id("[CLS]")

    assert_clear_or_correct(use)
