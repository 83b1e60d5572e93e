"""RunRecorder: writes a run's events, as plain dicts, into the run history.

An event is a mapping with a ``type`` (``started``, ``step``, ``eval``,
``checkpoint``, ``state``, ``finished``, ``failed``) and that event's fields -
what ``Event.to_dict()`` of ``workbench.train.events`` gives, and what the
CLI's ``--json`` prints - so the run store does not depend on the trainer;
``workbench.services.run_launch`` connects the two.

Metric points are buffered and written in one INSERT when the buffer holds
``flush_points`` points or ``flush_seconds`` have passed, and at every
checkpoint, pause and at the end - so a crash loses at most the last few
seconds of curve, and recording costs a tiny fraction of a step.

A heartbeat thread refreshes the run's heartbeat every ``heartbeat_seconds``
whatever the trainer does (a paused run, or steps slower than the liveness
window, stay alive). When the database fails for a moment (locked, a dropped
connection), the points stay in the buffer and the next flush retries; the
failure is reported once, as one line, and the run's reason says so if it
never recovered.
"""

from __future__ import annotations

import logging
import threading
import time

from collections.abc import Mapping
from typing import Any

from workbench.metrics import EVAL_PREFIX, metric, recorded_fields
from workbench.store.repository import RunRepository, now


log = logging.getLogger(__name__)


class RunRecorder:
    def __init__(self, repository: RunRepository, run_id: int, flush_points: int = 2000, flush_seconds: float = 2.0,
                 heartbeat_seconds: float = 30.0, warn=None, retry_waits: tuple[float, ...] = (0.0, 0.5, 2.0, 5.0)):
        self.repository = repository
        self.run_id = run_id
        self.flush_points = flush_points
        self.flush_seconds = flush_seconds
        self.buffer: list[dict] = []
        self.last_flush = time.monotonic()
        self.started = time.monotonic()
        self.step = 0
        self.elapsed = 0.0
        self.best: dict[str, float] = dict(repository.get(run_id).best_metrics or {})
        self.seconds_spent = 0.0  # time spent in this recorder, for the overhead benchmark
        self.failure = ""         # the first database error not yet recovered from ("" when all is written)
        self.retry_waits = retry_waits  # pauses between the last tries to flush when the run ends
        self.failures = 0
        self._warn = warn or (lambda message: log.warning("%s", message))
        self._lock = threading.Lock()
        self._stop_heartbeat = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, args=(heartbeat_seconds,), daemon=True,
                                           name=f"heartbeat-run-{run_id}")
        self._heartbeat.start()

    def _beat(self, every: float) -> None:
        while not self._stop_heartbeat.wait(every):
            try:
                self.repository.heartbeat(self.run_id)
            except Exception:  # the next flush reports database trouble
                pass

    def close(self) -> None:
        self._stop_heartbeat.set()

    def __call__(self, event: Mapping[str, Any]) -> None:
        begun = time.perf_counter()
        try:
            handler = getattr(self, f"_on_{event['type']}", None)
            if handler is not None:
                handler(event)
        finally:
            self.seconds_spent += time.perf_counter() - begun

    def _points(self, event, is_eval: bool) -> None:
        """Every metric of the event (``metrics.recorded_fields``: a None field - no pair task - is none)."""
        wall = time.monotonic() - self.started
        for name, value in recorded_fields(event).items():
            self.buffer.append({"run_id": self.run_id, "step": event["step"], "name": name, "value": value,
                                "wall_time": wall, "is_eval": is_eval})
            if metric(name).better:
                key = f"{EVAL_PREFIX}{name}" if is_eval else name
                self.best[key] = metric(name).best((self.best.get(key, value), value))

    def flush(self) -> bool:
        """Write the buffered points; on a database error keep them for the next try. True when written."""
        with self._lock:
            self.last_flush = time.monotonic()
            try:
                self.repository.add_metrics(self.buffer)
                self.buffer = []
                self.repository.heartbeat(self.run_id, steps=self.step, elapsed=self.elapsed)
            except Exception as exc:  # locked, connection lost, disk full: the points stay buffered
                self.failures += 1
                if not self.failure:
                    self.failure = _one_line(exc)
                    self._warn(f"run {self.run_id}: cannot write to the run database ({self.failure}); "
                               f"{len(self.buffer)} points kept, retrying")
                return False
            if self.failure:
                self._warn(f"run {self.run_id}: the run database works again; every point was written")
                self.failure = ""
            return True

    def _write(self, **values) -> None:
        """A run-row update that must not stop training when the database fails."""
        try:
            self.repository.update(self.run_id, **values)
        except Exception as exc:
            self.failures += 1
            if not self.failure:
                self.failure = _one_line(exc)
                self._warn(f"run {self.run_id}: cannot update the run database ({self.failure})")

    def _on_started(self, event) -> None:
        self.step = event["start_step"]
        self.repository.drop_metrics_after(self.run_id, event["start_step"])
        self.repository.start(self.run_id, event["device"], event["max_steps"], config=event["config"])
        with self._lock:
            self.last_flush = time.monotonic()

    def _on_step(self, event) -> None:
        self.step, self.elapsed = event["step"], event["elapsed"]
        self._points(event, False)
        if len(self.buffer) >= self.flush_points or time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush()

    def _on_eval(self, event) -> None:
        self._points(event, True)
        self.flush()

    def _on_checkpoint(self, event) -> None:
        self.flush()
        try:
            self.repository.add_checkpoint(self.run_id, event["step"], event["path"], event["size_bytes"])
            self.repository.forget_missing_checkpoints(self.run_id)
        except Exception as exc:
            self.failures += 1
            self.failure = self.failure or _one_line(exc)

    def _on_state(self, event) -> None:
        self.flush()
        self._write(status="paused" if event["state"] == "paused" else "running")

    def _final_flush(self) -> str:
        """Flush with a few retries at the end; the reason's suffix if points could not be written."""
        for wait in self.retry_waits:
            time.sleep(wait)
            if self.flush():
                return ""
        return f" (recording failed: {self.failure}; {len(self.buffer)} metric points were not written)"

    def _on_finished(self, event) -> None:
        self.elapsed = event["elapsed"]
        self.step = event["step"]
        self.close()
        suffix = self._final_flush()
        self._write(status=event["status"], reason=event["reason"] + suffix, finished_at=now(),
                    steps=event["step"], elapsed_seconds=event["elapsed"], final_metrics=event["final"],
                    best_metrics=self.best)

    def _on_failed(self, event) -> None:
        self.close()
        suffix = self._final_flush()
        self._write(status="failed", reason=event["reason"] + suffix, finished_at=now(), steps=event["step"],
                    best_metrics=self.best)


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
