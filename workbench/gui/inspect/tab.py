"""What a view of the Inspect panel is to the panel, and the plot over steps that several views draw.

A tab reads the panel's runs (``panel.a``, ``panel.b``: ``LoadedRun`` or None) and steps (``panel.index``,
``panel.index_b()``). The panel calls ``runs_loaded`` when new runs arrive, ``draw_runs`` once per pair
of runs the first time the tab is shown (curves and tables over all steps), and ``draw_step`` whenever the
step changes (cursors, the current column, what depends on one snapshot) - the slider never redraws a
whole plot.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

PEN_B = dict(style=Qt.DashLine)        # the second run's curves


class InspectTab(QWidget):
    title = ""

    def __init__(self, panel):
        super().__init__()
        self.panel = panel

    def set_sides(self, left: QWidget, right: QWidget, sizes: tuple[int, int] = (480, 440)) -> None:
        """The tab's layout: two sides a person can resize."""
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes(list(sizes))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    def runs_loaded(self) -> None:
        """New runs arrived: set ranges and lists that come from them."""

    def draw_runs(self) -> None:
        """What does not depend on the step."""

    def draw_step(self) -> None:
        """What the current step changes."""

    def runs(self):
        """(run, its snapshot index, pen style) of the runs shown: A solid, B dashed."""
        panel = self.panel
        shown = [(panel.a, panel.index, {})]
        if panel.b is not None:
            shown.append((panel.b, panel.index_b(), PEN_B))
        return shown


def step_axis(steps) -> np.ndarray:
    """x of the over-steps plots: step + 1 on a log axis (step 0 is the untrained model)."""
    return np.asarray(steps, float) + 1.0


def steps_plot(title: str, y: str) -> pg.PlotWidget:
    """A plot over the steps (log x, decades labelled), with a dotted cursor at the current step."""
    plot = pg.PlotWidget(title=title)
    plot.setBackground("w")
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setLabel("bottom", "step + 1")
    plot.setLabel("left", y)
    plot.setLogMode(x=True, y=False)
    plot.getAxis("bottom").setTicks([[(d, f"{10 ** d:,}") for d in range(0, 8)], []])   # 2·10¹ 3·10¹ ... crowd
    plot.getAxis("left").enableAutoSIPrefix(False)
    plot.addLegend(offset=(10, -10))                        # bottom left: the curves fall to the right
    plot.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#888888", style=Qt.DotLine))
    plot.addItem(plot.cursor, ignoreBounds=True)
    return plot


def clear_plot(plot: pg.PlotWidget) -> None:
    plot.clear()
    plot.addItem(plot.cursor, ignoreBounds=True)


def move_cursors(step: int, *plots: pg.PlotWidget) -> None:
    x = math.log10(step + 1.0)
    for plot in plots:
        plot.cursor.setPos(x)
