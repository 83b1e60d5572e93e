"""``pretrain-workbench gui --self-test``: does the window work on this machine, as installed?

Opens the real window on a throw-away profile (data folder, datasets, runs,
run database and saved layout in a temporary folder, removed afterwards; only
the sample's text is unpacked into the user's cache folder as on any first
start, or found there), waits for it to prepare the built-in sample the way a
first start does,
presses Start for a few steps of the ``tiny`` preset, and checks that the run
completed and was recorded. Exit status 0 when all of that worked, 1 with one
line on stderr saying which step failed. Packagers run it on a built bundle
(``packaging/build.sh``); users can run it when the window misbehaves.
Qt must find a display, or ``QT_QPA_PLATFORM=offscreen``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

STEP_TIMEOUT_S = 600


def run_self_test(steps: int = 3) -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from workbench.gui.app import release
    from workbench.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="workbench-self-test-") as folder:
        profile = Path(folder)
        window = MainWindow(db=f"sqlite:///{profile / 'runs.db'}", data_dir=profile / "data",
                            settings=QSettings(str(profile / "layout.ini"), QSettings.IniFormat))
        window.show()
        try:
            failure = _exercise(app, window, steps, started)
        finally:
            release(app, window)
    if failure:
        print(f"self-test failed: {failure}", file=sys.stderr)
        return 1
    print(f"self-test passed: window shown, sample prepared, {steps} steps trained and recorded "
          f"({time.perf_counter() - started:.1f} s)")
    return 0


def _wait(app, done, what: str) -> str:
    """'' once ``done()`` holds, else why not (timed out after STEP_TIMEOUT_S)."""
    deadline = time.perf_counter() + STEP_TIMEOUT_S
    while not done():
        if time.perf_counter() > deadline:
            return f"timed out waiting for {what}"
        app.processEvents()
        time.sleep(0.01)
    return ""


def _exercise(app, window, steps: int, started: float) -> str:
    app.processEvents()
    if window.windowIcon().isNull():
        return "the window has no icon (a file is missing from the installation)"
    failure = _wait(app, lambda: window.training.start_button.isEnabled() or window.last_error, "the sample corpus")
    if failure or window.last_error:
        return failure or f"preparing the sample: {window.last_error}"
    print(f"sample prepared, Start pressable {time.perf_counter() - started:.1f} s after launch", flush=True)
    window.run_settings.set("train", "max_steps", steps)
    window.run_settings.set("train", "eval_every", steps)
    window.run_settings.set("train", "checkpoint_every", steps)
    window.training.start_button.click()
    failure = _wait(app, lambda: window.runner.busy or window.last_error, "the run to start")
    failure = failure or _wait(app, lambda: not window.runner.busy, "the run to finish")
    if failure or window.last_error:
        return failure or f"training: {window.last_error}"
    run = window.repository.get(window.runner.run_id) if window.runner.run_id is not None else None
    if run is None or run.status != "completed" or run.steps != steps:
        return f"the run was not recorded as completed after {steps} steps ({run.status if run else 'no run'})"
    if window.plots.point_count() != steps:
        return f"the plots show {window.plots.point_count()} points, not {steps}"
    return ""
