"""Real-process faults: kill -9 in the middle of writes, a full disk, two writers at once.

After each fault: nothing already recorded is lost, the database passes
``integrity_check``, and the next command works.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench import checkpoint as ckpt
from workbench.durable_io import KILL_AT

from conftest import write_text_corpus
from test_cli import run
from test_cli_train import TINY


def popen(*args, limit_file_bytes: int | None = None, kill_at: str | None = None) -> subprocess.Popen:
    def limits():  # the file-size limit is a full disk for every write of the child
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    env = {**os.environ, KILL_AT: kill_at} if kill_at else None
    return subprocess.Popen([sys.executable, "-m", "workbench", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=limits if limit_file_bytes is not None else None)


def integrity_ok(db: Path) -> bool:
    with sqlite3.connect(db) as c:
        return c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory) -> Path:
    return write_text_corpus(tmp_path_factory.mktemp("faults") / "big.txt", documents=30000, seed=3)  # ~12 MB: prepare takes seconds


@pytest.mark.slow
def test_kill_during_prepare_keeps_the_previous_dataset(big_corpus, tmp_path):
    small = write_text_corpus(tmp_path / "small.txt", documents=60)
    out = tmp_path / "ds"
    assert run("prepare", small, "--out", out, "--vocab-size", 200).returncode == 0
    before = (out / "manifest.json").read_bytes()
    for delay in (1.0, 2.5):
        process = popen("prepare", big_corpus, "--out", out, "--vocab-size", 300)
        time.sleep(delay)
        process.kill()
        process.wait()
        assert (out / "manifest.json").read_bytes() == before  # never half-written
    again = run("prepare", big_corpus, "--out", out, "--vocab-size", 300)
    assert again.returncode == 0, again.stderr
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]  # the dead partials were cleaned up


@pytest.mark.slow
@pytest.mark.parametrize("point", ["checkpoint:weights-written", "checkpoint:before-rename", "checkpoint:rotating"])
def test_kill_during_checkpoint_writes_leaves_a_resumable_run(point, learnable_dataset, tmp_path):
    db, out = tmp_path / "runs.db", tmp_path / "run"
    process = popen("train", "--dataset", learnable_dataset.path, "--db", db, "--out", out, *TINY,
                    "--set", "train.max_steps=100000", "--set", "train.checkpoint_every=1",
                    "--set", "train.keep_checkpoints=2", "--json", kill_at=f"{point}@7")
    out_text, _ = process.communicate(timeout=300)   # it kills itself exactly there, the 7th time
    assert process.returncode == -9, out_text[-500:]
    assert sum(json.loads(line)["type"] == "checkpoint" for line in out_text.splitlines()) >= 5
    assert integrity_ok(db)
    # Whatever the kill interrupted (a write, a rotation), every checkpoint that looks complete is.
    assert all(not ckpt.verify_checkpoint(p) for p in ckpt.list_checkpoints(out))
    resumed = run("train", "--resume", out, "--db", db, "--set", "train.max_steps=12")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at step" in resumed.stdout
    assert not [p for p in (out / "checkpoints").iterdir() if ".partial" in p.name]
    assert all(not ckpt.verify_checkpoint(p) for p in ckpt.list_checkpoints(out))


@pytest.mark.slow
def test_kill_during_the_first_migration_leaves_a_usable_database(tmp_path):
    for attempt, delay in enumerate((0.3, 0.5, 0.7, 0.9)):
        db = tmp_path / f"fresh-{attempt}.db"
        process = popen("runs", "--db", db)
        time.sleep(delay)
        process.kill()
        process.wait()
        listed = run("runs", "--db", db)
        assert listed.returncode == 0, listed.stderr
        assert integrity_ok(db)


@pytest.mark.slow
@pytest.mark.parametrize("what", ["prepare", "checkpoint", "export"])
def test_a_full_disk_is_one_clear_line_and_nothing_half_written(what, learnable_dataset, big_corpus, tmp_path):
    if what == "prepare":
        out = tmp_path / "ds"
        process = popen("prepare", big_corpus, "--out", out, "--vocab-size", 300, limit_file_bytes=200_000)
    elif what == "checkpoint":
        out = tmp_path / "run"
        process = popen("train", "--dataset", learnable_dataset.path, "--no-db", "--out", out, *TINY,
                        "--set", "train.max_steps=3", "--set", "model.hidden_size=256",
                        "--set", "model.intermediate_size=1024", "--set", "model.num_attention_heads=4",
                        limit_file_bytes=2_000_000)
    else:
        source = tmp_path / "run"
        assert run("train", "--dataset", learnable_dataset.path, "--no-db", "--out", source, *TINY,
                   "--set", "train.max_steps=2", "--set", "model.hidden_size=256",
                   "--set", "model.intermediate_size=1024", "--set", "model.num_attention_heads=4").returncode == 0
        out = tmp_path / "hf"
        process = popen("export", source, "--out", out, limit_file_bytes=2_000_000)
    _, err = process.communicate(timeout=300)
    assert process.returncode in (1, 2), err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and any("cannot write" in line and ("file is larger" in line or "too large" in line)
                                          for line in lines), err
    if what == "prepare":
        assert not out.exists()
    elif what == "checkpoint":
        assert ckpt.list_checkpoints(out) == [] and not [p for p in (out / "checkpoints").iterdir()
                                                         if not p.name.startswith(".")]
    else:
        assert not (out / "model.safetensors").exists() or (out / "config.json").exists()


@pytest.mark.slow
def test_two_trainings_into_one_folder_at_once(learnable_dataset, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--dataset", learnable_dataset.path, "--no-db", "--out", out, *TINY,
            "--set", "train.max_steps=40"]
    first, second = popen(*args), popen(*args)
    results = [p.communicate(timeout=300) for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    assert codes == [0, 2], results
    loser = results[[first.returncode, second.returncode].index(2)][1]
    assert len(loser.strip().splitlines()) == 1 and ("in use" in loser or "already holds" in loser
                                                     or "at the same moment" in loser), loser
    assert [ckpt.step_of(p) for p in ckpt.list_checkpoints(out)] == [40]
