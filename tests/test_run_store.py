"""The run database: migrations, SQLite settings, repository operations, concurrency, liveness."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from workbench.store.database import StoreError, open_engine, upgrade
from workbench.store.recorder import RunRecorder
from workbench.store.repository import RunRepository
from workbench.train.events import CheckpointSaved, RunFinished, RunStarted, StepMetrics


def step_event(step: int) -> StepMetrics:
    return StepMetrics(step=step, epoch=0, loss=5.0 - step * 0.01, mlm_loss=4.0, nsp_loss=0.7, mlm_accuracy=0.1,
                       mlm_accuracy_masked=0.1, mlm_accuracy_random=0.0, mlm_accuracy_kept=0.5, nsp_accuracy=0.5,
                       lr=1e-3, grad_norm=1.0, tokens_per_second=1000.0, padding_fraction=0.1,
                       masking_rate=0.3, step_time=0.01,
                       tokens_seen=step * 100, elapsed=step * 0.01, progress=step / 100, eta_seconds=1.0)


def test_old_database_is_upgraded_without_losing_anything(database_url):
    url = database_url
    engine = create_engine(url)
    upgrade(engine, "0001")
    with engine.begin() as c:
        c.execute(text("INSERT INTO runs (id, name, status, reason, created_at, config, config_hash, "
                       "dataset_fingerprint, run_dir, device, package_version, notes, steps, max_steps, "
                       "elapsed_seconds, final_metrics, best_metrics) VALUES (1, 'old run', 'completed', '', "
                       "'2026-01-01 10:00:00', '{\"train\": {\"max_steps\": 5}}', 'h', '', '/tmp/x', 'cpu', '0.0.1', "
                       "'kept notes', 5, 5, 1.5, '{\"mlm_loss\": 3.0}', '{}')"))
        if engine.dialect.name == "postgresql":  # explicit ids do not move the sequence there
            c.execute(text("SELECT setval('runs_id_seq', 1)"))
        c.execute(text("INSERT INTO run_tags (run_id, tag) VALUES (1, 'baseline')"))
        for step in range(1, 6):
            c.execute(text(f"INSERT INTO metrics (run_id, step, name, value, wall_time, is_eval) "
                           f"VALUES (1, {step}, 'loss', {10 - step}, {step}, false)"))
    engine.dispose()
    repository = RunRepository(url)  # opening upgrades to head
    with repository.engine.connect() as c:
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0006"
    run = repository.get(1)
    assert (run.name, run.notes, run.tag_names, run.final_metrics) == ("old run", "kept notes", ["baseline"],
                                                                       {"mlm_loss": 3.0})
    assert run.pid is None and run.host == ""
    assert repository.series(1, "loss").values.tolist() == [9, 8, 7, 6, 5]
    assert repository.database_id and repository.create_run({}, "new", "").id == 2
    big = repository.create_run({"train": {"max_steps": 3 * 10**11}}, "long", "")  # 64-bit step counts
    repository.add_checkpoint(big.id, 2**40, "/ck", 5 * 2**30)
    assert repository.get(big.id).max_steps == 3 * 10**11 and repository.get(big.id).checkpoints[0].step == 2**40
    # the sweep tables of migration 0005 work
    sweep_id = repository.sweeps.create("after upgrade", {}, [], [("a", {}), ("b", {})])
    assert [i.label for i in repository.sweeps.get(sweep_id).items] == ["a", "b"]


def test_a_database_from_a_newer_program_is_refused(tmp_path):
    path = tmp_path / "new.db"
    RunRepository(str(path))
    with sqlite3.connect(path) as c:
        c.execute("UPDATE alembic_version SET version_num = '9999_future'")
    with pytest.raises(StoreError, match="written by a newer version"):
        RunRepository(str(path))


def test_files_that_are_not_databases_are_refused(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(StoreError, match="not a SQLite database"):
        open_engine(str(notes))
    with pytest.raises(StoreError, match="is a folder"):
        open_engine(str(tmp_path))


def test_sqlite_runs_in_wal_with_foreign_keys_and_busy_timeout(tmp_path):
    engine = open_engine(str(tmp_path / "runs.db"))
    with engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert c.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


def test_repository_operations(tmp_path, database_url):
    repository = RunRepository(database_url)
    a = repository.create_run({"train": {"max_steps": 10}}, "first", str(tmp_path / "a"))
    b = repository.create_run({"train": {"max_steps": 20}}, "second", str(tmp_path / "b"))
    repository.update(b.id, status="completed")
    repository.rename(a.id, "renamed")
    assert repository.tag(a.id, add=["x", "y", "x"]) == ["x", "y"]
    assert repository.tag(a.id, remove=["x"]) == ["y"]
    repository.set_notes(a.id, "a note")
    repository.add_metrics([{"run_id": a.id, "step": s, "name": "loss", "value": 1.0 / s, "wall_time": s,
                             "is_eval": False} for s in range(1, 11)])
    repository.add_checkpoint(a.id, 10, str(tmp_path / "a" / "ck"), 123)
    assert [r.name for r in repository.list_runs()] == ["renamed", "second"]
    assert [r.id for r in repository.list_runs(status="completed")] == [b.id]
    assert [r.id for r in repository.list_runs(tag="y")] == [a.id]
    run = repository.get(a.id)
    assert run.notes == "a note" and [c.step for c in run.checkpoints] == [10]
    assert repository.drop_metrics_after(a.id, 6) == 4
    assert repository.series(a.id, "loss").steps.tolist() == [1, 2, 3, 4, 5, 6]
    assert repository.get(a.id).checkpoints == []  # checkpoints after step 6 are gone too
    repository.add_metrics([{"run_id": a.id, "step": s, "name": "loss", "value": -s * 0.5, "wall_time": 100.0 + s,
                             "is_eval": True} for s in (9, 3, 6)])          # written out of order
    held_out = repository.series(a.id, "loss", is_eval=True, after_step=3)
    assert held_out.steps.tolist() == [6, 9] and held_out.steps.dtype == np.int64
    assert held_out.values.tolist() == [-3.0, -4.5] and held_out.wall_times.tolist() == [106.0, 109.0]
    assert len(repository.series(a.id, "no such metric").steps) == 0
    repository.delete(a.id)
    assert repository.count_metrics(a.id) == 0
    with pytest.raises(StoreError, match=f"no run {a.id}"):
        repository.get(a.id)


def test_recorder_batches_and_flushes_at_checkpoints_and_the_end(tmp_path, database_url):
    repository = RunRepository(database_url)
    run = repository.create_run({"train": {"max_steps": 100}}, "r", str(tmp_path))
    recorder = RunRecorder(repository, run.id, flush_points=10_000, flush_seconds=3600)
    recorder(RunStarted(run_dir=str(tmp_path), device="cpu", precision="fp32", num_parameters=1, world_size=1,
                        start_step=0, max_steps=100, config={"train": {"max_steps": 100}}).to_dict())
    for step in range(1, 31):
        recorder(step_event(step).to_dict())
    assert repository.count_metrics(run.id) == 0  # still buffered
    recorder(CheckpointSaved(step=30, path=str(tmp_path / "ck30"), size_bytes=1).to_dict())
    assert repository.count_metrics(run.id) == 30 * 16   # 16 metrics a step
    for step in range(31, 41):
        recorder(step_event(step).to_dict())
    recorder(RunFinished(status="completed", reason="done", step=40, elapsed=0.4, last_checkpoint="", final={"mlm_loss": 4.0}).to_dict())
    run = repository.get(run.id)
    assert run.status == "completed" and run.steps == 40 and repository.count_metrics(run.id) == 40 * 16
    assert run.best_metrics["loss"] == pytest.approx(5.0 - 0.4)
    assert run.heartbeat_at is not None and run.started_at is not None


def test_dead_runs_are_marked_interrupted(tmp_path, database_url):
    repository = RunRepository(database_url)
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    dead = repository.create_run({}, "dead", "")
    alive = repository.create_run({}, "alive", "")
    remote = repository.create_run({}, "remote", "")
    repository.update(dead.id, status="running", pid=dead_pid)
    repository.update(alive.id, status="running")  # this process
    repository.update(remote.id, status="running", host="elsewhere",
                      heartbeat_at=datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=5))
    marked = {r.name for r in repository.mark_interrupted_runs()}
    assert marked == {"dead", "remote"}
    assert repository.get(alive.id).status == "running"
    assert repository.get(dead.id).status == "interrupted"


WRITER = textwrap.dedent("""
    import sys
    from workbench.store.repository import RunRepository
    repository = RunRepository(sys.argv[1])
    run_id = int(sys.argv[2])
    for batch in range(40):
        repository.add_metrics([{"run_id": run_id, "step": batch * 500 + i, "name": "loss", "value": 1.0,
                                 "wall_time": 0.0, "is_eval": False} for i in range(500)])
        repository.heartbeat(run_id, steps=batch)
