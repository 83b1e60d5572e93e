"""Starting the application: ``pretrain-workbench`` (or ``pretrain-workbench gui --db URL``)."""

from __future__ import annotations

import sys


def release(app, window) -> None:
    """Delete the window while the application still exists.

    Left to the interpreter's shutdown, Python may destroy the QApplication before
    the window's C++ objects, which crashes at exit.
    """
    from PySide6.QtCore import QCoreApplication, QEvent

    window.close()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    app.processEvents()


def run_app(db: str | None = None, argv: list[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("Pre-training Workbench")
    app.setOrganizationName("pretrain-workbench")
    app.setDesktopFileName("pretrain-workbench")
    from PySide6.QtGui import QIcon

    from workbench.packaged import icon_path

    app.setWindowIcon(QIcon(str(icon_path())))
    from workbench.gui.main_window import MainWindow

    window = MainWindow(db=db)
    window.show()
    code = app.exec()
    release(app, window)
    del window
    return code
