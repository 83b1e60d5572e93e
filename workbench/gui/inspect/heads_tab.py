"""The head atlas: a layers x heads grid per run, each tile a head's fingerprint on the probe pack, and the
attention map of the head clicked."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from workbench.gui.inspect.tab import InspectTab
from workbench.gui.inspect.widgets import KIND_COLOURS, KIND_TEXT, AttentionMapView, HeadGrid
from workbench.snapshots.reductions import HEAD_FEATURES, SHARE_FEATURES


class HeadsTab(InspectTab):
    title = "Head atlas"

    def __init__(self, panel):
        super().__init__(panel)
        self.selected_head = (0, 0)
        self.grid_a = HeadGrid("")
        self.grid_b = HeadGrid("")
        self.grid_a.clicked.connect(self.select_head)
        self.grid_b.clicked.connect(self.select_head)
        self.diff = QComboBox(objectName="inspectHeadDiff")
        self.diff.setToolTip("Captions show each head's largest change of attention share against this")
        self.diff.currentIndexChanged.connect(lambda _: self.draw_step() if self.panel.a is not None else None)
        diff_row = QHBoxLayout()
        diff_row.addWidget(QLabel("difference to"))
        diff_row.addWidget(self.diff)
        diff_row.addStretch(1)
        legend = QLabel(" ".join(f'<span style="background:{c}">&nbsp;{KIND_TEXT[k]}&nbsp;</span>'
                                 for k, c in KIND_COLOURS.items()))
        legend.setWordWrap(True)
        self.example = QSpinBox(objectName="inspectExample")
        self.example.setPrefix("example ")
        self.example.valueChanged.connect(lambda _: self.draw_attention())
        self.attention = AttentionMapView()
        grids = QWidget()
        grid_layout = QVBoxLayout(grids)
        grid_layout.addLayout(diff_row)
        grid_layout.addWidget(self.grid_a, 1)
        grid_layout.addWidget(self.grid_b, 1)
        grid_layout.addWidget(legend)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.example)
        right_layout.addWidget(self.attention, 1)
        self.set_sides(grids, right, (500, 420))

    def runs_loaded(self) -> None:
        a = self.panel.a.inspection
        self.example.setRange(0, a.snapshots[0].attention.shape[0] - 1)
        self.diff.blockSignals(True)
        self.diff.clear()
        self.diff.addItem("nothing", None)
        if self.panel.b is not None:
            self.diff.addItem(f"{self.panel.b.label} at the matched step", "b")
        for index, step in enumerate(a.steps):
            self.diff.addItem(f"step {step:,}", index)
        self.diff.blockSignals(False)

    def reference(self, run, index: int):
        """The heads (L, nh, 8) the captions are compared with, and what they are; None for no comparison."""
        choice = self.diff.currentData()
        panel = self.panel
        if choice is None or (choice == "b" and panel.b is None):
            return None, ""
        if choice == "b":
            other, other_index = (panel.b, panel.index_b()) if run is panel.a else (panel.a, panel.index)
        else:
            other, other_index = panel.a, int(choice)
        heads = other.inspection.heads(other_index)
        if heads.shape != run.inspection.heads(index).shape:
            return None, ""
        return heads, f"{other.label} step {other.inspection.steps[other_index]:,}"

    def draw_step(self) -> None:
        panel = self.panel
        for grid, (run, index) in ((self.grid_a, (panel.a, panel.index)), (self.grid_b, (panel.b, panel.index_b()))):
            grid.setVisible(run is not None)
            if run is not None:
                self._draw_grid(grid, run, index)
        self.draw_attention()

    def _draw_grid(self, grid: HeadGrid, run, index: int) -> None:
        inspection = run.inspection
        heads = inspection.heads(index)                                               # (L, nh, 8)
        kinds = run.kinds[index]
        grid.set_shape(*heads.shape[:2])
        grid.title.setText(f"{run.label} at step {inspection.steps[index]:,}")
        reference, against = self.reference(run, index)
        uniform = math.log(max(inspection.mean_length, 2.0))
        even = np.maximum(inspection.uniform_shares(), 1e-6)                          # attention spread evenly
        for (layer, head), tile in grid.tiles.items():
            kind = str(kinds[layer, head])
            values = heads[layer, head]
            if kind == "local":
                series = sum(inspection.head_series(k)[:, layer, head] for k in ("self", "previous", "next"))
                caption = f"{KIND_TEXT[kind]} {values[3:6].sum():.0%}"
            elif kind in SHARE_FEATURES:
                series = inspection.head_series(kind)[:, layer, head]
                caption = f"{KIND_TEXT[kind]} {values[HEAD_FEATURES.index(kind)]:.0%}"
            else:                                        # what it leans to most, against even attention
                series = inspection.head_series("entropy")[:, layer, head] / uniform
                lift = values[:6] / even
                top = int(lift.argmax())
                caption = f"{KIND_TEXT[kind]}\n{SHARE_FEATURES[top]} {values[top]:.0%} ({lift[top]:.0f}x even)"
            if reference is not None:
                change = values[:6] - reference[layer, head, :6]
                biggest = int(np.abs(change).argmax())
                caption = f"Δ {SHARE_FEATURES[biggest]} {change[biggest]:+.2f}\nagainst {against}"
            tip = "\n".join(f"{name}: {values[k]:.3f}" for k, name in enumerate(HEAD_FEATURES))
            tile.show_head(kind, caption, series, index, f"layer {layer}, head {head}\n{tip}")
        grid.select(*self.selected_head)

    def select_head(self, layer: int, head: int) -> None:
        self.selected_head = (layer, head)
        self.grid_a.select(layer, head)
        self.grid_b.select(layer, head)
        self.draw_attention()

    def draw_attention(self) -> None:
        panel = self.panel
        if panel.a is None:
            return
        inspection = panel.a.inspection
        layer, head = self.selected_head
        maps = inspection.snapshots[panel.index].attention                           # (E, L, nh, A, A)
        if layer >= maps.shape[1] or head >= maps.shape[2]:
            return
        example = min(self.example.value(), maps.shape[0] - 1)
        A = maps.shape[-1]
        ids = inspection.pack.input_ids[example, :A]
        real = int(inspection.pack.attention_mask[example, :A].sum())
        tokens = [str(inspection.pack.tokens[t]) for t in ids[:real]]
        self.attention.show_map(tokens, maps[example, layer, head, :real, :real].astype(float),
                                f"L{layer} H{head} at step {inspection.steps[panel.index]:,} (rows attend to columns)")
