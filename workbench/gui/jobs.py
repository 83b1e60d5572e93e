"""A worker object on its own ``QThread``: the one typed handle the window keeps for background work.

A worker made in Python is owned by Python: when the last reference goes, its C++ object is deleted at once,
from whichever thread dropped it. The window used to drop its ``(thread, worker)`` tuple in the slot that
received the worker's ``done``, while the worker's thread could still be inside the worker (returning from
``run``, handling ``quit``), and connected ``deleteLater`` to the same object: now and then that deleted the
worker twice or under its thread's feet, and the process died with a segmentation fault. A ``Job`` keeps the
worker until its thread has finished and been joined, and only then lets it go, on the GUI thread.

The same flaky crash had a second cause: the window waited on its thread (``thread.wait``) right after a
``processEvents`` that could have deleted it; the ``RuntimeError`` escaped ``closeEvent``, and PySide 6.11
crashes (in ``storePythonOverrideErrorOrPrint``) on an exception leaving a virtual override. ``Job.wait``
is safe at any time.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QThread, Qt, Signal, Slot


class Job(QObject):
    """``worker.run`` on a new thread. ``worker`` has ``done`` and ``failed`` signals; the thread ends after
    either. ``finished`` is emitted on the GUI thread once the thread has ended and the worker is released."""

    finished = Signal()

    def __init__(self, worker: QObject, parent: QObject):
        super().__init__(parent)
        self.worker: QObject | None = worker
        self.qthread = QThread(self)
        worker.moveToThread(self.qthread)
        self.qthread.started.connect(worker.run)
        for signal in (worker.done, worker.failed):
            # Direct: the worker's own thread leaves its event loop. Queued (the default, as the QThread object
            # lives on the GUI thread), the quit would wait for the GUI thread, which may be waiting for it.
            signal.connect(self.qthread.quit, Qt.DirectConnection)
        self.qthread.finished.connect(self._thread_finished)   # queued: this object lives on the GUI thread
        self.qthread.start()

    @property
    def running(self) -> bool:
        return self.worker is not None

    def wait(self, timeout_ms: int) -> bool:
        """Block until the thread ends (at most ``timeout_ms``); True if it has. Safe after the job has
        ended and been deleted (a ``processEvents`` can do both between two calls)."""
        if self.worker is None:
            return True
        return self.qthread.wait(timeout_ms)

    @Slot()
    def _thread_finished(self) -> None:
        self.qthread.wait()
        self.worker = None          # its thread is over: deleting it here races with nothing
        self.finished.emit()
        self.deleteLater()
