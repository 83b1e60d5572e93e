"""Background work for the window: preparing a corpus and training, each on a QThread.

The work itself is plain core code (``prepare_dataset``, ``Trainer``); these
adapters only move it to a thread and turn its callbacks and events into Qt
signals. Widgets are never touched from these threads, and a thread is never
terminated: cancelling and stopping go through the core's own flags.
"""

from __future__ import annotations

import logging
import threading
import traceback

from PySide6.QtCore import QObject, QThread, Signal, Slot

from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)


def describe_error(exc: BaseException) -> str:
    """A message for a person: ours as it is, anything else with its type (the traceback goes to the log)."""
    if isinstance(exc, WorkbenchError):
        return str(exc)
    log.error("internal error in background work:\n%s", "".join(traceback.format_exception(exc)))
    return f"internal error: {type(exc).__name__}: {exc}"


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
        from workbench.data.store import prepare_dataset

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


class TrainingWorker(QObject):
    """Builds and runs a ``Trainer``; its events cross to the GUI thread as the ``event`` signal."""

    event = Signal(object)               # a workbench.train.events.Event
    done = Signal(object)                # RunResult
    failed = Signal(str)
    run_recorded = Signal(int)           # the run's id in the database

    def __init__(self, config, run_dir: str, db_url: str | None, resume_from: str | None = None,
                 run_id: int | None = None):
        super().__init__()
        from workbench.train.control import TrainingControl

        self.config, self.run_dir, self.db_url = config, run_dir, db_url
        self.resume_from, self.run_id = resume_from, run_id
        self.control = TrainingControl()

    @Slot()
    def run(self) -> None:
        lower_thread_priority()
        try:
            from workbench.store.recorder import RunRecorder
            from workbench.store.repository import RunRepository
            from workbench.train.trainer import Trainer

            trainer = Trainer(self.config, self.run_dir, resume_from=self.resume_from, control=self.control)
            repository = RunRepository(self.db_url)
            if self.run_id is None:
                self.run_id = repository.create_run(self.config.to_dict(), self.config.train.name or
                                                    self.run_dir.rsplit("/", 1)[-1], self.run_dir, trainer.dataset).id
            self.run_recorded.emit(self.run_id)
            trainer.subscribe(RunRecorder(repository, self.run_id))
            trainer.subscribe(self.event.emit)
            result = trainer.run()
        except BaseException as exc:
            self.failed.emit(describe_error(exc))
            return
        self.done.emit(result)


def lower_thread_priority(niceness: int = 10) -> None:
    """Let the GUI thread win the CPU: on Linux, nice this thread (and the compute threads it starts).

    Training keeps every core busy; without this the window's timers fire up to
    ~100 ms late on a 2-core machine. Threads that torch starts from here inherit
    the niceness, and an otherwise idle machine trains exactly as fast.
    """
    import os

    if hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
        except OSError:
            pass


def start_in_thread(worker: QObject, parent: QObject) -> QThread:
    """Move ``worker`` to a new thread, run ``worker.run`` there, clean both up when it ends."""
    thread = QThread(parent)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    for signal in (worker.done, worker.failed):
        signal.connect(thread.quit)
    thread.finished.connect(worker.deleteLater)
    thread.finished.connect(thread.deleteLater)
    thread.start()
    return thread
