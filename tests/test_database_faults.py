"""The run database on a disk that fills up, or that cannot be written: one clear line naming the database,
an exit status that agrees with what was recorded, and reading still works where it can.

The disks are real: a small tmpfs mounted for the test (and remounted read-only), so SQLite meets the very
errors a user's full or read-only disk gives. Where mounting is not allowed the tests skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny_train_config
from workbench.cli import main
from workbench.config import dumps_toml
from workbench.store.repository import RunRepository


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB file system of its own at tmp_path/disk; unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("mounting a small file system is not permitted here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 1 << 10, 1):             # to the last byte
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_a_full_disk_at_start_is_one_line_naming_the_database(small_disk, learnable_dataset, tmp_path, capsys):
    db = small_disk / "runs.db"
    repository = RunRepository(str(db))
    repository.create_run({}, "kept", str(tmp_path / "kept"), None)
    repository.engine.dispose()                    # as when that process ended: SQLite's journal files go
    fill(small_disk)
    assert main(["runs", "--db", str(db)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(db) in line and "disk is full" in line
    config = tiny_train_config(learnable_dataset.path, max_steps=3)
    config.train.output_dir = str(tmp_path / "runs")
    (tmp_path / "run.toml").write_text(dumps_toml(config), encoding="utf-8")
    assert main(["train", str(tmp_path / "run.toml"), "--db", str(db)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(db) in line and "disk is full" in line
    (small_disk / "filler").unlink()
    assert [run.name for run in RunRepository(str(db)).list_runs()] == ["kept"]     # nothing recorded was lost


@pytest.mark.slow
def test_a_disk_filling_during_a_run_makes_train_say_so_and_exit_2(small_disk, learnable_dataset, tmp_path):
    db = small_disk / "runs.db"
    config = tiny_train_config(learnable_dataset.path, max_steps=120, checkpoint_every=20, log_every=1)
    config.train.output_dir = str(tmp_path / "runs")
    (tmp_path / "run.toml").write_text(dumps_toml(config), encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "workbench", "train", str(tmp_path / "run.toml"),
                                "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:                         # the run is recording: now the disk fills
        if line.startswith("checkpoint"):
            break
    filler = fill(small_disk)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 2, out[-2000:] + err[-2000:]
    line = one_error_line(err)
    assert "could not record it" in line and str(db) in line and "interrupted" in line
    filler.unlink()
    repository = RunRepository(str(db))
    repository.mark_interrupted_runs()                  # as every command does when it opens the database
    (run,) = repository.list_runs()
    assert run.status == "interrupted"                  # what the last line said
    assert main(["train", "--resume", str(run.id), "--db", str(db)]) == 0
    assert RunRepository(str(db)).get(run.id).status == "completed"


def test_a_read_only_database_can_be_listed_and_shown_not_changed(small_disk, tmp_path, capsys):
    db = small_disk / "runs.db"
    repository = RunRepository(str(db))
    repository.create_run({"train": {"seed": 0}}, "first", str(tmp_path / "first"), None)
    repository.engine.dispose()
    remounted = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True)
    if remounted.returncode != 0:
        pytest.skip("remounting read-only is not permitted here")
    assert not os.access(small_disk, os.W_OK)
    assert main(["runs", "--db", str(db)]) == 0
    assert "first" in capsys.readouterr().out
    assert main(["show", "1", "--db", str(db)]) == 0
    assert main(["runs", "rename", "1", "second", "--db", str(db)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "read-only" in line and str(db) in line
