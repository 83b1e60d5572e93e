"""Probe: ask the loaded checkpoint to fill [MASK] tokens, and whether one sentence follows another.

Every pass (and loading a checkpoint from "Open checkpoint…") runs on a worker thread (``in_background``);
the answer is shown when it arrives. A question asked while one is being answered replaces it: only the
newest answer is shown.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QSpinBox, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget,
)

from workbench.gui.workers import in_background


class ProbePanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("probePanel")
        self.model = None
        self.pair_task = True
        self.tokenizer = None
        self.asked = 0                # the newest question's number: older answers are dropped
        self.pending = 0              # questions not answered yet
        self.predictions: list = []   # the last fill-mask answer
        self.probability: float | None = None   # the last P(IsNext)

        self.source = QLabel("No model loaded: finish a run, or pick one in the Runs panel (Use model).",
                             objectName="probeSource")
        self.source.setWordWrap(True)
        load = QPushButton("Open checkpoint…", objectName="openCheckpointButton")
        load.setToolTip("A checkpoint or run directory, or an exported Hugging Face model directory")
        head = QHBoxLayout()
        head.addWidget(self.source, 1)
        head.addWidget(load)

        self.text = QLineEdit("The function returns a [MASK] of the items.", objectName="fillMaskInput")
        self.top_k = QSpinBox(objectName="topK")
        self.top_k.setRange(1, 50)
        self.top_k.setValue(5)
        fill = QPushButton("Fill [MASK]", objectName="fillMaskButton")
        fill_row = QHBoxLayout()
        fill_row.addWidget(self.text, 1)
        fill_row.addWidget(QLabel("top"))
        fill_row.addWidget(self.top_k)
        fill_row.addWidget(fill)
        self.results = QTableWidget(0, 3, objectName="fillMaskResults")
        self.results.setHorizontalHeaderLabels(["[MASK]", "token", "probability"])
        self.results.horizontalHeader().setStretchLastSection(True)
        self.results.verticalHeader().setVisible(False)
        mask_box = QGroupBox("Masked language model")
        mask_layout = QVBoxLayout(mask_box)
        mask_layout.addLayout(fill_row)
        mask_layout.addWidget(self.results)

        self.first = QLineEdit("The file is opened for reading.", objectName="nspFirst")
        self.second = QLineEdit("Its contents are returned as a string.", objectName="nspSecond")
        ask = QPushButton("Is B the next sentence?", objectName="nspButton")
        self.nsp_bar = QProgressBar(objectName="nspProbability")
        self.nsp_bar.setRange(0, 1000)
        self.nsp_bar.setFormat("P(IsNext)")
        nsp_box = QGroupBox("Next sentence prediction")
        nsp_layout = QVBoxLayout(nsp_box)
        nsp_layout.addWidget(QLabel("Sentence A"))
        nsp_layout.addWidget(self.first)
        nsp_layout.addWidget(QLabel("Sentence B"))
        nsp_layout.addWidget(self.second)
        nsp_layout.addWidget(ask)
        nsp_layout.addWidget(self.nsp_bar)

        self.message = QLabel("", objectName="probeMessage")
        self.message.setStyleSheet("color: #c0392b;")
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(mask_box, 1)
        layout.addWidget(nsp_box)
        layout.addWidget(self.message)

        load.clicked.connect(self._open)
        fill.clicked.connect(self.fill_mask)
        self.text.returnPressed.connect(self.fill_mask)
        ask.clicked.connect(self.ask_nsp)

    def set_model(self, model, tokenizer, description: str, pair_task: bool = True) -> None:
        """Probe ``model``; ``pair_task`` False for one trained without a pair task, whose NSP head is untrained."""
        self.model, self.tokenizer, self.pair_task = model, tokenizer, pair_task
        self.source.setText(f"Model: {description}")
        self.message.setText("")
        self.nsp_bar.setValue(0)
        self.nsp_bar.setFormat("P(IsNext)" if pair_task else "no pair task was trained")

    def _open(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open checkpoint, run or exported model")
        if path:
            self.load_path(path)

    def load_path(self, path: str) -> None:
        from workbench.interop.huggingface import load_for_inference

        self.message.setText("loading…")
        in_background(lambda: load_for_inference(path), "probe-load",
                      then=lambda loaded: self.set_model(loaded[0], loaded[1], path,
                                                         pair_task=loaded[2] is None or loaded[2].nsp.pair_task),
                      failed=self.message.setText)

    def _ask(self, compute, show) -> None:
        """``compute()`` on a worker, then ``show(answer)`` here, if no newer question was asked meanwhile."""
        self.asked += 1
        self.pending += 1
        number, model = self.asked, self.model

        def answered(answer) -> None:
            self.pending -= 1
            if number == self.asked and model is self.model:
                show(answer)

        def refused(message: str) -> None:       # e.g. longer than the model's positions
            self.pending -= 1
            if number == self.asked:
                self.message.setText(message)

        in_background(compute, "probe", then=answered, failed=refused)

    @property
    def busy(self) -> bool:
        return self.pending > 0

    def fill_mask(self) -> None:
        """Ask for the top fillers of every [MASK] in the text (the table fills when they arrive)."""
        from workbench.model.probe import fill_mask

        if self.model is None:
            self.message.setText("Load a model first.")
            return
        if "[MASK]" not in self.text.text():
            self.message.setText("Write [MASK] where the model should guess a token.")
            return
        model, tokenizer, text, k = self.model, self.tokenizer, self.text.text(), self.top_k.value()
        self._ask(lambda: fill_mask(model, tokenizer, text, k), self._show_predictions)

    def _show_predictions(self, predictions) -> None:
        self.predictions = predictions
        rows = [(n + 1, token, p) for n, prediction in enumerate(predictions) for token, p in prediction.candidates]
        self.results.setRowCount(len(rows))
        for row, (mask, token, probability) in enumerate(rows):
            self.results.setItem(row, 0, QTableWidgetItem(str(mask)))
            self.results.setItem(row, 1, QTableWidgetItem(token))
            item = QTableWidgetItem(f"{probability:.2%}")
            item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            self.results.setItem(row, 2, item)
        self.message.setText("")

    def ask_nsp(self) -> None:
        """Ask whether sentence B follows sentence A (the bar shows P(IsNext) when it arrives)."""
        from workbench.model.probe import nsp_probability

        if self.model is None:
            self.message.setText("Load a model first.")
            return
        if not self.pair_task:
            self.message.setText("This model was trained without a pair task (nsp.objective = none): its NSP "
                                 "head never learned, so it has nothing to say about these sentences.")
            return
        model, tokenizer, first, second = self.model, self.tokenizer, self.first.text(), self.second.text()
        self._ask(lambda: nsp_probability(model, tokenizer, first, second), self._show_probability)

    def _show_probability(self, probability: float) -> None:
        self.probability = probability
        self.nsp_bar.setValue(int(probability * 1000))
        self.nsp_bar.setFormat(f"P(IsNext) = {probability:.1%}  →  {'IsNext' if probability >= 0.5 else 'NotNext'}")
        self.message.setText("")


if __name__ == "__main__":  # python -m workbench.gui.panels.probe_panel [RUN_OR_CHECKPOINT_OR_EXPORT]
    import sys

    from workbench.gui.standalone import run_alone

    def make() -> ProbePanel:
        panel = ProbePanel()
        if len(sys.argv) > 1:
            panel.load_path(sys.argv[1])           # a failure is shown in the panel
        return panel

    sys.exit(run_alone(make, 700, 500))
