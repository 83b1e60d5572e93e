"""Live plots of a training run: losses, accuracies, learning rate, gradient norm, throughput.

Points arrive with every step event into numpy buffers (grown by doubling);
the plots are redrawn from a 10 Hz timer on the GUI thread, only when
something changed and only when the panel is visible. Each curve is one
persistent ``PlotDataItem`` updated with ``setData``; it is handed only the
visible stretch, reduced to a min/max envelope of a few thousand points, and
smoothing is extended incrementally, so a million points per curve stay smooth.
Smoothing, log scale and the x axis are *live* settings: they change how the
run is shown, never the run.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from workbench.gui.curves import GrowingColumns, SmoothedCache, envelope
from workbench.metrics import metric as table_entry

PLOTTED = ("mlm_loss", "mlm_accuracy", "nsp_accuracy", "nsp_loss", "lr", "masking_rate", "grad_norm",
           "tokens_per_second")
METRICS = tuple((name, table_entry(name).title, table_entry(name).log_scale) for name in PLOTTED)  # titles from the table
# The curves that show learning (against the floor and chance lines) are large, on top; the rest of the
# run's health is a row of small plots below, which "More plots" hides.
MAIN = ("mlm_loss", "mlm_accuracy", "nsp_accuracy")
MAIN_HEIGHT, SMALL_HEIGHT = 3, 1      # row stretch: the main row three times a small one
EMPTY_HINT = ("Press Start (Ctrl+R) in the Training panel: the curves appear here. Red points are held-out "
              "evaluations; the dashed lines are the context-free floor (MLM) and chance (NSP).")
EVAL_METRICS = tuple(name for name in PLOTTED if table_entry(name).heldout)     # drawn as held-out points too
X_AXES = (("step", "Step"), ("tokens_seen", "Tokens seen"), ("elapsed", "Time (s)"))
TRAIN_COLOR = (31, 119, 180)
EVAL_COLOR = (214, 39, 40)
REFERENCE_COLOR = (120, 120, 120)
# metric -> (the eval event's reference field, its label): the line that says "learning happened"
REFERENCES = {"mlm_loss": ("floor_mlm_loss", "context-free floor"),
              "mlm_accuracy": ("floor_mlm_accuracy", "context-free floor"),
              "nsp_accuracy": ("chance_nsp_accuracy", "chance")}


def _value(value) -> float:
    """A metric as a float; NaN (a gap in the curve) for one the run has not got (no pair task)."""
    return math.nan if value is None else float(value)


class PlotsPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("plotsPanel")
        self.train = GrowingColumns(tuple(m for m, _, _ in METRICS) + ("step", "tokens_seen", "elapsed"))
        self.eval = GrowingColumns(EVAL_METRICS + ("step", "tokens_seen", "elapsed"), capacity=64)
        self.last_tokens = 0.0
        self.last_elapsed = 0.0
        self.dirty = False
        self.smoothed = SmoothedCache()

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Smoothing"))
        self.smoothing = QSlider(Qt.Horizontal, objectName="smoothingSlider")
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(60)
        self.smoothing.setMaximumWidth(160)
        self.smoothing.setToolTip("Exponential moving average of the training curves (eval points are not smoothed)")
        controls.addWidget(self.smoothing)
        self.log_scale = QCheckBox("Log scale", objectName="logScaleCheck")
        self.log_scale.setToolTip("Logarithmic y axis for losses and the gradient norm")
        controls.addWidget(self.log_scale)
        controls.addWidget(QLabel("x axis"))
        self.x_axis = QComboBox(objectName="xAxisCombo")
        for key, label in X_AXES:
            self.x_axis.addItem(label, key)
        controls.addWidget(self.x_axis)
        self.more = QCheckBox("More plots", objectName="morePlotsCheck")
        self.more.setChecked(True)
        self.more.setToolTip("NSP loss, learning rate, masking rate, gradient norm and tokens/s, small, below the main curves")
        controls.addWidget(self.more)
        controls.addStretch(1)
        self.readout = QLabel("", objectName="plotReadout")
        controls.addWidget(self.readout)

        self.graphics = pg.GraphicsLayoutWidget()
        palette = self.palette()
        self.graphics.setBackground(palette.base().color().name())  # follows the light or dark system palette
        foreground = palette.text().color().name()
        self.plots: dict[str, pg.PlotItem] = {}
        self.foreground = foreground
        self.absent: set[str] = set()           # metrics the run does not record (no pair task)
        self.absent_notes: dict[str, pg.TextItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.eval_points: dict[str, pg.PlotDataItem] = {}
        small = [m for m, _, _ in METRICS if m not in MAIN]
        self.main_row = self.graphics.addLayout(row=0, col=0)
        self.small_row = self.graphics.addLayout(row=1, col=0)
        for metric, title, _ in METRICS:
            if metric in MAIN:
                plot = self.main_row.addPlot(row=0, col=MAIN.index(metric))
                plot.setMinimumHeight(150)
            else:
                plot = self.small_row.addPlot(row=0, col=small.index(metric))
                plot.setMinimumHeight(80)
            plot.setTitle(title, color=foreground, size="10pt" if metric in MAIN else "8pt")
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setTextPen(foreground)
                plot.getAxis(axis).setPen(foreground)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            self.curves[metric] = plot.plot(pen=pg.mkPen(TRAIN_COLOR, width=1.5), name="train")
            plot.vb.sigXRangeChanged.connect(self._mark_dirty)  # zooming re-cuts the visible stretch
            if metric in EVAL_METRICS:
                self.eval_points[metric] = plot.plot(pen=None, symbol="o", symbolSize=7, symbolBrush=EVAL_COLOR,
                                                     symbolPen=None, name="held-out")
            self.plots[metric] = plot
        self.references: dict[str, pg.InfiniteLine] = {}
        self.reference_values: dict[str, float] = {}
        for metric, (_, label) in REFERENCES.items():
            line = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen(REFERENCE_COLOR, width=1.2, style=Qt.DashLine),
                                   label=label, labelOpts={"position": 0.02, "color": REFERENCE_COLOR,
                                                           "anchors": [(0, 1), (0, 1)]})
            line.setVisible(False)
            self.plots[metric].addItem(line)  # in the bounds: the floor stays in view, so the gap to it shows
            self.references[metric] = line
        grid = self.graphics.ci.layout
        grid.setRowStretchFactor(0, MAIN_HEIGHT)
        grid.setRowStretchFactor(1, SMALL_HEIGHT)
        self.plots["mlm_loss"].addLegend(offset=(-10, 10))
        self.plots["mlm_loss"].legend.addItem(self.curves["mlm_loss"], "train (smoothed)")
        self.plots["mlm_loss"].legend.addItem(self.eval_points["mlm_loss"], "held-out")
        self.graphics.scene().sigMouseMoved.connect(self._hover)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        self.hint = QLabel(EMPTY_HINT, objectName="plotsHint")
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)
        layout.addWidget(self.graphics, 1)

        self.smoothing.valueChanged.connect(self._mark_dirty)
        self.log_scale.toggled.connect(self._apply_log_scale)
        self.more.toggled.connect(self._show_more)
        self.x_axis.currentIndexChanged.connect(self._mark_dirty)
        self.timer = QTimer(self)
        self.timer.setInterval(100)  # 10 Hz: redraws never flood the event loop, whatever the step rate
        self.timer.timeout.connect(self.redraw)
        self.timer.start()

    def _show_more(self, on: bool) -> None:
        self.small_row.setVisible(on)
        self.graphics.ci.layout.setRowStretchFactor(1, SMALL_HEIGHT if on else 0)
        self.graphics.ci.layout.setRowMaximumHeight(1, 1e6 if on else 0)

    # --- data in ---------------------------------------------------------------------------

    def clear(self) -> None:
        self.train.clear()
        self.eval.clear()
        self.reference_values.clear()
        for line in self.references.values():
            line.setVisible(False)
        self.last_tokens = self.last_elapsed = 0.0
        self._mark_dirty()

    def add_event(self, event) -> None:
        if event.type == "step":
            self.last_tokens, self.last_elapsed = float(event.tokens_seen), float(event.elapsed)
            self.train.append({name: _value(getattr(event, name)) for name in self.train.data})
            self.dirty = True
        elif event.type == "eval":
            values = {name: _value(getattr(event, name)) for name in EVAL_METRICS}
            values.update(step=float(event.step), tokens_seen=self.last_tokens, elapsed=self.last_elapsed)
            self.eval.append(values)
            self.set_references({metric: getattr(event, field, 0.0) for metric, (field, _) in REFERENCES.items()})
            self.dirty = True

    def set_references(self, values: dict[str, float]) -> None:
        """Draw the context-free floor (MLM) and chance (pair task) lines; 0 or NaN hides a line."""
        for metric, value in values.items():
            if value and math.isfinite(value):
                self.reference_values[metric] = float(value)
                self._place_reference(metric)

    def _place_reference(self, metric: str) -> None:
        value = self.reference_values.get(metric)
        line = self.references[metric]
        if value is None:
            return
        logged = self.log_scale.isChecked() and dict((m, lg) for m, _, lg in METRICS)[metric]
        line.setValue(math.log10(value) if logged else value)
        line.setVisible(True)

    def load_series(self, series: dict) -> None:
        """Show a recorded run (``all_series`` of the run history: name -> Series): train and eval points."""
        self.clear()
        steps = np.asarray(series["loss"].steps if "loss" in series else [], dtype=float)
        if len(steps):
            columns = {"step": steps}
            for name in self.train.data:
                if name in series and name != "step":
                    lookup = dict(zip(series[name].steps.tolist(), series[name].values.tolist()))
                    columns[name] = np.array([lookup.get(int(s), math.nan) for s in steps])
            self.train.extend(columns)
        eval_steps = np.asarray(series["eval_mlm_loss"].steps if "eval_mlm_loss" in series else [], dtype=float)
        if len(eval_steps):
            columns = {"step": eval_steps}
            for name in EVAL_METRICS:
                if f"eval_{name}" in series:
                    columns[name] = np.asarray(series[f"eval_{name}"].values, dtype=float)
            self.set_references({metric: float(series[f"eval_{field}"].values[-1])
                                 for metric, (field, _) in REFERENCES.items() if f"eval_{field}" in series})
            train_steps = self.train.view("step")
            for axis in ("tokens_seen", "elapsed"):
                column = self.train.view(axis)
                columns[axis] = np.interp(eval_steps, train_steps, column) if len(train_steps) else eval_steps * 0
            self.eval.extend(columns)
        self._mark_dirty()

    def point_count(self, metric: str = "mlm_loss") -> int:
        return self.train.n

    # --- drawing -------------------------------------------------------------------------------

    def _mark_dirty(self, *_) -> None:
        self.dirty = True

    def _apply_log_scale(self, on: bool) -> None:
        for metric, _, loggable in METRICS:
            if loggable:
                self.plots[metric].setLogMode(y=on)
        for metric in self.reference_values:
            self._place_reference(metric)
        self._mark_dirty()

    def redraw(self) -> None:
        if not self.dirty or not self.isVisible():
            return  # hidden plots are not redrawn
        self.dirty = False
        self.hint.setVisible(self.train.n == 0)
        started = time.perf_counter()
        x_key = self.x_axis.currentData()
        weight = self.smoothing.value() / 100.0
        x = self.train.view(x_key)
        for metric, _, _ in METRICS:
            y = self.train.view(metric)
            self._mark_absent(metric, len(y) > 0 and math.isnan(y[-1]) and bool(np.isnan(y).all()))
            if metric in self.absent:
                self.curves[metric].setData([], [])
                continue
            if metric not in ("lr", "masking_rate", "tokens_per_second"):
                y = self.smoothed.get(metric, y, weight)
            # Only the visible stretch, reduced to a peak-keeping envelope: a million points
            # cost a slice and a reshape, and the curve hands pyqtgraph a few thousand.
            low, high = self._visible_slice(metric, x)
            self.curves[metric].setData(*envelope(x[low:high], y[low:high], 2000))
            self.plots[metric].setLabel("bottom", dict(X_AXES)[x_key])
        ex = self.eval.view(x_key)
        for metric in EVAL_METRICS:
            values = self.eval.view(metric)
            keep = ~np.isnan(values)
            self.eval_points[metric].setData(ex[keep], values[keep])
        # Redrawing must not take more than a fifth of the GUI thread's time, however long the run.
        cost_ms = 1000 * (time.perf_counter() - started)
        self.timer.setInterval(int(min(2000, max(100, 5 * cost_ms))))

    def _mark_absent(self, metric: str, absent: bool) -> None:
        """Say so in a plot whose metric the run does not record (a run without a pair task has no NSP)."""
        if absent == (metric in self.absent):
            if absent:
                self.absent_notes[metric].setPos(self.plots[metric].vb.boundingRect().center())   # after a resize
            return
        note = self.absent_notes.get(metric)
        if note is None:
            text = "not recorded: this run has\nno pair task (nsp.objective = none)" if metric.startswith("nsp") \
                else "not recorded in this run"
            note = self.absent_notes[metric] = pg.TextItem(text, color=self.foreground, anchor=(0.5, 0.5))
            note.setParentItem(self.plots[metric].vb)      # in the view's pixels: centred whatever the range
        view = self.plots[metric].vb.boundingRect()
        note.setPos(view.center())
        note.setVisible(absent)
        (self.absent.add if absent else self.absent.discard)(metric)

    def _visible_slice(self, metric: str, x: np.ndarray) -> tuple[int, int]:
        view = self.plots[metric].vb
        if view.autoRangeEnabled()[0] or len(x) == 0:
            return 0, len(x)
        left, right = view.viewRange()[0]
        low = max(0, int(np.searchsorted(x, left)) - 1)
        high = min(len(x), int(np.searchsorted(x, right)) + 1)
        return low, high

    def _hover(self, position) -> None:
        for metric, plot in self.plots.items():
            if plot.sceneBoundingRect().contains(position) and self.train.n:
                x_value = plot.vb.mapSceneToView(position).x()
                xs = self.train.view(self.x_axis.currentData())
                i = int(np.clip(np.searchsorted(xs, x_value), 0, self.train.n - 1))
                label = dict(X_AXES)[self.x_axis.currentData()].lower()
                self.readout.setText(f"{label} {xs[i]:,.0f}   {dict((m, t) for m, t, _ in METRICS)[metric]} "
                                     f"{self.train.view(metric)[i]:.4g}")
                return


if __name__ == "__main__":  # python -m workbench.gui.panels.plots_panel: a preview with a synthetic run
    import sys

    from workbench.gui.standalone import run_alone
    from workbench.train.events import StepMetrics

    def make() -> PlotsPanel:
        panel = PlotsPanel()
        for step in range(1, 2001):
            panel.add_event(StepMetrics(
                step=step, epoch=0, loss=8 * math.exp(-step / 500) + 2, mlm_loss=7 * math.exp(-step / 500) + 1.5,
                nsp_loss=0.69 - 0.3 * step / 2000, mlm_accuracy=0.5 * (1 - math.exp(-step / 400)),
                mlm_accuracy_masked=0, mlm_accuracy_random=0, mlm_accuracy_kept=0,
                nsp_accuracy=0.5 + 0.3 * step / 2000, lr=1e-3 * min(1, step / 100), grad_norm=1.0,
                tokens_per_second=9000 + np.random.rand() * 500, padding_fraction=0.1,
                masking_rate=0.3 - 0.15 * step / 2000, step_time=0.1,
                tokens_seen=step * 3000, elapsed=step * 0.1, progress=step / 2000, eta_seconds=0))
        return panel

    sys.exit(run_alone(make, 1000, 800))
