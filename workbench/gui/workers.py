"""Background work for the window: preparing a corpus, training, fine-tuning, loading a model (each a ``Job``).

The work itself is plain core code (``prepare_dataset``, ``Trainer``); these
adapters only move it to a thread and turn its callbacks and events into Qt
signals. Widgets are never touched from these threads, and a thread is never
terminated: cancelling and stopping go through the core's own flags.
"""

from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from workbench.errors import WorkbenchError
from workbench.redaction import scrub

log = logging.getLogger(__name__)


_short_jobs: set[threading.Thread] = set()
_short_jobs_lock = threading.Lock()


def in_background(job, name: str, then=None, failed=None) -> threading.Thread:
    """Run ``job()`` (a read, a write to the run database, a model's guesses) on a plain thread: the one way
    the window keeps its GUI thread off disk, database and torch.

    With ``then``, ``then(result)`` runs on the GUI thread afterwards, or ``failed(message)`` (default: the
    message is logged) if ``job`` raised; without it, the result must come back through a signal. The window
    waits for these threads before it quits (``wait_for_background``): a thread still inside torch when the
    interpreter exits aborts the process."""
    mailbox = _mailbox() if then is not None else None

    def run() -> None:
        try:
            try:
                result = job()
            except BaseException as exc:
                if mailbox is None:
                    raise
                mailbox.arrived.emit(failed or (lambda message: log.warning("%s: %s", name, message)),
                                     describe_error(exc))
            else:
                if mailbox is not None:
                    mailbox.arrived.emit(then, result)
        finally:
            with _short_jobs_lock:
                _short_jobs.discard(threading.current_thread())

    thread = threading.Thread(target=run, name=name, daemon=True)
    with _short_jobs_lock:
        _short_jobs.add(thread)
    thread.start()
    return thread


class _Mailbox(QObject):
    """Lives on the GUI thread; a callback emitted from another thread runs there."""

    arrived = Signal(object, object)     # callback, its argument

    def __init__(self):
        super().__init__()
        self.arrived.connect(self._call)

    @Slot(object, object)
    def _call(self, callback, value) -> None:
        try:
            callback(value)
        except RuntimeError as exc:
            if "already deleted" not in str(exc) and "has been deleted" not in str(exc):
                raise
            log.debug("a background result arrived after its widget was closed: %s", exc)


_mailboxes: list[_Mailbox] = []


def _mailbox() -> _Mailbox:
    """The GUI thread's mailbox (made on first use, and moved to the application's thread whichever thread
    that use is on)."""
    if not _mailboxes:
        from PySide6.QtCore import QCoreApplication

        mailbox = _Mailbox()
        mailbox.moveToThread(QCoreApplication.instance().thread())
        _mailboxes.append(mailbox)
    return _mailboxes[0]


def wait_for_background(timeout_s: float = 60.0) -> bool:
    """Wait for the threads ``in_background`` started; False if one is still running after ``timeout_s``."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        with _short_jobs_lock:
            pending = list(_short_jobs)
        if not pending:
            return True
        pending[0].join(max(0.0, deadline - time.monotonic()))
        if time.monotonic() >= deadline:
            with _short_jobs_lock:
                return not _short_jobs


def describe_error(exc: BaseException) -> str:
    """A message for a person: ours as it is, anything else with its type (the traceback goes to the log)."""
    if isinstance(exc, WorkbenchError):
        return scrub(str(exc))
    details = "".join(traceback.format_exception(exc))
    log.debug("internal error in background work:\n%s", details)
    try:
        from workbench.error_log import append_error

        where = f" (details in {append_error(details)})"
    except OSError:
        where = ""
    return scrub(f"internal error: {type(exc).__name__}: {exc}{where}")


class PrepareWorker(QObject):
    """Runs ``prepare_dataset`` with progress and cancellation."""

    progress = Signal(str, int, int)     # stage, done, total
    done = Signal(object)                # PrepareResult
    failed = Signal(str)

    def __init__(self, corpus: list[str], out_dir: str, config, sample: bool = False):
        super().__init__()
        self.corpus, self.out_dir, self.config, self.sample = corpus, out_dir, config, sample
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @Slot()
    def run(self) -> None:
        from workbench.data.sample import sample_corpus_path
        from workbench.data.prepare import prepare_dataset

        try:
            corpus = list(self.corpus)
            if self.sample:
                corpus.append(str(sample_corpus_path(progress=lambda d, t: self.progress.emit("sample", d, t))))
            result = prepare_dataset(corpus, self.out_dir, self.config, progress=self.progress.emit,
                                     should_stop=self._cancel.is_set)
        except BaseException as exc:  # reported to the window; never a crash
            self.failed.emit(describe_error(exc))
            return
        self.done.emit(result)


@dataclass
class SweepEnded:
    """What a ``TrainingWorker`` running a sweep reports at the end: the sweep's status then."""

    sweep_id: int
    status: str


