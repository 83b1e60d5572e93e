"""Fine-tune panel: does pre-training help? Both arms' held-out accuracy on one plot, and the gap at the end.

The panel only lays out and forwards: the window runs ``workbench.train.finetune.compare_arms`` on a
worker thread (``FinetuneWorker``) and hands each held-out point to ``add_point`` and the result to
``show_result``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
    QPushButton, QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

if TYPE_CHECKING:
    from workbench.services.finetune_run import FinetuneOutcome, FinetuneRequest

ARM_COLORS = {"pretrained": (214, 39, 40), "scratch": (31, 119, 180), "frozen": (44, 160, 44)}
# What the data field shows for each built-in task, and what it asks for.
BUILTIN_LABELS = {"built-in: word order (as written or two words swapped)": "builtin:word-order",
                  "built-in: standard-library docstrings by package": "builtin:package"}
BUILTIN_LABEL = next(iter(BUILTIN_LABELS))


class FinetunePanel(QWidget):
    start_requested = Signal(object)     # a FinetuneRequest
    stop_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("finetunePanel")
        self.curves: dict[tuple[str, int], pg.PlotDataItem] = {}
        self.points: dict[tuple[str, int], tuple[list, list]] = {}

        self.source = QLineEdit(objectName="finetuneSource")
        self.source.setPlaceholderText("a pre-training run folder (the latest run is filled in)")
        self.data = QLineEdit(BUILTIN_LABEL, objectName="finetuneData")
        self.data.setCursorPosition(0)
        self.data.setToolTip("A labelled .csv, .tsv or .jsonl file (text, optional second text, label), "
                             "or the built-in task")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        builtin = QComboBox(objectName="finetuneBuiltin")
        builtin.addItem("Built-in task…")
        builtin.addItems(list(BUILTIN_LABELS))
        builtin.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        builtin.setMinimumContentsLength(12)       # the list itself shows the full names
        builtin.setToolTip("Word order: needs a model that knows how text is ordered (pre-training shows here).\n"
                           "Package: a topic task that keywords solve (a model from scratch learns it too).")
        builtin.activated.connect(lambda i: (self.data.setText(builtin.itemText(i)), self.data.setCursorPosition(0),
                                             builtin.setCurrentIndex(0)) if i > 0 else None)
        data_row = QHBoxLayout()
        data_row.addWidget(self.data, 1)
        data_row.addWidget(browse)
        data_row.addWidget(builtin)
        self.steps = QSpinBox(objectName="finetuneSteps")
        self.steps.setRange(1, 1_000_000)
        self.steps.setValue(300)
        self.learning_rate = QDoubleSpinBox(objectName="finetuneLearningRate")
        self.learning_rate.setDecimals(5)
        self.learning_rate.setRange(0.00001, 0.5)
        self.learning_rate.setSingleStep(0.0001)
        self.learning_rate.setValue(0.001)
        self.batch_size = QSpinBox(objectName="finetuneBatchSize")
        self.batch_size.setRange(1, 4096)
        self.batch_size.setValue(32)
        self.seeds = QLineEdit("0,1,2", objectName="finetuneSeeds")
        self.frozen = QCheckBox("also the frozen pre-trained encoder (only the head trained)")
        form = QFormLayout()
        form.addRow("Pre-trained run", self.source)
        form.addRow("Labelled data", data_row)
        form.addRow("Steps per arm", self.steps)
        form.addRow("Learning rate", self.learning_rate)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Seeds", self.seeds)
        form.addRow("", self.frozen)

        self.start_button = QPushButton("Fine-tune both arms", objectName="finetuneStart")
        self.start_button.setToolTip("Fine-tune the pre-trained encoder and the same model from fresh weights, "
                                     "with identical data order, seeds and budget")
        self.stop_button = QPushButton("Stop", objectName="finetuneStop")
        self.stop_button.setEnabled(False)
        self.start_button.clicked.connect(self._start)
        self.stop_button.clicked.connect(self.stop_requested.emit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        self.status = QLabel("Pre-train a run, then fine-tune it and the same model from scratch to see what "
                             "pre-training is worth.", objectName="finetuneStatus")
        self.status.setWordWrap(True)

        self.plot = pg.PlotWidget(objectName="finetunePlot")
        self.plot.setLabel("left", "held-out accuracy")
        self.plot.getAxis("left").enableAutoSIPrefix(False)      # accuracy is a share, never "x0.001"
        self.plot.setLabel("bottom", "fine-tuning step")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.addLegend(offset=(-10, 10))
        self.plot.setMinimumHeight(150)
        self.results = QTableWidget(0, 3, objectName="finetuneResults")
        self.results.setHorizontalHeaderLabels(["arm", "accuracy (mean ± std)", "macro-F1 (mean ± std)"])
        self.results.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.results.horizontalHeader().setStretchLastSection(True)
        self.results.verticalHeader().setVisible(False)
        self.results.setMaximumHeight(110)
        self.gain = QLabel("", objectName="finetuneGain")
        self.gain.setWordWrap(True)

        # A wide, short dock: the form on the left, the curves and the results beside it.
        settings = QVBoxLayout()
        settings.addLayout(form)
        settings.addLayout(buttons)
        settings.addWidget(self.status)
        settings.addStretch(1)
        left = QWidget()
        left.setLayout(settings)
        left.setMaximumWidth(560)
        outcome = QVBoxLayout()
        outcome.addWidget(self.plot, 1)
        outcome.addWidget(self.results)
        outcome.addWidget(self.gain)
        layout = QHBoxLayout(self)
        layout.addWidget(left, 2)
        layout.addLayout(outcome, 3)

    # --- in ------------------------------------------------------------------------------------

    def set_source(self, run_dir: str) -> None:
        self.source.setText(run_dir)

    def request(self) -> FinetuneRequest:
        """What the form asks for, typed (the CLI's ``finetune`` builds the same); raises ValueError with a
        message for a person."""
        from workbench.errors import ConfigError
        from workbench.services.finetune_run import FinetuneRequest
        from workbench.train.finetune import FinetuneConfig

        try:
            seeds = tuple(int(s) for s in self.seeds.text().split(",") if s.strip())
        except ValueError:
            raise ValueError(f"Seeds must be comma-separated whole numbers, got {self.seeds.text()!r}") from None
        if not seeds or any(s < 0 for s in seeds):
            raise ValueError("Give at least one non-negative seed")
        if not self.source.text().strip():
            raise ValueError("Choose the pre-training run to fine-tune (train one first)")
        data = self.data.text().strip()
        config = FinetuneConfig(steps=self.steps.value(), learning_rate=self.learning_rate.value(),
                                batch_size=self.batch_size.value(), seeds=seeds, frozen_arm=self.frozen.isChecked())
        try:
            config.validate()
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return FinetuneRequest(self.source.text().strip(), BUILTIN_LABELS.get(data, data), config)

    def _start(self) -> None:
        try:
            request = self.request()
        except ValueError as exc:
            self.status.setText(str(exc))
            return
        self.start_requested.emit(request)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Labelled data", "", "Labelled data (*.csv *.tsv *.jsonl)")
        if path:
            self.data.setText(path)

    def set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        if running:
            self.plot.clear()
            self.plot.addLegend(offset=(-10, 10))
            self.curves.clear()
            self.points.clear()
            self.results.setRowCount(0)
            self.gain.setText("")
            self.status.setText("fine-tuning…")

    def add_point(self, arm: str, seed: int, step: int, accuracy: float) -> None:
        key = (arm, seed)
        steps, values = self.points.setdefault(key, ([], []))
        steps.append(step)
        values.append(accuracy)
        if key not in self.curves:
            first_of_arm = not any(a == arm for a, _ in self.curves)
            self.curves[key] = self.plot.plot(pen=pg.mkPen(ARM_COLORS.get(arm, (120, 120, 120)), width=1.5),
                                              name=arm if first_of_arm else None)
        self.curves[key].setData(steps, values)
        self.status.setText(f"{arm}, seed {seed}: step {step}, held-out accuracy {accuracy:.3f}")

    def show_result(self, outcome: FinetuneOutcome) -> None:
        summary, recorded_run = outcome.summary, outcome.recorded_run
        arms = [arm for arm in ("pretrained", "scratch", "frozen") if arm in summary]
        self.results.setRowCount(len(arms))
        for row, arm in enumerate(arms):
            s = summary[arm]
            for column, text in enumerate((arm, f"{s['accuracy']:.3f} ± {s['accuracy_std']:.3f}",
                                           f"{s['macro_f1']:.3f} ± {s['macro_f1_std']:.3f}")):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemIsEditable)
                self.results.setItem(row, column, item)
        gain = summary.get("gain_points")
        if gain:
            self.gain.setText(f"Pre-training gain: {gain['accuracy']:+.1f} ± {gain['accuracy_std']:.1f} accuracy "
                              f"points over {len(gain['per_seed'])} seed(s)"
                              + (f" (recorded as run {recorded_run})" if recorded_run is not None else ""))
        self.status.setText("done")


if __name__ == "__main__":  # python -m workbench.gui.panels.finetune_panel: the panel on its own
    import sys

    from workbench.gui.standalone import run_alone

    sys.exit(run_alone(FinetunePanel, 1100, 600))
