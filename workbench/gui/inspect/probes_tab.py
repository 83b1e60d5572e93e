"""Probes: each run's probes over its snapshots, a table per run (green right, red wrong; the current step's
column underlined)."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout

from workbench.gui.inspect.tab import InspectTab

EXPLAINED = ("Each cell: a probe's score at a snapshot (fill: ln p(answer); minimal pair: PLL(good) − PLL(bad); "
             "pair: ln p(expected label)); green = right, red = wrong.")
NO_PROBES = ("This run has no probes: set inspect.probes to a probe file (JSONL or TSV, see the README), or score one "
             "on its checkpoints with `pretrain-workbench inspect RUN --from-checkpoints --probes FILE`. Runs on the "
             "built-in sample corpus get the built-in probes.")


class ProbesTab(InspectTab):
    title = "Probes"

    def __init__(self, panel):
        super().__init__(panel)
        self.note = QLabel("", objectName="inspectProbeNote")
        self.note.setWordWrap(True)
        self.tables = (QTableWidget(0, 0, objectName="inspectProbesA"), QTableWidget(0, 0, objectName="inspectProbesB"))
        self.titles = (QLabel(), QLabel())
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        for title, table in zip(self.titles, self.tables):
            title.setStyleSheet("font-weight: bold;")
            table.verticalHeader().setDefaultSectionSize(20)
            table.setSelectionMode(QTableWidget.NoSelection)
            layout.addWidget(title)
            layout.addWidget(table, 1)

    def draw_runs(self) -> None:
        shown = dict(enumerate(self.runs()))
        any_probes = False
        for k, (title, table) in enumerate(zip(self.titles, self.tables)):
            table.setVisible(k in shown)
            title.setVisible(k in shown)
            if k not in shown:
                continue
            run = shown[k][0]
            title.setText(run.label)
            scores, right = run.probes
            names = run.inspection.probe_names()
            any_probes |= bool(names)
            steps = run.inspection.steps
            table.setRowCount(len(names))
            table.setColumnCount(len(steps))
            table.setHorizontalHeaderLabels([f"{s:,}" for s in steps])
            table.setVerticalHeaderLabels(names)
            for r in range(len(names)):
                for c in range(len(steps)):
                    value = scores[r, c]
                    item = QTableWidgetItem("" if not np.isfinite(value) else f"{value:.1f}")
                    item.setBackground(QBrush(QColor("#b7e1a1" if right[r, c] else "#f4b6b6")))
                    item.setToolTip(f"{names[r]}\nstep {steps[c]:,}: score {value:.3f}, "
                                    f"{'right' if right[r, c] else 'wrong'}")
                    table.setItem(r, c, item)
            table.resizeColumnsToContents()
        self.note.setText(EXPLAINED if any_probes else NO_PROBES)

    def draw_step(self) -> None:
        """The current step's column: a bold, underlined header; the cells keep their colours."""
        for table, (_, index, _) in zip(self.tables, self.runs()):
            for column in range(table.columnCount()):
                header = table.horizontalHeaderItem(column)
                if header is not None:
                    font = header.font()
                    font.setBold(column == index)
                    font.setUnderline(column == index)
                    header.setFont(font)
