"""The window's training: one run, or a sweep's runs one after another, on a worker thread.

A sweep runs through ``services.sweep_runner.run_sweep``, the CLI's own loop, so an interrupted item resumes
with its run's own config (never the Training form's), and Stop, Pause and Cancel mean what they mean for
``workbench sweep``. Every database call goes through ``in_background`` or the worker: the GUI thread never
waits on the queue.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from workbench.config import WorkbenchConfig
from workbench.errors import WorkbenchError
from workbench.formatting import duration
from workbench.gui.jobs import Job
from workbench.gui.workers import SweepEnded, TrainingWorker, in_background
from workbench.store.statuses import SweepStatus


class RunController(QObject):
    """Starts, pauses, stops and reports runs and sweeps for ``window`` (its panels and status bar)."""

    run_ended = Signal(object)          # the RunResult of a single run (not a sweep's)
    sweep_ended = Signal(object)        # SweepEnded

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.job: Job | None = None
        self.worker: TrainingWorker | None = None
        self.run_id: int | None = None
        self.sweep_id: int | None = None        # the sweep in progress
        self.max_steps = 0
        self.closing = False

    @property
    def busy(self) -> bool:
        return self.job is not None

    # --- starting -------------------------------------------------------------------------------------------

    def start(self, resume: str | None = None, config: WorkbenchConfig | None = None) -> bool:
        """A new run from the form (or ``config``), or ``resume`` (a run id or checkpoint folder); False if
        refused (a message was shown)."""
        if self.busy:
            return False
        try:
            config = config or self.window.current_config()
            config.validate()
        except WorkbenchError as exc:
            self.window.show_error("Cannot start the run", str(exc))
            return False
        self._start(TrainingWorker(config, self.window.db_url, resume=resume))
        return True

    def start_sweep(self, spec) -> None:
        """Queue ``spec``'s runs (a new sweep, in the database) and run them."""
        if self.busy:
            self.window.show_error("Cannot start a sweep", "A run or a sweep is in progress; stop it first.")
            return
        repository = self.window.repository
        if repository is None:
            self.window.show_error("Cannot start a sweep", "The run database is not open.")
            return
        rows = [(run.label, run.config.to_dict()) for run in spec.runs]
        in_background(lambda: repository.sweeps.create(spec.name, spec.to_dict(), spec.swept, rows),
                      "sweep-create", then=self.continue_sweep,
                      failed=lambda message: self.window.show_error("Cannot start a sweep", message))

    def continue_sweep(self, sweep_id: int) -> None:
        """Run what is left of sweep ``sweep_id`` (an interrupted run first, from its own checkpoint)."""
        if self.busy:
            return
        dataset = self.window.dataset
        self.sweep_id = sweep_id
        self._start(TrainingWorker(None, self.window.db_url, sweep_id=sweep_id,
                                   dataset=str(dataset.path) if dataset is not None else None))

    def _start(self, worker: TrainingWorker) -> None:
        window = self.window
        worker.event.connect(self._on_event)
        worker.done.connect(self._done)
        worker.failed.connect(self._failed)
        worker.run_recorded.connect(self._run_recorded)
        worker.said.connect(self._say)        # a slot of this GUI-thread object: queued, never run on the worker
        window.training.set_state("starting")
        window.state_label.setText("starting…")
        self.worker, self.job = worker, Job(worker, self)
        window.docks["plots"].raise_()

    def _say(self, message: str) -> None:
        self.window.statusBar().showMessage(message, 15000)

    # --- while it trains ------------------------------------------------------------------------------------

    def pause(self) -> None:
        if self.worker is not None:
            self.worker.control.pause()

    def resume(self) -> None:
        if self.worker is not None:
            self.worker.control.resume()

    def stop(self, reason: str = "stopped from the window") -> None:
        """Stop the run with a checkpoint; a sweep pauses (Continue a sweep… resumes this run first)."""
        if self.worker is not None:
            self.window.training.set_state("stopping")
            self.window.state_label.setText("stopping: saving a checkpoint…")
            self.worker.control.stop(reason)

    def pause_sweep(self) -> None:
        """The run in progress finishes; no new one starts."""
        if self.sweep_id is None:
            return
        sweep_id, repository = self.sweep_id, self.window.repository
        in_background(lambda: repository.sweeps.set_status(sweep_id, SweepStatus.PAUSED), "sweep-pause",
                      then=lambda _: self.window.statusBar().showMessage(
                          f"sweep {sweep_id} pauses after the run in progress", 10000),
                      failed=lambda message: self.window.show_error("Cannot pause the sweep", message))

    def cancel_sweep(self) -> None:
        """Cancel the waiting runs and stop the one in progress (with a checkpoint)."""
        if self.sweep_id is None:
            return
        sweep_id, repository, worker = self.sweep_id, self.window.repository, self.worker

        def cancel() -> None:
            repository.sweeps.set_status(sweep_id, SweepStatus.CANCELLED)     # first: the runner reads it on stop
            worker.control.stop("the sweep was cancelled")

        in_background(cancel, "sweep-cancel", then=lambda _: None,
                      failed=lambda message: self.window.show_error("Cannot cancel the sweep", message))

    def _run_recorded(self, run_id: int, resumed: bool) -> None:
        window = self.window
        self.run_id = run_id
        if not resumed:
            window.plots.clear()
        window.runs.refresh(background=True)

    def _on_event(self, event) -> None:
        window, kind = self.window, event.type
        if kind == "started":
            window.device_label.setText(f"device: {event.device}, {event.precision}")
            window.training.set_state("running")
            window.state_label.setText(f"running: {Path(event.run_dir).name}")
            self.max_steps = event.max_steps
        elif kind == "step":
            window.plots.add_event(event)
            window.training.show_progress(event.step, self.max_steps, event.progress, event.eta_seconds)
            window.rate_label.setText(f"{1.0 / max(event.step_time, 1e-9):.1f} steps/s · "
                                      f"{event.tokens_per_second:,.0f} tokens/s · ETA {duration(event.eta_seconds)}")
        elif kind == "eval":
            window.plots.add_event(event)
        elif kind == "state":
            window.training.set_state("paused" if event.state == "paused" else "running")
            window.state_label.setText(event.state)
        elif kind == "notice":
            window.statusBar().showMessage(event.message, 10000)
        elif kind == "checkpoint":
            window.statusBar().showMessage(f"checkpoint saved at step {event.step}", 4000)
        elif kind == "snapshot":
            window.inspect.snapshot_taken(event.run_dir, f"{self.run_id}: {Path(event.run_dir).name}")
        elif kind == "finished" and event.last_checkpoint:
            window.finetune.set_source(str(Path(event.last_checkpoint).parent.parent))

    # --- the end --------------------------------------------------------------------------------------------

    def _done(self, result) -> None:
        window = self.window
        self.job = self.worker = None
        window.training.set_state("finished")
        window.runs.refresh(background=True)
        if isinstance(result, SweepEnded):
            self.sweep_id = None
            window.state_label.setText(f"sweep {result.sweep_id}: {result.status}")
            self.sweep_ended.emit(result)
            return
        window.state_label.setText(f"{result.status} at step {result.step}")
        if result.status == "failed":
            window.show_error("Training failed", result.reason)
        self.run_ended.emit(result)

    def _failed(self, message: str) -> None:
        self.job = self.worker = None
        self.sweep_id = None
        self.window.training.set_state("finished")
        self.window.state_label.setText("failed")
        self.window.runs.refresh(background=True)
        self.window.show_error("Training failed", message)

    def stop_and_wait(self, timeout_ms: int = 120_000) -> None:
        """Stop the run cleanly (checkpoint, status recorded) and wait until its thread has ended."""
        from PySide6.QtCore import QCoreApplication, QDeadlineTimer

        job = self.job
        if job is None:
            return
        self.closing = True
        self.stop("stopped because the window closed")
        deadline = QDeadlineTimer(timeout_ms)
        while job.running and not deadline.hasExpired():
            QCoreApplication.processEvents()
            job.wait(50)
        QCoreApplication.processEvents()
