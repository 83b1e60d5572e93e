"""The desktop window (Qt). The only package that imports PySide6.

``MainWindow(db=URL)`` builds the window for scripts and tests; ``run_app``
starts the application.
"""

from __future__ import annotations


def __getattr__(name):  # lazy: importing workbench.gui must not start Qt
    if name == "MainWindow":
        from workbench.gui.main_window import MainWindow

        return MainWindow
    if name == "run_app":
        from workbench.gui.app import run_app

        return run_app
    raise AttributeError(name)
