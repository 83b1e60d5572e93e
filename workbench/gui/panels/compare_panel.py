"""The Compare panel: the runs selected in the Runs panel, overlaid, grouped, tabulated and exported.

* **Curves**: any recorded metric (training or held-out) against step, tokens
  seen, relative time or wall clock; each run one colour (by its id, the same
  in every plot); legend entries name what sets a run apart
  (``masking.probability=0.3``). Smoothing is computed on the full series and
  drawn over the raw curve's faint min/max envelope; log y; "ignore outliers"
  scales y to the 2nd-98th percentiles.
* **Grouping**: runs identical but for their seed (and optionally one more
  chosen setting) are one curve, their mean, with a min-max or ± std band,
  and one table row with the count.
* **Baseline**: pin one run or group; plots can show every curve's
  difference to it, and the table shows deltas.
* **Table**: any setting and any metric's last / best / min / max / held-out
  value, chosen with *Columns…*, sortable.
* **Parallel coordinates**: the settings that differ, then the chosen metric.
* **Export**: the selected runs' series as one tidy CSV, the table as CSV, the
  plot on display as PNG (2,400 px wide) or SVG.

What is compared - the units, their labels, curves and bands, the table - is ``workbench.compare.view``
(no Qt); this panel holds the widgets, reads series on a worker thread (the window never waits for the
database) and draws.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPainterPath
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QDialog, QDoubleSpinBox, QFileDialog,
    QHBoxLayout, QLabel, QMessageBox, QPushButton, QSplitter,
    QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget,
)

from workbench.gui.compare_widgets import BandItem, ColumnsDialog, export_plot
from workbench.gui.curves import band_outline, ema, envelope
from workbench.gui.table_items import NumberItem
from workbench.gui.workers import in_background
from workbench.compare.plot_math import X_AXES, difference_to, parallel_axes, robust_range
from workbench.compare.view import DEFAULT_METRIC, CompareUnit, CompareView
from workbench.metrics import title as metric_title
from workbench.store.statuses import ENDED
from workbench.store.comparison import table_csv, write_tidy_csv

LEGEND_ENTRIES = 24            # a legend of 200 names hides the plot; the table has them all
DRAWN_POINTS = 60_000          # shared by all curves (each an envelope that keeps every peak): 200 runs paint in ~80 ms
BAND_BINS = 400                # a band's edges: one point per bin (see band_outline)
SYNC_UNITS = 8                 # up to this many curves are drawn at once; more are drawn in slices
SLICE_SECONDS = 0.015          # the longest the GUI thread draws before it lets the event loop run


class ComparePanel(QWidget):
    """Longer than the house's ~400 lines for a class, for a reason: its widgets, the read on a worker and
    the redraw in time slices share one state (the choices, the series read, the drawing in progress, which
    a new choice must cancel), and split across classes each would reach into the others. What is compared
    (units, labels, curves, bands, the table) is already out, in ``workbench.compare.view``, without Qt."""

    inspect_requested = Signal(list)        # run ids: the first two shown go to the Inspect panel

    def __init__(self, repository=None, parent=None):
        super().__init__(parent)
        self.setObjectName("comparePanel")
        self.repository = repository
        self.view = CompareView()               # what is compared (runs, units, series, table): no Qt
        self.request = None                     # the read in flight
        self.drawn: dict = {}                   # unit id -> (x, y) as drawn (after baseline difference)
        self._items: dict = {}                  # (unit id, role) -> PlotDataItem, reused across redraws
        self._used: set = set()
        self._drawing = None                    # the redraw in progress (see redraw)
        self._parallel_stale = True             # parallel coordinates wait for their tab to be shown

        self.metric_choice = QComboBox(objectName="compareMetric")
        self.metric_choice.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.axis = QComboBox(objectName="compareAxis")
        for key, label in X_AXES.items():
            self.axis.addItem(label, key)
        self.smoothing = QDoubleSpinBox(objectName="compareSmoothing", decimals=2, minimum=0.0, maximum=0.99,
                                        singleStep=0.05, value=0.6)
        self.smoothing.setToolTip("EMA weight over the full series (the raw min/max envelope is drawn faintly)")
        self.log_y = QCheckBox("log y", objectName="compareLogY")
        self.robust = QCheckBox("ignore outliers", objectName="compareRobust")
        self.robust.setToolTip("Scale y to the 2nd-98th percentile of the points, so early spikes do not flatten "
                               "the curves")
        self.robust.setChecked(True)
        self.group = QComboBox(objectName="compareGroup")
        self.group.setToolTip("Runs identical except for these settings are drawn as one mean curve with a band")
        self.band_kind = QComboBox(objectName="compareBand")
        self.band_kind.addItem("min–max band", "minmax")
        self.band_kind.addItem("± std band", "std")
        self.baseline = QComboBox(objectName="compareBaseline")
        self.baseline.setToolTip("Pin a run (or group): the table shows deltas to it")
        for combo in (self.group, self.baseline):
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(26)
        self.difference = QCheckBox("difference to baseline", objectName="compareDifference")
        self.columns_button = QPushButton("Columns…", objectName="compareColumns")
        self.inspect_button = QPushButton("Inspect…", objectName="compareInspect")
        self.inspect_button.setToolTip("The first two runs in the Inspect panel: heads, words, embeddings, probes "
                                       "side by side")
        self.export_buttons = {}
        for key, label in (("png", "PNG…"), ("svg", "SVG…"), ("series", "Series CSV…"), ("table", "Table CSV…")):
            button = QPushButton(label, objectName=f"compareExport_{key}")
            self.export_buttons[key] = button

        first = QHBoxLayout()
        for label, widget in (("Metric", self.metric_choice), ("x", self.axis), ("smoothing", self.smoothing)):
            first.addWidget(QLabel(label))
            first.addWidget(widget)
        first.addWidget(self.log_y)
        first.addWidget(self.robust)
        first.addStretch(1)
        first.addWidget(QLabel("Export"))
        for button in self.export_buttons.values():
            first.addWidget(button)
        second = QHBoxLayout()
        for label, widget in (("Group", self.group), ("", self.band_kind), ("Baseline", self.baseline)):
            if label:
                second.addWidget(QLabel(label))
            second.addWidget(widget)
        second.addWidget(self.difference)
        second.addStretch(1)
        second.addWidget(self.inspect_button)
        second.addWidget(self.columns_button)

        self.hint = QLabel("Select runs in the Runs panel (Ctrl or Shift for several) to compare them here.",
                           objectName="compareHint")
        self.hint.setWordWrap(True)
        base, text = self.palette().base().color(), self.palette().text().color()   # as the live plots
        self.plot = pg.PlotWidget(objectName="comparePlot", background=base.name())
        for side in ("left", "bottom"):
            self.plot.getAxis(side).setTextPen(text.name())
            self.plot.getAxis(side).setPen(text.name())
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setMinimumHeight(120)
        # top right, off the early part of the curves; on a backing of its own, so it stays legible over them
        self.legend = self.plot.addLegend(offset=(-10, 10), labelTextColor=text.name(),
                                          brush=pg.mkBrush(base.red(), base.green(), base.blue(), 215),
                                          pen=pg.mkPen(text.name(), width=0.5))
        self.parallel = pg.PlotWidget(objectName="parallelPlot", background=base.name())
        self.parallel.hideAxis("left")
        self.parallel.hideAxis("bottom")
        self.parallel.setMouseEnabled(x=False, y=False)
        self.tabs = QTabWidget(objectName="compareTabs")
        self.tabs.addTab(self.plot, "Curves")
        self.tabs.addTab(self.parallel, "Parallel coordinates")
        self.tabs.currentChanged.connect(self._draw_parallel_if_shown)
        self.table = QTableWidget(0, 0, objectName="compareTable")
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSortingEnabled(True)
        self.table.verticalHeader().setVisible(False)
        self.status = QLabel("", objectName="compareStatus")

        splitter = QSplitter(Qt.Vertical)
        splitter.addWidget(self.tabs)
        splitter.addWidget(self.table)
        splitter.setSizes([500, 180])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(first)
        layout.addLayout(second)
        layout.addWidget(self.hint)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)
        self.body = splitter
        self._set_empty(True)

        self.metric_choice.currentIndexChanged.connect(self._reload)
        self.axis.currentIndexChanged.connect(self._reload)
        for widget in (self.smoothing,):
            widget.valueChanged.connect(self.redraw)
        for box in (self.log_y, self.robust, self.difference):
            box.toggled.connect(self.redraw)
        self.group.currentIndexChanged.connect(self._regroup)
        self.band_kind.currentIndexChanged.connect(self.redraw)
        self.baseline.currentIndexChanged.connect(self.redraw)
        self.columns_button.clicked.connect(self._choose_columns)
        self.inspect_button.clicked.connect(lambda: self.inspect_requested.emit([r.id for r in self.view.runs[:2]]))
        self.export_buttons["png"].clicked.connect(lambda: self._export_dialog("png"))
        self.export_buttons["svg"].clicked.connect(lambda: self._export_dialog("svg"))
        self.export_buttons["series"].clicked.connect(lambda: self._export_dialog("series"))
        self.export_buttons["table"].clicked.connect(lambda: self._export_dialog("table"))

    # --- what is compared -------------------------------------------------------------------------------

    def set_repository(self, repository) -> None:
        self.repository = repository
        self.series.clear()

    @property
    def runs(self) -> list:
        return self.view.runs

    @property
    def units(self) -> list[CompareUnit]:
        return self.view.units

    @property
    def series(self) -> dict:
        return self.view.series

    def show_runs(self, runs: list, group_by: str | None = None) -> None:
        """Compare ``runs`` (Run rows). ``group_by``: "seed" to group runs that differ only in their seed
        (what a finished sweep opens with), or a setting key to ignore as well."""
        self.view.set_runs(runs)
        self._set_empty(not self.view.runs)
        self._fill_metrics()
        self._fill_groups(group_by)
        self._regroup()

    def _set_empty(self, empty: bool) -> None:
        self.hint.setVisible(empty)
        self.body.setVisible(not empty)
        for button in (*self.export_buttons.values(), self.columns_button, self.inspect_button):
            button.setEnabled(not empty)

    def _sync(self) -> None:
        """The choices on display, into the view."""
        view = self.view
        view.metric = tuple(self.metric_choice.currentData() or DEFAULT_METRIC)
        view.axis = self.axis.currentData()
        view.group_by = self.group.currentData()
        view.band_kind = self.band_kind.currentData()

    def _fill_metrics(self) -> None:
        """The metric choice: what the runs recorded (read with their series), training then held-out."""
        current = tuple(self.metric_choice.currentData() or DEFAULT_METRIC)
        self.view.metric = current
        self.metric_choice.blockSignals(True)
        self.metric_choice.clear()
        for label, data in self.view.metric_options():
            self.metric_choice.addItem(label, data)
        index = next((i for i in range(self.metric_choice.count())
                      if tuple(self.metric_choice.itemData(i)) == current), 0)
        self.metric_choice.setCurrentIndex(index)
        self.metric_choice.blockSignals(False)

    def differing_keys(self, *ignore) -> list[str]:
        return self.view.differing_keys(*ignore)

    def _fill_groups(self, group_by: str | None) -> None:
        current = group_by if group_by is not None else self.group.currentData()
        self.group.blockSignals(True)
        self.group.clear()
        for label, data in self.view.group_options():
            self.group.addItem(label, data)
        self.group.setCurrentIndex(max(0, self.group.findData(current)))
        self.group.blockSignals(False)

    def _regroup(self) -> None:
        self._sync()
        self.view.regroup()
        current = self.baseline.currentData()
        self.baseline.blockSignals(True)
        self.baseline.clear()
        self.baseline.addItem("no baseline", None)
        for unit in self.units:
            self.baseline.addItem(unit.label, unit.id)
        self.baseline.setCurrentIndex(max(0, self.baseline.findData(current)))
        self.baseline.blockSignals(False)
        self._reload()

    # --- reading ------------------------------------------------------------------------------------------

    def needed(self) -> list[tuple[str, bool]]:
        """The series the plot and the table need (see ``CompareView.needed``)."""
        self._sync()
        return self.view.needed()

    def _reload(self) -> None:
        self._sync()
        if not self.runs or self.repository is None:
            self.redraw()
            return
        missing = self.view.missing()
        if not missing and self.view.names is not None:
            self.redraw()
            return
        request = self.request = (tuple(missing), self.repository)
        name_runs = [run.id for run in self.runs[:5]] if self.view.names is None else []
        self.status.setText(f"reading {len(missing)} series…")
        ended = {run.id for run in self.runs if run.status in ENDED}

        def read():
            from workbench.errors import StoreError

            try:
                names = set()
                for run_id in name_runs:            # the names of a few runs are the names of all
                    names.update(request[1].metric_names(run_id))
                return {key: request[1].series(*key) for key in request[0]}, names if name_runs else None
            except StoreError as exc:
                return str(exc)

        in_background(read, "compare-read", then=lambda result: self._loaded((request, ended), result))

    @property
    def loading(self) -> bool:
        """True while series are read or curves are drawn."""
        return self.request is not None or self._drawing is not None

    def _loaded(self, tagged, result) -> None:
        request, ended = tagged
        if request is not self.request:
            return                                 # read for a selection no longer on display
        self.request = None
        if isinstance(result, str):
            self.status.setText(f"Cannot read the run database: {result}")
            return
        series, names = result
        self.view.take(series, ended)
        self.status.setText("")
        if names is not None:
            self.view.names = names
            self._fill_metrics()
        self.redraw()

    # --- drawing ------------------------------------------------------------------------------------------

    def curve(self, run, metric=None) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of one run's metric on the chosen axis (empty when not read yet)."""
        self._sync()
        return self.view.curve(run, metric)

    def unit_curve(self, unit: CompareUnit) -> dict:
        return self.view.unit_curve(unit)

    def _line(self, key, x, y, pen):
        """A curve item, reused across redraws (removing hundreds of items from a plot takes most of a second)."""
        item = self._items.get(key)
        if item is None:
            item = self._items[key] = pg.PlotDataItem()
            self.plot.addItem(item)
        item.setData(x, y)
        item.setPen(pen)
        item.setVisible(True)
        self._used.add(key)
        return item

    def _band(self, unit: CompareUnit, xs: np.ndarray, ys: np.ndarray, log: bool) -> None:
        """A group's band (the polygon of ``band_outline``), one path item reused across redraws.

        Drawn by hand rather than with pyqtgraph's FillBetweenItem, which rebuilds its path whenever either
        edge curve changes and stays connected to curves it no longer fills."""
        if log:                                     # the view's y is log10 of the values
            with np.errstate(divide="ignore", invalid="ignore"):
                ys = np.where(ys > 0, np.log10(np.where(ys > 0, ys, 1.0)), np.nan)
        keep = np.isfinite(xs) & np.isfinite(ys)
        key = (unit.id, "band")
        item = self._items.get(key)
        if item is None:
            item = self._items[key] = BandItem()
            self.plot.addItem(item)
        path = pg.arrayToQPath(xs[keep], ys[keep]) if keep.sum() >= 3 else QPainterPath()
        path.closeSubpath()
        item.setPath(path)
        item.setBrush(pg.mkBrush((*unit.colour, 45)))
        item.setVisible(True)
        self._used.add(key)

    def redraw(self) -> None:
        """Draw the units. A few are drawn at once; many are drawn in slices of SLICE_SECONDS between event-loop
        turns (200 runs take about a second), so the window keeps answering; a newer redraw replaces one in
        progress."""
        job = self._drawing = self._draw_steps()
        if len(self.units) <= SYNC_UNITS:
            for _ in job:
                pass
            self._drawn()
        else:
            self.plot.setUpdatesEnabled(False)      # one paint at the end, not one per slice
            self.status.setText(f"drawing {len(self.units)} curves…")
            self._continue(job)

    def _continue(self, job) -> None:
        if job is not self._drawing:
            return                                  # replaced by a newer redraw
        deadline = time.perf_counter() + SLICE_SECONDS
        for _ in job:
            if time.perf_counter() > deadline:
                QTimer.singleShot(0, lambda: self._continue(job))
                return
        self._drawn()

    def _drawn(self) -> None:
        self._drawing = None
        self.plot.setUpdatesEnabled(True)

    def _draw_steps(self):
        """The redraw, one unit per step (a generator: see redraw)."""
        self._used = set()
        self.legend.clear()
        self.drawn = {}
        if self.request is None and len(self.units) <= SYNC_UNITS:
            self.status.setText("")
        if not self.units:
            self._hide_unused()
            self._fill_table()
            self._parallel_stale = True
            self._draw_parallel_if_shown()
            return
        axis = self.axis.currentData()
        if (axis == "wall") != isinstance(self.plot.getAxis("bottom"), pg.DateAxisItem):
            self.plot.setAxisItems({"bottom": pg.DateAxisItem() if axis == "wall" else pg.AxisItem("bottom")})
        self.plot.setLabel("bottom", X_AXES[axis])
        name, is_eval = tuple(self.metric_choice.currentData() or DEFAULT_METRIC)
        baseline_id = self.baseline.currentData()
        difference = self.difference.isChecked() and baseline_id is not None
        self.plot.setLabel("left", ("Δ " if difference else "") + metric_title(("eval_" if is_eval else "") + name))
        self.plot.setLogMode(y=self.log_y.isChecked() and not difference)
        self.plot.disableAutoRange()                # the range is set once, at the end
        base = next((self.unit_curve(unit) for unit in self.units if unit.id == baseline_id), None)
        weight = self.smoothing.value()
        bins = max(100, min(1500, DRAWN_POINTS // (2 * len(self.units) * (2 if weight > 0 else 1))))
        shown = []
        for unit in self.units:
            yield
            c = self.unit_curve(unit)
            x, y = c["x"], c["y"]
            if len(x) == 0:
                continue
            offset = (lambda v: difference_to(base["x"], base["y"], x, v)) if difference else (lambda v: v)
            colour = unit.colour
            if unit.is_group:
                self._band(unit, *band_outline(x, offset(c["low"]), offset(c["high"]), min(bins, BAND_BINS)),
                           log=self.log_y.isChecked() and not difference)
            raw = offset(y)
            if weight > 0 and len(raw) > 2:
                self._line((unit.id, "raw"), *envelope(x, raw, bins), pg.mkPen((*colour, 70), width=1))
                finite = np.nan_to_num(raw, nan=np.nanmean(raw) if np.isfinite(raw).any() else 0.0)
                smooth = ema(finite, weight)
            else:
                smooth = raw
            line = self._line((unit.id, "line"), *envelope(x, smooth, bins),
                              pg.mkPen(colour, width=2.5 if unit.id == baseline_id else 1.6))
            if len(self.legend.items) < LEGEND_ENTRIES:
                self.legend.addItem(line, unit.label + ("  ◆ baseline" if unit.id == baseline_id else ""))
            self.drawn[unit.id] = (x, raw)
            shown.append(raw)
        yield
        self._hide_unused()
        yield
        if self.robust.isChecked() and shown:
            if self.log_y.isChecked() and not difference:     # the view's y is log10 of the values
                shown = [np.log10(v[v > 0]) for v in shown]
            span = robust_range(shown)
            if span:
                self.plot.setYRange(*span, padding=0)
        else:
            self.plot.enableAutoRange(axis="y")
        self.plot.enableAutoRange(axis="x")
        hidden = len(self.drawn) - len(self.legend.items)
        self.status.setText(f"The legend names the first {LEGEND_ENTRIES} of {len(self.drawn)} curves; the table "
                            f"lists them all in their colours." if hidden > 0 else "")
        yield
        self._fill_table()
        self._parallel_stale = True
        self._draw_parallel_if_shown()

    def _draw_parallel_if_shown(self) -> None:
        """Parallel coordinates are drawn when their tab is on display (and again only after a change)."""
        if self._parallel_stale and self.tabs.currentWidget() is self.parallel:
            self._parallel_stale = False
            self._draw_parallel()

    def _hide_unused(self) -> None:
        for key, item in self._items.items():
            if key not in self._used and item.isVisible():
                if isinstance(item, BandItem):
                    item.setPath(QPainterPath())
                else:
                    item.setData([], [])
                item.setVisible(False)

    # --- the table ---------------------------------------------------------------------------------------------

    def available_columns(self) -> list[str]:
        return self.view.available_columns()

    def table_columns(self) -> list[str]:
        self._sync()
        return self.view.table_columns()

    def _choose_columns(self) -> None:
        dialog = ColumnsDialog(self.available_columns(), self.table_columns(), self)
        if dialog.exec() == QDialog.Accepted:
            self.set_columns(dialog.chosen())

    def set_columns(self, columns: list[str] | None) -> None:
        self.view.columns = columns
        self._reload()

    def table_rows(self) -> tuple[list[str], list[list]]:
        """The header and rows of the table as plain values (what *Table CSV* writes)."""
        self._sync()
        return self.view.table_rows()

    def _fill_table(self) -> None:
        header, rows = self.table_rows()
        baseline_id = self.baseline.currentData()
        base_row = next((row for unit, row in zip(self.units, rows) if unit.id == baseline_id), None)
        self.table.setSortingEnabled(False)
        self.table.clear()
        self.table.setColumnCount(len(header))
        self.table.setHorizontalHeaderLabels(header)
        self.table.setRowCount(len(rows))
        for r, (unit, row) in enumerate(zip(self.units, rows)):
            for c, value in enumerate(row):
                if isinstance(value, float):
                    text = f"{value:.4g}"
                    if base_row is not None and isinstance(base_row[c], float) and unit.id != baseline_id:
                        text += f"  (Δ {value - base_row[c]:+.3g})"
                    item = NumberItem(value, text)
                elif isinstance(value, (int, bool)) or value is None:
                    item = NumberItem(value if isinstance(value, (int, float)) else None,
                                      "" if value is None else json.dumps(value))
                else:
                    item = QTableWidgetItem(value if isinstance(value, str) else json.dumps(value))
                if c == 0:
                    item.setForeground(pg.mkColor(unit.colour))
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()

    # --- parallel coordinates ------------------------------------------------------------------------------------

    def _draw_parallel(self) -> None:
        self.parallel.clear()
        name, is_eval = tuple(self.metric_choice.currentData() or DEFAULT_METRIC)
        metric = f"eval_{name}" if is_eval else name
        keys = self.view.differing_keys(self.view.grouped_over())[:8]   # a group's seeds (and grouped-over key): no axis
        if not self.units or not keys:
            text = pg.TextItem("Parallel coordinates need runs whose settings differ.", anchor=(0.5, 0.5))
            self.parallel.addItem(text)
            text.setPos(0.5, 0.5)
            return
        rows = []
        for unit in self.units:
            row = {key: self.view.unit_value(unit, key) for key in keys}
            row[f"{metric} (last)"] = self.view.unit_value(unit, f"{metric}:last")
            rows.append(row)
        axes = parallel_axes(rows, keys + [f"{metric} (last)"])
        for i, axis in enumerate(axes):
            self.parallel.plot([i, i], [0, 1], pen=pg.mkPen((128, 128, 128), width=1))
            title = pg.TextItem(axis["key"], anchor=(0.5, 0), color=(60, 60, 60))
            title.setPos(i, 1.04)                   # under the axis (y grows downwards here)
            self.parallel.addItem(title)
            for position, label in axis["labels"]:
                last = i == len(axes) - 1           # the metric's labels go right of its axis, off the lines
                tick = pg.TextItem(label, anchor=(-0.1, 0.5) if last else (1.05, 0.5), color=(90, 90, 90))
                tick.setPos(i, position)
                self.parallel.addItem(tick)
        for u, unit in enumerate(self.units):
            points = [(i, axis["positions"][u]) for i, axis in enumerate(axes) if axis["positions"][u] is not None]
            if len(points) >= 2:
                xs, ys = zip(*points)
                self.parallel.plot(list(xs), list(ys), pen=pg.mkPen(unit.colour, width=2))
        self.parallel.setXRange(-0.6, len(axes) - 0.4, padding=0)
        self.parallel.setYRange(-0.06, 1.16, padding=0)
        self.parallel.getViewBox().invertY(True)

    # --- export ----------------------------------------------------------------------------------------------------

    def _export_dialog(self, kind: str) -> None:
        filters = {"png": "PNG image (*.png)", "svg": "SVG drawing (*.svg)", "series": "CSV (*.csv)",
                   "table": "CSV (*.csv)"}
        suffix = {"png": ".png", "svg": ".svg", "series": ".csv", "table": ".csv"}[kind]
        path, _ = QFileDialog.getSaveFileName(self, "Export", f"compare{suffix}", filters[kind])
        if not path:
            return
        try:
            self.export(kind, path)
        except OSError as exc:
            QMessageBox.warning(self, "Export", f"Cannot write {path}: {exc.strerror or exc}")

    def export(self, kind: str, path: str) -> None:
        """Write the plot on display (png at 2,400 px wide, svg), the selected runs' series (tidy CSV) or the
        table (CSV) to ``path``; OSError when it cannot be written."""
        if kind in ("png", "svg"):
            export_plot(self.tabs.currentWidget(), kind, path,
                        f"Pre-training Workbench: {self.tabs.tabText(self.tabs.currentIndex())}")
        elif kind == "series":
            write_tidy_csv(self.repository, self.runs, self.differing_keys(), path)
        else:
            header, rows = self.table_rows()
            with open(path, "w", encoding="utf-8", newline="") as out:
                out.write(table_csv(header, [["" if v is None else v for v in row] for row in rows]))


if __name__ == "__main__":
    import sys

    from workbench.gui.standalone import run_alone

    def make() -> ComparePanel:
        from workbench.store.repository import RunRepository

        repository = RunRepository(sys.argv[1] if len(sys.argv) > 1 else None)
        panel = ComparePanel(repository)
        panel.show_runs(repository.list_runs()[:12])
        return panel

    sys.exit(run_alone(make, 1200, 800))
