"""Starting the application: ``pretrain-workbench`` (or ``pretrain-workbench gui --db URL``)."""

from __future__ import annotations

import sys


def run_app(db: str | None = None, argv: list[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("Pre-training Workbench")
    app.setOrganizationName("pretrain-workbench")
    app.setDesktopFileName("pretrain-workbench")
    from workbench.gui.main_window import MainWindow

    window = MainWindow(db=db)
    window.show()
    return app.exec()
