"""Embeddings: the 2-D map of the most frequent words (aligned between steps), nearest neighbours of a word
(input embeddings or in context) for both runs, and anisotropy, effective rank and norms over the steps."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QListWidget, QVBoxLayout, QWidget

from workbench.gui.inspect.tab import InspectTab, clear_plot, move_cursors, step_axis, steps_plot

MAP_LABELS = 40            # of the map's points, the most frequent carry their word
CURVES = (("cosine ", "mean cosine by frequency band (a cone: high)"), ("norm ", "norm by frequency band"),
          ("effective rank", "effective rank"))


class EmbeddingsTab(InspectTab):
    title = "Embeddings"

    def __init__(self, panel):
        super().__init__(panel)
        self.map_plot = pg.PlotWidget(title="Input embeddings of the most frequent words (PCA, aligned between steps)")
        self.map_plot.setBackground("w")
        self.map_plot.hideAxis("left")
        self.map_plot.hideAxis("bottom")
        self.points = pg.ScatterPlotItem(size=6, brush=pg.mkBrush(78, 121, 167, 160), pen=None)
        self.map_plot.addItem(self.points)
        self.labels: list[pg.TextItem] = []
        self.word = QLineEdit(objectName="inspectNeighbourWord")
        self.word.setPlaceholderText("a word, e.g. return")
        self.word.textChanged.connect(lambda _: self.draw_neighbours())
        self.in_context = QCheckBox("in context (mean final state over the probe pack)", objectName="inspectInContext")
        self.in_context.toggled.connect(lambda _: self.draw_neighbours())
        self.lists = (QListWidget(objectName="inspectNeighboursA"), QListWidget(objectName="inspectNeighboursB"))
        lists = QHBoxLayout()
        for widget in self.lists:
            widget.setWordWrap(True)
            lists.addWidget(widget)
        self.choice = QComboBox(objectName="inspectEmbeddingCurve")
        self.choice.addItems([text for _, text in CURVES])
        self.choice.currentIndexChanged.connect(lambda _: self.draw_runs() if self.panel.a is not None else None)
        self.curves = steps_plot("", "")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(QLabel("Nearest neighbours (cosine)"))
        right_layout.addWidget(self.word)
        right_layout.addWidget(self.in_context)
        right_layout.addLayout(lists, 1)
        right_layout.addWidget(self.choice)
        right_layout.addWidget(self.curves, 1)
        self.set_sides(self.map_plot, right, (520, 400))

    def draw_runs(self) -> None:
        clear_plot(self.curves)
        prefix = CURVES[self.choice.currentIndex()][0]
        for run, _, style in self.runs():
            names = [n for n in run.embedding_curves if n.startswith(prefix)]
            for k, name in enumerate(names):
                self.curves.plot(step_axis(run.inspection.steps), run.embedding_curves[name],
                                 pen=pg.mkPen(pg.intColor(k, hues=5), width=2, **style),
                                 name=(name.replace(prefix, "") or name) if run is self.panel.a else None)
        move_cursors(int(self.panel.a.inspection.steps[self.panel.index]), self.curves)

    def draw_step(self) -> None:
        a = self.panel.a
        points = a.map[self.panel.index]
        self.points.setData(points[:, 0], points[:, 1], data=a.map_words)
        while len(self.labels) < min(MAP_LABELS, len(points)):
            label = pg.TextItem(color="#333333", anchor=(0.5, 1.2))
            self.map_plot.addItem(label)
            self.labels.append(label)
        for label, word, (x, y) in zip(self.labels, a.map_words, points):
            label.setText(word)
            label.setPos(float(x), float(y))
        span = float(np.abs(a.map).max()) or 1.0                # fixed over the steps: points move, the frame not
        self.map_plot.setRange(xRange=(-span, span), yRange=(-span, span), padding=0.05)
        self.draw_neighbours()
        move_cursors(int(a.inspection.steps[self.panel.index]), self.curves)

    def draw_neighbours(self) -> None:
        from workbench.snapshots.store import SnapshotError

        word = self.word.text().strip().lower()
        shown = dict(enumerate(self.runs())) if self.panel.a is not None else {}
        for k, widget in enumerate(self.lists):
            widget.clear()
            widget.setVisible(k in shown)
            if k not in shown or not word:
                continue
            run, index, _ = shown[k]
            try:
                found = run.inspection.neighbours(word, index, in_context=self.in_context.isChecked())
            except SnapshotError as exc:
                widget.addItem(str(exc))
                continue
            widget.addItem(f"{run.label}, step {run.inspection.steps[index]:,}:")
            for neighbour, similarity in found:
                widget.addItem(f"{neighbour}   {similarity:.2f}")
