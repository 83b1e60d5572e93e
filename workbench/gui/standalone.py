"""Run one panel on its own: ``python -m workbench.gui.panels.X`` calls ``run_alone``."""

from __future__ import annotations

import sys
from typing import Callable

from PySide6.QtWidgets import QApplication, QWidget

from workbench.gui.gui_gc import collect_on_gui_thread


def run_alone(make_panel: Callable[[], QWidget], width: int = 900, height: int = 700) -> int:
    """Show the panel ``make_panel()`` builds in its own window until it is closed; the exit code.

    The panel is destroyed before the application (a plot outliving it crashes the interpreter at exit)."""
    app = QApplication.instance() or QApplication(sys.argv)
    collector = collect_on_gui_thread()          # as the window does: never a collection on a worker
    panel = make_panel()
    panel.resize(width, height)
    panel.show()
    code = app.exec()
    panel.close()
    panel.deleteLater()
    del panel
    app.processEvents()
    collector.stop()                             # collects here once, then the automatic collector again
    return code
