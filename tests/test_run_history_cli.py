"""Run history end to end: a killed run is found interrupted and resumed; runs/show/compare commands."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from test_cli import run, run_inside
from test_cli_train import TINY


def train_args(dataset, db, out, *extra):
    return ["train", "--dataset", str(dataset), "--db", str(db), "--out", str(out), *TINY, *extra]


@pytest.mark.slow
def test_killed_run_is_interrupted_keeps_its_curve_and_resumes(learnable_dataset, tmp_path):
    db = tmp_path / "runs.db"
    args = train_args(learnable_dataset.path, db, tmp_path / "run", "--set", "train.max_steps=100000",
                      "--set", "train.checkpoint_every=15", "--set", "train.log_every=1", "--json")
    env = dict(os.environ, NO_COLOR="1")
    process = subprocess.Popen([sys.executable, "-m", "workbench", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    checkpoint_step = None
    for line in process.stdout:
        event = json.loads(line)
        if event["type"] == "checkpoint":
            checkpoint_step = event["step"]
        if checkpoint_step and event["type"] == "step" and event["step"] >= checkpoint_step + 5:
            break
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert checkpoint_step == 15

    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    listed = run("runs", "--db", db, "--json")
    assert listed.returncode == 0, listed.stderr
    (record,) = json.loads(listed.stdout)
    assert record["status"] == "interrupted"
    shown = json.loads(run("show", str(record["id"]), "--db", db, "--json", "--metrics").stdout)
    loss_steps = shown["metrics"]["loss"]["steps"]
    assert loss_steps[:15] == list(range(1, 16))  # everything up to the checkpoint was flushed before the kill
    assert [c["step"] for c in shown["checkpoints"]] == [15]

    resumed = run("train", "--resume", str(record["id"]), "--db", db, "--set", "train.max_steps=30")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at step 15" in resumed.stdout
    shown = json.loads(run("show", str(record["id"]), "--db", db, "--json", "--metrics").stdout)
    assert shown["status"] == "completed" and shown["steps"] == 30
    assert shown["metrics"]["loss"]["steps"] == list(range(1, 31))  # appended, no duplicate steps
    assert len(json.loads(run("runs", "--db", db, "--json").stdout)) == 1


@pytest.fixture
def cli(capsys, monkeypatch):
    """The command line in this interpreter: the history commands test our code, not a process boundary."""
    return lambda *args: run_inside(capsys, monkeypatch, *args)


@pytest.fixture(scope="module")
def two_runs(learnable_dataset, tmp_path_factory):
    folder = tmp_path_factory.mktemp("history")
    db = folder / "runs.db"
    for name, lr in (("slow", "0.001"), ("fast", "0.01")):
        result = run(*train_args(learnable_dataset.path, db, folder / name, "--set", "train.max_steps=10",
                                 "--set", f"train.learning_rate={lr}", "--set", "train.checkpoint_every=5"))
        assert result.returncode == 0, result.stderr
    return folder, db


@pytest.mark.slow
def test_runs_lists_filters_and_prints_a_table(two_runs, cli):
    folder, db = two_runs
    runs = json.loads(cli("runs", "--db", db, "--json").stdout)
    assert [r["name"] for r in runs] == ["slow", "fast"]
    assert all(r["status"] == "completed" and r["steps"] == 10 and r["mlm_loss"] > 0 for r in runs)
    table = cli("runs", "--db", db).stdout
    assert "slow" in table and "completed" in table and "mlm loss" in table
    assert json.loads(cli("runs", "--db", db, "--json", "--status", "failed").stdout) == []


@pytest.mark.slow
def test_show_and_metric_export(two_runs, cli, tmp_path):
    folder, db = two_runs
    text = cli("show", "1", "--db", db, "--metrics")
    assert text.returncode == 0 and "run 1: slow" in text.stdout and "learning_rate = 0.001" in text.stdout
    out = tmp_path / "metrics.csv"
    result = cli("show", "1", "--db", db, "--csv", out)
    assert result.returncode == 0
    rows = list(csv.DictReader(open(out)))
    assert [int(r["step"]) for r in rows] == list(range(1, 11))
    assert "eval_mlm_loss" in rows[0] and float(rows[-1]["loss"]) > 0
    shown = json.loads(cli("show", "2", "--db", db, "--json").stdout)
    assert shown["config"]["train"]["learning_rate"] == 0.01
    assert [c["step"] for c in shown["checkpoints"]] == [5, 10]
    assert shown["best_metrics"]["mlm_loss"] <= shown["final_metrics"]["mlm_loss"] + 1e-9


@pytest.mark.slow
def test_compare_shows_only_differing_keys_and_aligned_metrics(two_runs, cli, tmp_path):
    folder, db = two_runs
    result = json.loads(cli("compare", "1", "2", "--db", db, "--json").stdout)
    differing = set(result["config_differences"])
    assert "train.learning_rate" in differing and "model.hidden_size" not in differing
    assert result["config_differences"]["train.learning_rate"] == [0.001, 0.01]
    assert result["matched_steps"][-1]["step"] == 10
    assert result["matched_steps"][-1]["run1_loss"] != result["matched_steps"][-1]["run2_loss"]
    out = tmp_path / "aligned.csv"
    assert cli("compare", "1", "2", "--db", db, "--csv", out).returncode == 0
    header = next(csv.reader(open(out)))
    assert header[:3] == ["step", "run1_loss", "run1_mlm_loss"] and "run2_nsp_accuracy" in header
    text = cli("compare", "1", "2", "--db", db).stdout
    assert "train.learning_rate" in text and "mlm_accuracy at matched steps" in text


@pytest.mark.slow
def test_rename_tag_note_and_delete(two_runs, cli):
    folder, db = two_runs
    assert cli("runs", "--db", db, "rename", "1", "baseline").returncode == 0
    assert cli("runs", "tag", "1", "paper", "v1", "--db", db).returncode == 0
    assert cli("runs", "--db", db, "tag", "1", "v1", "--remove").returncode == 0
    assert cli("runs", "--db", db, "note", "1", "the first try").returncode == 0
    first = json.loads(cli("show", "1", "--db", db, "--json").stdout)
    assert (first["name"], first["tags"], first["notes"]) == ("baseline", ["paper"], "the first try")
    assert [r["id"] for r in json.loads(cli("runs", "--db", db, "--json", "--tag", "paper").stdout)] == [1]
    refused = cli("runs", "--db", db, "delete", "2")  # no terminal to confirm on
    assert refused.returncode == 2 and "pass --yes" in refused.stderr
    assert (folder / "fast").exists()
    deleted = cli("runs", "--db", db, "delete", "2", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert not (folder / "fast").exists()
    assert [r["id"] for r in json.loads(cli("runs", "--db", db, "--json").stdout)] == [1]


@pytest.mark.parametrize("args, message", [
    (["show", "99"], "no run 99 in sqlite:///"),
    (["show", "abc"], "expected a run id"),
    (["compare", "1"], "name at least two runs"),
    (["runs", "rename", "42", "x"], "no run 42"),
    (["train", "--resume", "77", "--set", "train.max_steps=3"], "no run 77"),
])
@pytest.mark.slow
def test_history_user_errors(two_runs, args, message):
    folder, db = two_runs
    result = run(*args, "--db", db)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_a_path_that_is_not_a_database(tmp_path):
    bogus = tmp_path / "bogus.db"
    bogus.write_text("not sqlite")
    result = run("runs", "--db", bogus)
    assert result.returncode == 2 and "not a SQLite database" in result.stderr
