"""train / export / fill-mask / nsp from the command line: one training run in a subprocess, as a user runs it;
the rest in this interpreter (``run_inside``), as they test our code and not the process boundary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.config import load_config

from test_cli import run, run_inside

TINY = ["--set", "model.preset=\"custom\"", "--set", "model.hidden_size=32", "--set", "model.num_hidden_layers=1",
        "--set", "model.num_attention_heads=2", "--set", "model.intermediate_size=64",
        "--set", "data.max_seq_length=32", "--set", "train.batch_size=8", "--set", "train.threads=1",
        "--set", "train.device=\"cpu\"", "--set", "train.eval_every=0", "--set", "train.warmup_steps=2",
        "--set", "train.max_minutes=0", "--set", "train.eval_every_seconds=0"]


@pytest.fixture
def cli(capsys, monkeypatch):
    return lambda *args: run_inside(capsys, monkeypatch, *args)


@pytest.fixture(scope="module")
def cli_run(learnable_dataset, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-train")
    result = run("train", "--dataset", learnable_dataset.path, *TINY, "--set", "train.max_steps=12",
                 "--set", "train.checkpoint_every=6", "--out", folder / "run", "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    return folder, events


@pytest.mark.slow
def test_train_json_events(cli_run):
    _, events = cli_run
    types = [e["type"] for e in events]
    assert types[0] == "started" and types[-1] == "finished"
    assert types.count("step") == 12 and types.count("checkpoint") == 2 and "eval" in types
    step = next(e for e in events if e["type"] == "step")
    for key in ("step", "loss", "mlm_loss", "nsp_loss", "mlm_accuracy", "nsp_accuracy", "lr", "tokens_per_second"):
        assert isinstance(step[key], (int, float)), key
    assert events[-1]["status"] == "completed" and events[-1]["step"] == 12


@pytest.mark.slow
def test_text_output_and_resume_continues(cli_run, learnable_dataset, cli):
    folder, _ = cli_run
    result = cli("train", "--resume", folder / "run", "--set", "train.max_steps=15")
    assert result.returncode == 0, result.stderr
    assert "resuming at step 12" in result.stdout
    assert "completed: reached train.max_steps (15); 15 steps" in result.stdout
    changed = cli("train", "--resume", folder / "run", "--set", "train.learning_rate=0.5")
    assert changed.returncode == 2
    assert "cannot change train.learning_rate when resuming" in changed.stderr


def test_without_a_pair_task_the_text_output_and_the_nsp_command_say_so(learnable_dataset, tmp_path, cli):
    result = cli("train", "--dataset", learnable_dataset.path, *TINY, "--set", "nsp.objective=\"none\"",
                 "--set", "train.max_steps=4", "--set", "train.log_every=2", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    steps = [line for line in result.stdout.splitlines() if line.startswith("step ")]
    assert len(steps) == 2 and all("mlm acc" in line and "nsp" not in line for line in steps)
    evaluation = next(line for line in result.stdout.splitlines() if line.startswith("eval at step 4"))
    assert "perplexity" in evaluation and "nsp" not in evaluation
    refused = cli("nsp", tmp_path / "run", "The old river holds a secret.", "The small castle needs two keys.")
    assert refused.returncode == 2 and "trained without a pair task (nsp.objective = none)" in refused.stderr


@pytest.mark.slow
def test_export_fill_mask_and_nsp_commands(cli_run, cli):
    folder, _ = cli_run
    result = cli("export", folder / "run", "--out", folder / "hf")
    assert result.returncode == 0, result.stderr
    assert (folder / "hf" / "config.json").exists()
    for source in (folder / "run", folder / "hf"):
        filled = cli("fill-mask", source, "The old [MASK] holds a secret.", "--top-k", "3", "--json")
        assert filled.returncode == 0, filled.stderr
        predictions = json.loads(filled.stdout)
        assert len(predictions) == 1 and len(predictions[0]["predictions"]) == 3
        nsp = cli("nsp", source, "The old river holds a secret.", "The small castle needs two keys.", "--json")
        assert 0 <= json.loads(nsp.stdout)["is_next_probability"] <= 1
    text = cli("fill-mask", folder / "run", "The old [MASK] holds a secret.")
    assert "[MASK] #1:" in text.stdout


@pytest.mark.parametrize("args, message", [
    (["train", "--set", "train.max_steps=5"], "data.dataset is not set"),
    (["train", "--resume", "no-such-run"], "no-such-run: no such run or checkpoint folder"),
    (["train", "--dataset", "{ds}", "--set", "train.batch_size=7", "--set", "train.gradient_accumulation_steps=2"],
     "train.batch_size (7) must be divisible by train.gradient_accumulation_steps"),
    (["train", "--dataset", "{ds}", "--set", "train.sed=1"], "unknown key train.sed (did you mean train.seed?)"),
    (["train", "--dataset", "{ds}", "--set", "model.vocab_size=5"], "model.vocab_size (5) does not match"),
    (["train", "--dataset", "{ds}", "--set", "train.schedule=\"step\""], "train.schedule must be one of"),
    (["train", "--dataset", "{ds}", "--out", "{run}"], "; continue it with --resume"),
    (["fill-mask", "{run}", "no mask"], "the text must contain [MASK]"),
    (["export", "nowhere", "--out", "x"], "nowhere: no such checkpoint or run directory"),
    (["train", "missing.toml"], "missing.toml: config file not found"),
])
def test_train_user_errors_exit_2_with_one_line(cli_run, learnable_dataset, args, message, capsys, monkeypatch):
    folder, _ = cli_run
    args = [a.format(ds=learnable_dataset.path, run=folder / "run") for a in args]
    result = run_inside(capsys, monkeypatch, *args, cwd=folder)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_example_configs_are_valid():
    for path in (Path(__file__).resolve().parents[1] / "resources").glob("*.toml"):
        config = load_config(path)
        assert config.data.dataset and config.train.max_steps > 0
