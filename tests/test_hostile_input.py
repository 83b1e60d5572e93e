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


def test_inputs_that_exited_1_or_lied_now_say_what_is_wrong(capsys, trained, learnable_dataset, tmp_path):
    from workbench.interop.huggingface import export_checkpoint

    existing = tmp_path / "kept.csv"
    existing.write_text("mine")
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("text,label\n" + "".join(f"sentence number {i},{'ab'[i % 2]}\n" for i in range(20)))
    exported = export_checkpoint(trained, tmp_path / "export")
    huge = "9" * 20
    cases = [
        (["train", "--dataset", learnable_dataset.path, "--no-db", "--set", "train.max_minutes=" + "9" * 400],
         ["train.max_minutes", "400 digits"]),
        (["inspect", learnable_dataset.path, "--seed", "-1"], ["--seed"]),
        (["inspect", learnable_dataset.path, "--samples", "10", "--batch-size", "0"], ["--batch-size"]),
        (["show", huge], [f"no run {huge}"]),
        (["show", "²"], ["expected a run id"]),
        (["compare", "1", huge], ["no run"]),
        (["train", "--resume", huge], [f"no run {huge}"]),
        (["finetune", trained, "--data", "builtin", "--seeds", huge], ["seeds", "2^63"]),
        (["finetune", trained, "--data", "builtin", "--seeds", "0,0,0"], ["list 0 twice"]),
        (["finetune", trained, "--data", labelled, "--dev", labelled], ["--dev", "the --data file itself"]),
        (["show", "1", "--csv", existing], ["exists", "--force"]),
        (["compare", "1", "2", "--tidy-csv", existing], ["exists", "--force"]),
        (["prepare", learnable_dataset.path / "tokens.bin", "--out", tmp_path / "x", "--tokenizer",
          exported / "tokenizer.json", "--cased"], ["does not apply", "tokenizer.json"]),
    ]
    for args, needles in cases:
        code, _, err = cli(capsys, *args)
        one_line_error(code, err, *needles)
    assert existing.read_text() == "mine"


@pytest.mark.parametrize("key, value", [("hidden_size", "128"), ("num_hidden_layers", None),
                                        ("num_attention_heads", [2]), ("num_hidden_layers", True),
                                        ("intermediate_size", -5)])
def test_a_model_config_json_with_a_wrong_kind_of_size_names_the_file_and_key(capsys, trained, tmp_path, key, value):
    from workbench.interop.huggingface import export_checkpoint

    exported = export_checkpoint(trained, tmp_path / "export")
    raw = json.loads((exported / "config.json").read_text())
    raw[key] = value
    (exported / "config.json").write_text(json.dumps(raw))
    code, _, err = cli(capsys, "fill-mask", exported, "a [MASK] b")
    one_line_error(code, err, "config.json", key)


def test_a_weights_file_holding_code_is_one_line_never_run_and_the_run_is_failed(capsys, trained, learnable_dataset,
                                                                                 tmp_path):
    import pickle

    from conftest import tiny_train_config
    from workbench.config import dumps_toml
    from workbench.interop.huggingface import export_checkpoint
    from workbench.store.repository import RunRepository

    proof = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (proof,))

    exported = export_checkpoint(trained, tmp_path / "export")
    (exported / "model.safetensors").unlink()
    (exported / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    config = tiny_train_config(learnable_dataset.path, max_steps=2, init_from=str(exported))
    config.train.output_dir = str(tmp_path / "runs")
    (tmp_path / "run.toml").write_text(dumps_toml(config))
    db = tmp_path / "runs.db"
    code, _, err = cli(capsys, "train", tmp_path / "run.toml", "--db", db)
    one_line_error(code, err, "pytorch_model.bin", "something other than model weights")
    assert not proof.exists()
    (run,) = RunRepository(str(db)).list_runs()
    assert run.status == "failed" and "something other than model weights" in run.reason


def test_a_label_column_that_is_an_id_is_refused_and_the_chosen_columns_are_named(capsys, trained, tmp_path):
    from workbench.data.labelled import read_labelled

    ids = tmp_path / "reviews.csv"
    ids.write_text("review,id\n" + "".join(f"text of review {i},{i}\n" for i in range(200)))
    code, _, err = cli(capsys, "finetune", trained, "--data", ids, "--no-db")
    one_line_error(code, err, "'id'", "200 different values in 200 rows", "looks like an id", "--label-column")
    good = tmp_path / "good.csv"
    good.write_text("review,stars\n" + "".join(f"text of review {i},{i % 3}\n" for i in range(60)))
    data = read_labelled(good)
    assert data.columns == "text 'review' (no column named 'text': the first column), label 'stars' " \
                           "(no column named 'label': the last column)"


def test_cased_or_lowercase_decides_a_vocab_txt_tokenizer(capsys, learnable_dataset, tmp_path):
    vocab = write_vocab(tmp_path / "vocab.txt", ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] +
                        list(string.ascii_lowercase) + ["the", "river", "##s"])
    corpus = tmp_path / "c.txt"
    corpus.write_text("The River flows.\nRivers are long.\n\nAnother document here.\nIt has two lines.\n")
    for flag, lowercase in (("--cased", False), ("--lowercase", True), (None, True)):
        out = tmp_path / f"ds{flag}"
        code, _, err = cli(capsys, "prepare", corpus, "--out", out, "--tokenizer", vocab, *([flag] if flag else []))
        assert code == 0, err
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["tokenizer"]["lowercase"] is lowercase, flag


def test_run_filters_that_raised_now_match_nothing_or_say_why():
    from workbench.store.run_filter import FilterError, compile_filter

    assert compile_filter("-name > 1")({"name": "run"}) is False
    assert compile_filter("-steps < 0")({"steps": 5}) is True
    for text in ("not " * 100_000 + "x", "(" * 100_000 + "x" + ")" * 100_000, "not " * 200 + "steps > 1"):
        with pytest.raises(FilterError, match="too long|nested too deeply"):
            compile_filter(text)


def test_a_file_size_limit_while_preparing_is_one_line_and_leaves_no_dataset(tmp_path):
    import resource
    import subprocess
    import sys

    from conftest import write_text_corpus

    corpus = write_text_corpus(tmp_path / "c.txt", documents=300)

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    result = subprocess.run([sys.executable, "-m", "workbench", "prepare", corpus, "--out", tmp_path / "ds",
                             "--vocab-size", "2000"], capture_output=True, text=True, preexec_fn=limit, timeout=300)
    one_line_error(result.returncode, result.stderr, "cannot write", "nothing was replaced")
    assert not (tmp_path / "ds").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".ds")]
