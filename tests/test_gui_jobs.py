"""Background work in the window: a worker outlives its thread, and results come back on the GUI thread."""

import threading
import time

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Signal, Slot  # noqa: E402


class SlowToLeave(QObject):
    """Says done, then stays inside ``run`` until ``release`` is set (or a second): what a worker does when it
    returns after ``done``."""

    done = Signal(object)
    failed = Signal(str)

    def __init__(self, leaving: threading.Event, release: threading.Event | None = None):
        super().__init__()
        self.leaving, self.release = leaving, release or threading.Event()

    @Slot()
    def run(self) -> None:
        self.done.emit(threading.get_ident())
        self.release.wait(1.0)
        self.leaving.set()


def test_a_job_keeps_its_worker_until_its_thread_has_ended(qtbot):
    import gc

    import shiboken6

    from workbench.gui.jobs import Job

    owner = QObject()
    leaving, release = threading.Event(), threading.Event()
    worker = SlowToLeave(leaving, release)
    seen = {}
    worker.done.connect(lambda thread: seen.setdefault("thread", thread))
    job = Job(worker, owner)
    with qtbot.waitSignal(job.finished, timeout=10_000):
        qtbot.waitUntil(lambda: "thread" in seen, timeout=10_000)
        del worker                                          # what the window does in its done slot
        gc.collect()
        assert job.worker is not None and shiboken6.isValid(job.worker)    # still held: its thread runs
        assert not leaving.is_set()
        release.set()
    assert leaving.is_set() and job.qthread.isFinished() and job.worker is None
    assert seen["thread"] != threading.get_ident()          # it ran on its own thread
    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    assert not shiboken6.isValid(job)                       # gone once it ended, with its thread
    assert job.wait(10)          # and waiting on it then is no error (one escaping closeEvent crashed PySide)


def test_in_background_delivers_the_result_or_the_error_on_the_gui_thread(qtbot):
    from workbench.errors import WorkbenchError
    from workbench.gui.workers import in_background, wait_for_background

    got = []

    def fail():
        raise WorkbenchError("the database is locked")

    in_background(lambda: threading.get_ident(), "test-ok", then=lambda t: got.append(("ok", t, threading.get_ident())))
    in_background(fail, "test-fail", then=got.append, failed=lambda m: got.append(("failed", m, threading.get_ident())))
    assert wait_for_background(10)
    qtbot.waitUntil(lambda: len(got) == 2, timeout=5000)
    here = threading.get_ident()
    ok = next(g for g in got if g[0] == "ok")
    assert ok[1] != here and ok[2] == here                 # computed there, delivered here
    assert ("failed", "the database is locked", here) in got


def test_waiting_for_a_job_from_the_gui_thread_does_not_need_the_gui_thread(qtbot):
    """The window waits for its jobs when it closes, without running its event loop: the worker's thread must
    end on its own once the worker is done (a quit queued to the GUI thread would never arrive)."""
    from workbench.gui.jobs import Job

    leaving, owner = threading.Event(), QObject()
    job = Job(SlowToLeave(leaving), owner)
    started = time.monotonic()
    assert job.wait(10_000) and time.monotonic() - started < 5
    assert leaving.is_set()
