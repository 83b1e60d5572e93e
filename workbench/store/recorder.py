"""RunRecorder: a trainer subscriber that writes a run's events into the run history.

Metric points are buffered and written in one INSERT when the buffer holds
``flush_points`` points or ``flush_seconds`` have passed, and at every
checkpoint, pause and at the end - so a crash loses at most the last few
seconds of curve, and recording costs a tiny fraction of a step. Each flush
also refreshes the run's heartbeat, by which a dead run is found later.
"""

from __future__ import annotations

import time

from workbench.store.repository import RunRepository, now
from workbench.train.events import Event

STEP_METRICS = ("loss", "mlm_loss", "nsp_loss", "mlm_accuracy", "mlm_accuracy_masked", "mlm_accuracy_random",
                "mlm_accuracy_kept", "nsp_accuracy", "lr", "grad_norm", "tokens_per_second", "padding_fraction",
                "step_time", "tokens_seen", "elapsed")
EVAL_METRICS = ("mlm_loss", "mlm_accuracy", "perplexity", "nsp_loss", "nsp_accuracy")
LOWER_IS_BETTER = ("loss", "mlm_loss", "nsp_loss", "perplexity")
BEST_OF = ("loss", "mlm_loss", "nsp_loss", "mlm_accuracy", "nsp_accuracy", "perplexity")


class RunRecorder:
    def __init__(self, repository: RunRepository, run_id: int, flush_points: int = 2000, flush_seconds: float = 2.0):
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

    def __call__(self, event: Event) -> None:
        begun = time.perf_counter()
        try:
            handler = getattr(self, f"_on_{event.type}", None)
            if handler is not None:
                handler(event)
        finally:
            self.seconds_spent += time.perf_counter() - begun

    def _points(self, event, names, is_eval: bool) -> None:
        wall = time.monotonic() - self.started
        for name in names:
            value = float(getattr(event, name))
            self.buffer.append({"run_id": self.run_id, "step": event.step, "name": name, "value": value,
                                "wall_time": wall, "is_eval": is_eval})
            if name in BEST_OF:
                key = f"eval_{name}" if is_eval else name
                better = min if name in LOWER_IS_BETTER else max
                self.best[key] = better(self.best.get(key, value), value)

    def flush(self) -> None:
        rows, self.buffer = self.buffer, []
        self.repository.add_metrics(rows)
        self.repository.heartbeat(self.run_id, steps=self.step, elapsed=self.elapsed)
        self.last_flush = time.monotonic()

    def _on_started(self, event) -> None:
        self.step = event.start_step
        self.repository.drop_metrics_after(self.run_id, event.start_step)
        self.repository.start(self.run_id, event.device, event.max_steps, config=event.config)

    def _on_step(self, event) -> None:
        self.step, self.elapsed = event.step, event.elapsed
        self._points(event, STEP_METRICS, False)
        if len(self.buffer) >= self.flush_points or time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush()

    def _on_eval(self, event) -> None:
        self._points(event, EVAL_METRICS, True)
        self.flush()

    def _on_checkpoint(self, event) -> None:
        self.flush()
        self.repository.add_checkpoint(self.run_id, event.step, event.path, event.size_bytes)
        self.repository.forget_missing_checkpoints(self.run_id)

    def _on_state(self, event) -> None:
        self.flush()
        self.repository.update(self.run_id, status="paused" if event.state == "paused" else "running")

    def _on_finished(self, event) -> None:
        self.elapsed = event.elapsed
        self.step = event.step
        self.flush()
        self.repository.update(self.run_id, status=event.status, reason=event.reason, finished_at=now(),
                               steps=event.step, elapsed_seconds=event.elapsed, final_metrics=event.final,
                               best_metrics=self.best)

    def _on_failed(self, event) -> None:
        self.flush()
        self.repository.update(self.run_id, status="failed", reason=event.reason, finished_at=now(),
                               steps=event.step, best_metrics=self.best)
