"""The run store under concurrency, failures and clocks: fresh databases, recorder retries, liveness."""

from __future__ import annotations

import multiprocessing
import os
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import OperationalError

from workbench.store.recorder import RunRecorder
from workbench.store.repository import RunRepository
from workbench.train.events import RunFinished, StepMetrics

STEP_FIELDS = dict(epoch=0, loss=1.0, mlm_loss=0.5, nsp_loss=0.5, mlm_accuracy=0.1, mlm_accuracy_masked=0.1,
                   mlm_accuracy_random=0.1, mlm_accuracy_kept=0.1, nsp_accuracy=0.5, lr=1e-3, grad_norm=1.0,
                   tokens_per_second=100.0, padding_fraction=0.0,
                   masking_rate=0.3, step_time=0.01, tokens_seen=10, elapsed=0.1,
                   progress=0.1, eta_seconds=1.0)


def _open_and_register(url: str, barrier, results) -> None:
    from workbench.store.repository import RunRepository

    class Dataset:  # what register_dataset reads of a dataset
        path, fingerprint = "/data/x", "f" * 64
        manifest = {"tokenizer": {"sha256": "t" * 64}, "counts": {}}

    barrier.wait()
    try:
        repository = RunRepository(url)
        results.put(("ok", repository.register_dataset(Dataset()), repository.database_id))
    except Exception as exc:  # reported to the parent
        results.put(("error", repr(exc), ""))


@pytest.mark.slow
def test_processes_opening_a_fresh_database_at_once_all_succeed(database_url):
    url = database_url
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    processes = [context.Process(target=_open_and_register, args=(url, barrier, results)) for _ in range(4)]
    [p.start() for p in processes]
    outcomes = [results.get(timeout=120) for _ in processes]
    [p.join(timeout=60) for p in processes]
    assert all(kind == "ok" for kind, _, _ in outcomes), outcomes
    assert len({dataset_id for _, dataset_id, _ in outcomes}) == 1      # one row for one fingerprint
    assert len({database_id for _, _, database_id in outcomes}) == 1    # one identity, made once


class FlakyRepository(RunRepository):
    """The real SQLite repository whose inserts fail ``failures`` times, as a locked or lost database does."""

    def __init__(self, url: str, failures: int):
        super().__init__(url)
        self.failures_left = failures

    def add_metrics(self, rows):
        if self.failures_left:
            self.failures_left -= 1
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        super().add_metrics(rows)


def step(n: int) -> StepMetrics:
    return StepMetrics(step=n, **STEP_FIELDS)


def test_a_failed_flush_keeps_the_points_and_reports_once(tmp_path, database_url):
    repository = FlakyRepository(database_url, failures=3)
    run = repository.create_run({"train": {"max_steps": 20}}, "flaky", str(tmp_path))
    warnings = []
    recorder = RunRecorder(repository, run.id, flush_points=15, flush_seconds=3600, warn=warnings.append)
    for n in range(1, 21):
        recorder(step(n).to_dict())
    recorder(RunFinished(status="completed", reason="done", step=20, elapsed=1.0, last_checkpoint="").to_dict())
    assert repository.series(run.id, "loss").steps.tolist() == list(range(1, 21))  # nothing lost
    assert len([w for w in warnings if "cannot write" in w]) == 1 and "works again" in warnings[-1]
    assert repository.get(run.id).status == "completed" and repository.get(run.id).reason == "done"


def test_a_database_that_never_recovers_is_said_in_the_run_reason(tmp_path, database_url):
    repository = FlakyRepository(database_url, failures=10**6)
    run = repository.create_run({"train": {"max_steps": 3}}, "down", str(tmp_path))
    recorder = RunRecorder(repository, run.id, flush_points=1, flush_seconds=3600, warn=lambda m: None,
                           retry_waits=(0.0, 0.0))
    for n in (1, 2, 3):
        recorder(step(n).to_dict())
    recorder(RunFinished(status="completed", reason="done", step=3, elapsed=1.0, last_checkpoint="").to_dict())
    assert "recording failed: OperationalError" in repository.get(run.id).reason
    assert "45 metric points were not written"  # 3 steps x 15 metrics in repository.get(run.id).reason


def test_heartbeats_are_utc_and_continue_without_steps(tmp_path, database_url):
    repository = RunRepository(database_url)
    run = repository.create_run({"train": {"max_steps": 3}}, "paused", str(tmp_path))
    utc_now = datetime.now(timezone.utc).replace(tzinfo=None)
    assert abs(repository.get(run.id).heartbeat_at - utc_now) < timedelta(seconds=30)
    repository.update(run.id, heartbeat_at=utc_now - timedelta(hours=1))
    recorder = RunRecorder(repository, run.id, heartbeat_seconds=0.05)
    deadline = time.monotonic() + 10
    while repository.get(run.id).heartbeat_at < utc_now - timedelta(minutes=1) and time.monotonic() < deadline:
        time.sleep(0.05)
    recorder.close()
    assert repository.get(run.id).heartbeat_at > utc_now - timedelta(seconds=30)  # beat while no step came


def test_a_reused_process_id_does_not_keep_a_dead_run_running(tmp_path, database_url):
    repository = RunRepository(database_url)
    alive = repository.create_run({"train": {}}, "alive", str(tmp_path))
    reused = repository.create_run({"train": {}}, "reused pid", str(tmp_path))
    repository.update(alive.id, status="running")
    # Same pid as this (living) process, but it started at another time: the original process is gone.
    repository.update(reused.id, status="running", pid=os.getpid(),
                      process_started=(repository.get(alive.id).process_started or 0) + 12345)
    marked = {run.id for run in repository.mark_interrupted_runs()}
    assert marked == {reused.id} and repository.get(alive.id).status == "running"