class TrainingWorker(QObject):
    """One training run, or a sweep's waiting runs one after another (``sweep_id``), through the services the
    CLI uses (``run_launch``, ``sweep_runner``); the trainer's events cross as ``event``."""

    event = Signal(object)               # a workbench.train.events.Event
    done = Signal(object)                # RunResult, or SweepEnded for a sweep
    failed = Signal(str)
    run_recorded = Signal(int, bool)     # a run's id in the database; True if it resumes an earlier one
    said = Signal(str)                   # a sweep's progress, one line

    def __init__(self, config, db_url: str | None, resume: str | None = None, sweep_id: int | None = None,
                 dataset: str | None = None):
        super().__init__()
        from workbench.train.control import TrainingControl

        self.config, self.db_url, self.resume = config, db_url, resume
        self.sweep_id, self.dataset = sweep_id, dataset
        self.control = TrainingControl()

    def _attach(self, launched) -> None:
        self.run_recorded.emit(launched.run_id, launched.trainer.resume_from is not None)
        launched.trainer.subscribe(self.event.emit)

    @Slot()
    def run(self) -> None:
        lower_thread_priority()
        try:
            from workbench.services.run_launch import find_resume_target, launch_run
            from workbench.services.sweep_runner import run_sweep
            from workbench.store.repository import RunRepository

            repository = RunRepository(self.db_url)
            if self.sweep_id is not None:
                status = run_sweep(repository, self.sweep_id, dataset=self.dataset, control=self.control,
                                   on_launch=self._attach, say=self.said.emit)
                self.done.emit(SweepEnded(self.sweep_id, status))
                return
            target = find_resume_target(self.resume, repository) if self.resume else None
            launched = launch_run(self.config, repository, resume=target, control=self.control)
            self._attach(launched)
            result = launched.run()
        except BaseException as exc:
            self.failed.emit(describe_error(exc))
            return
        self.done.emit(result)


class ModelLoadWorker(QObject):
    """Loads a checkpoint or an export for the probe and the preview: it verifies every file's hash and
    builds the model (seconds for a base-size run), so never on the GUI thread."""

    done = Signal(object)                # LoadedModel
    failed = Signal(str)

    def __init__(self, path: str, description: str):
        super().__init__()
        self.path, self.description = path, description

    @Slot()
    def run(self) -> None:
        try:
            from workbench.checkpoint import CheckpointError, find_checkpoint
            from workbench.interop.huggingface import is_hf_directory, load_for_inference

            model, tokenizer, config = load_for_inference(self.path)
            folder = None
            if not is_hf_directory(Path(self.path)):
                try:
                    folder = find_checkpoint(self.path)
                except CheckpointError:
                    folder = None
        except BaseException as exc:
            self.failed.emit(describe_error(exc))
            return
        self.done.emit(LoadedModel(model, tokenizer, config, folder, self.description))


@dataclass
class LoadedModel:
    model: object
    tokenizer: object
    config: object               # the run's WorkbenchConfig; None for a transformers export
    checkpoint: Path | None      # the checkpoint folder; None for an export
    description: str


class FinetuneWorker(QObject):
    """Runs a fine-tuning comparison (``services.finetune_run``, as the CLI's ``finetune``) and records it."""

    point = Signal(str, int, int, float)   # arm, seed, step, held-out accuracy
    done = Signal(object)                  # FinetuneOutcome
    failed = Signal(str)

    def __init__(self, request, db_url: str | None):
        super().__init__()
        self.request, self.db_url = request, db_url
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    @Slot()
    def run(self) -> None:
        lower_thread_priority()
        try:
            from workbench.services.finetune_run import run_finetune
            from workbench.store.repository import RunRepository

            outcome = run_finetune(self.request, RunRepository(self.db_url),
                                   on_point=lambda arm, p: self.point.emit(arm.arm, arm.seed, p["step"], p["accuracy"]),
                                   should_stop=self._stop.is_set)
        except BaseException as exc:
            self.failed.emit(describe_error(exc))
            return
        self.done.emit(outcome)


# How the window's training and fine-tuning threads yield to the window: a scheduling class and a niceness
# for this thread and the compute threads torch starts from it. Measured in benchmarks/gui_responsiveness.py
# (--fair-share), on 2 cores with and without two other training processes; see the README.
TRAINING_PRIORITY: tuple[str, int] = ("batch", 0)


def lower_thread_priority(priority: tuple[str, int] | None = None) -> None:
    """Let the GUI thread win the CPU without starving the run: on Linux, put this thread (and the compute
    threads it starts, which inherit it) in ``SCHED_BATCH`` and/or nice it, per ``TRAINING_PRIORITY``.

    ``SCHED_BATCH`` keeps the run's fair share of the cores against other programs (a niceness of 10 gave it
    a tenth of a core next to two busy processes) while the window, which sleeps and wakes, preempts it.
    """
    import os

    kind, niceness = priority or TRAINING_PRIORITY
    if not hasattr(threading, "get_native_id"):
        return
    thread = threading.get_native_id()
    if kind == "batch" and hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_BATCH"):
        try:
            os.sched_setscheduler(thread, os.SCHED_BATCH, os.sched_param(0))
        except OSError:
            pass
    if niceness and hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, thread, niceness)
        except OSError:
            pass