""")


@pytest.mark.slow
def test_two_processes_write_at_once_without_losing_a_point(database_url):
    db = database_url
    repository = RunRepository(db)
    ids = [repository.create_run({}, f"writer {i}", "").id for i in range(2)]
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, db, str(run_id)], stderr=subprocess.PIPE, text=True)
               for run_id in ids]
    for w in writers:
        assert w.wait(timeout=300) == 0, w.stderr.read()
    assert [repository.count_metrics(run_id) for run_id in ids] == [20_000, 20_000]
    if db.startswith("sqlite"):
        with sqlite3.connect(db[len("sqlite:///"):]) as c:
            assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_series_read_that_fails_is_a_store_error_naming_the_database(tmp_path):
    import sqlite3

    path = tmp_path / "runs.db"
    repository = RunRepository(f"sqlite:///{path}")
    run = repository.create_run({}, "r", "")
    repository.engine.dispose()
    with sqlite3.connect(path) as c:
        c.execute("ALTER TABLE metrics RENAME TO gone")
    with pytest.raises(StoreError, match=r"cannot read metrics from sqlite:///.*runs\.db: no such table: metrics"):
        repository.series(run.id, "loss")


def test_a_deleted_run_id_is_never_given_to_another_run(database_url):
    repository = RunRepository(database_url)
    first, second, third = (repository.create_run({}, name, "").id for name in ("a", "b", "c"))
    repository.delete(third)
    repository.delete(second)
    fourth = repository.create_run({}, "d", "").id
    assert fourth == third + 1 and sorted(run.name for run in repository.list_runs()) == ["a", "d"]
