"""Attention and syntax: with a CoNLL-U treebank, each head's share of words whose strongest attention goes to
their dependency head, against the best fixed-offset baseline."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout

from workbench.gui.inspect.tab import InspectTab, clear_plot, move_cursors, step_axis, steps_plot

NO_TREEBANK = ("No treebank: set inspect.treebank to a CoNLL-U file of the corpus' language (or `pretrain-workbench "
               "inspect RUN --from-checkpoints --treebank FILE`) to see how often each head's strongest attention "
               "goes to a word's dependency head.")


class SyntaxTab(InspectTab):
    title = "Attention and syntax"

    def __init__(self, panel):
        super().__init__(panel)
        self.note = QLabel("", objectName="inspectSyntaxNote")
        self.note.setWordWrap(True)
        self.table = QTableWidget(0, 0, objectName="inspectSyntaxTable")
        self.plot = steps_plot("Best head's dependency accuracy and the best fixed offset", "share of words")
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.plot, 1)

    def has_treebank(self) -> bool:
        return bool(np.isfinite(self.panel.a.inspection.syntax()[1]).any())

    def draw_runs(self) -> None:
        clear_plot(self.plot)
        if not self.has_treebank():
            return
        for run, _, style in self.runs():
            if not np.isfinite(run.inspection.syntax()[1]).any():
                continue
            accuracy, baseline = run.inspection.syntax()
            x = step_axis(run.inspection.steps)
            first = run is self.panel.a
            self.plot.plot(x, np.nanmax(accuracy.reshape(len(x), -1), axis=1), pen=pg.mkPen("#4e79a7", width=2, **style),
                           name="best head" if first else None)
            self.plot.plot(x, baseline, pen=pg.mkPen("#888888", width=2, **style), name="best offset" if first else None)

    def draw_step(self) -> None:
        has = self.has_treebank()
        self.table.setVisible(has)
        self.plot.setVisible(has)
        if not has:
            self.note.setText(NO_TREEBANK)
            return
        inspection, index = self.panel.a.inspection, self.panel.index
        accuracy, baseline = inspection.syntax()
        now = accuracy[index]
        self.note.setText(f"At step {inspection.steps[index]:,}: the best head finds the dependency head of "
                          f"{np.nanmax(now):.0%} of words; always taking the best fixed offset finds "
                          f"{baseline[index]:.0%}.")
        L, nh = now.shape
        self.table.setRowCount(L)
        self.table.setColumnCount(nh)
        self.table.setVerticalHeaderLabels([f"layer {layer}" for layer in range(L)])
        self.table.setHorizontalHeaderLabels([f"head {head}" for head in range(nh)])
        for layer in range(L):
            for head in range(nh):
                item = QTableWidgetItem(f"{now[layer, head]:.0%}")
                item.setBackground(QBrush(QColor("#b7e1a1" if now[layer, head] > baseline[index] else "#f0f0f0")))
                self.table.setItem(layer, head, item)
        move_cursors(int(inspection.steps[index]), self.plot)
