"""The window's dock layout: the default arrangement, and laying docks out without stale tab bars.

Qt's ``QMainWindow`` (6.11, X11 and offscreen alike) keeps drawing the tab bar of every intermediate tab
group when docks are tabified before the window is shown (three docks tabbed together show a two-tab bar
and a three-tab bar, one over the other), and keeps the old bars when a state is restored over docks that
are already laid out. Restoring a saved state into docks that have never been laid out draws exactly one
bar per group. So the default arrangement is built once in a throw-away window and saved; the window
only ever restores states into fresh docks (``MainWindow.reset_layout`` replaces its docks first).
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow, QTabBar, QWidget

SIZE = (1500, 950)


def arrange(window: QMainWindow, docks: dict[str, QDockWidget], groups: dict[str, tuple[str, ...]]) -> None:
    """Put ``docks`` in the default arrangement: ``groups`` (``panel_registry.areas``) gives the keys of the left,
    top-right and bottom-right areas, tabbed in that order, the first of each in front."""
    LEFT, TOP_RIGHT, BOTTOM_RIGHT = groups["left"], groups["top_right"], groups["bottom_right"]
    for dock in docks.values():
        dock.setFloating(False)
        dock.show()
    window.addDockWidget(Qt.LeftDockWidgetArea, docks[LEFT[0]])
    window.addDockWidget(Qt.RightDockWidgetArea, docks[TOP_RIGHT[0]])
    window.splitDockWidget(docks[TOP_RIGHT[0]], docks[BOTTOM_RIGHT[0]], Qt.Vertical)
    for group in (LEFT, TOP_RIGHT, BOTTOM_RIGHT):
        for key in group[1:]:
            window.tabifyDockWidget(docks[group[0]], docks[key])
    width, height = SIZE
    window.resizeDocks([docks[LEFT[0]], docks[TOP_RIGHT[0]]], [430, width - 430], Qt.Horizontal)
    window.resizeDocks([docks[TOP_RIGHT[0]], docks[BOTTOM_RIGHT[0]]], [700, 230], Qt.Vertical)
    for group in (TOP_RIGHT, BOTTOM_RIGHT, LEFT):
        docks[group[0]].raise_()


def default_state(groups: dict[str, tuple[str, ...]], version: int) -> QByteArray:
    """The saved state of the default arrangement of docks named ``{key}Dock``, made in a throw-away window."""
    window = QMainWindow()
    try:
        window.setDockNestingEnabled(True)
        central = QWidget()
        central.setMaximumSize(0, 0)
        window.setCentralWidget(central)
        window.resize(*SIZE)
        docks = {}
        for key in (key for group in groups.values() for key in group):
            dock = QDockWidget(key, window)
            dock.setObjectName(f"{key}Dock")
            dock.setWidget(QWidget())
            docks[key] = dock
        arrange(window, docks, groups)
        return window.saveState(version)
    finally:
        window.deleteLater()


def hide_empty_tab_bars(window: QMainWindow) -> None:
    """Hide the window's tab bars that hold no tab (left behind by docks that were replaced)."""
    for bar in window.findChildren(QTabBar):
        if bar.parent() is window and bar.count() == 0:
            bar.hide()


def visible_tab_bars(window: QMainWindow) -> list[list[str]]:
    """The tab titles of every dock tab bar a person sees, one list per bar."""
    return [[bar.tabText(i) for i in range(bar.count())] for bar in window.findChildren(QTabBar)
            if bar.parent() is window and bar.isVisible() and bar.count()]
