"""The sweep dialog: settings to vary over the window's current config, with their values, and seeds.

Values are comma-separated, each read as TOML (``0.15, 0.3``; ``nsp, sop``;
``true, false``). The dialog says how many runs that makes, and refuses a
sweep whose runs would not validate, naming the setting.
"""

from __future__ import annotations

import tomllib

from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QFormLayout, QGridLayout, QLabel, QLineEdit, QMessageBox, QVBoxLayout,
)

from workbench.config import WorkbenchConfig, allowed_text
from workbench.errors import WorkbenchError
from workbench.store.comparison import flat_config

ROWS = 3


def parse_values(text: str) -> list:
    """``"0.15, 0.3"`` -> [0.15, 0.3]; a piece that is not a TOML value is taken as a string."""
    values = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        try:
            values.append(tomllib.loads(f"v = {piece}")["v"])
        except tomllib.TOMLDecodeError:
            values.append(piece)
    return values


class SweepDialog(QDialog):
    def __init__(self, base: WorkbenchConfig, example: dict | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("New sweep")
        self.setObjectName("sweepDialog")
        self.base = base
        self.spec = None
        self.large = None     # the LargeSweep error while the sweep needs confirming
        keys = [key for key in flat_config(base.to_dict()) if key not in ("train.seed", "train.name",
                                                                          "train.output_dir", "data.dataset")]
        from workbench.sweeps import EXAMPLES

        self.example = QComboBox(objectName="sweepExample")
        self.example.addItem("—", None)
        for key, value in EXAMPLES.items():
            self.example.addItem(value["name"], key)
        self.example.setToolTip("Fill the dialog with one of the built-in sweeps, then edit it")
        self.example.currentIndexChanged.connect(
            lambda: self.example.currentData() and self.fill(EXAMPLES[self.example.currentData()]))
        self.name = QLineEdit("sweep", objectName="sweepName")
        self.keys: list[QComboBox] = []
        self.values: list[QLineEdit] = []
        grid = QGridLayout()
        grid.addWidget(QLabel("Setting"), 0, 0)
        grid.addWidget(QLabel("Values (comma-separated)"), 0, 1)
        for row in range(ROWS):
            combo = QComboBox(objectName=f"sweepKey{row}")
            combo.addItem("—", None)
            for key in keys:
                combo.addItem(key, key)
            values = QLineEdit(objectName=f"sweepValues{row}")
            values.setPlaceholderText("e.g. 0.15, 0.3, 0.4")
            grid.addWidget(combo, row + 1, 0)
            grid.addWidget(values, row + 1, 1)
            self.keys.append(combo)
            self.values.append(values)
            combo.currentIndexChanged.connect(lambda _, combo=combo, values=values: self._show_allowed(combo, values))
            combo.currentIndexChanged.connect(self._update)
            values.textChanged.connect(self._update)
        self.seeds = QLineEdit(str(base.train.seed), objectName="sweepSeeds")
        self.seeds.setToolTip("Each combination runs once per seed; runs differing only in seed are grouped")
        self.summary = QLabel("", objectName="sweepSummary")
        self.summary.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Start from", self.example)
        form.addRow("Name", self.name)
        form.addRow("Seeds", self.seeds)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.button(QDialogButtonBox.Ok).setText("Queue and start")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.seeds.textChanged.connect(self._update)
        self.name.textChanged.connect(self._update)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Runs one after another on this machine, each a normal run tagged with the sweep; "
                                "the queue survives a restart (Run → Continue a sweep)."))
        layout.addLayout(form)
        layout.addLayout(grid)
        layout.addWidget(self.summary)
        layout.addWidget(self.buttons)
        if example:
            self.fill(example)
        self._update()
        self.resize(640, 320)

    @staticmethod
    def _show_allowed(combo: QComboBox, values: QLineEdit) -> None:
        """The chosen setting's declared choices or bounds, as the value field's hint."""
        key = combo.currentData()
        allowed = allowed_text(key) if key else ""
        values.setPlaceholderText(f"in {allowed}" if allowed and allowed[0] in "[(" else allowed or
                                  "e.g. 0.15, 0.3, 0.4")
        values.setToolTip(f"{key}: {allowed}" if allowed else "")

    def fill(self, example: dict) -> None:
        self.name.setText(example.get("name", "sweep"))
        grid = list(example.get("grid", {}).items())[:ROWS]
        for row in range(ROWS):
            key, values = grid[row] if row < len(grid) else (None, [])
            self.keys[row].setCurrentIndex(max(0, self.keys[row].findData(key)))
            self.values[row].setText(", ".join(str(v) for v in values))
        self.seeds.setText(", ".join(str(s) for s in example.get("seeds", [self.base.train.seed])))
        self.fixed = dict(example.get("set", {}))

    def raw(self) -> dict:
        grid = {}
        for combo, values in zip(self.keys, self.values):
            if combo.currentData() is not None:
                grid[combo.currentData()] = parse_values(values.text())
        return {"name": self.name.text().strip() or "sweep", "grid": grid,
                "seeds": parse_values(self.seeds.text()), "set": getattr(self, "fixed", {})}

    def _update(self) -> None:
        from workbench.sweeps import LargeSweep, sweep_from_dict

        ok = self.buttons.button(QDialogButtonBox.Ok)
        self.spec, self.large = None, None
        try:
            raw = self.raw()
            if not raw["grid"]:
                raise WorkbenchError("choose a setting and its values")
            spec = sweep_from_dict(raw, source="sweep", base=self.base)
        except LargeSweep as exc:      # validated when confirmed: checking thousands of runs per keystroke is slow
            self.large = exc
            self.summary.setText(f"<span style='color:#9a6700'>{exc.runs:,} runs: you will be asked to confirm "
                                 f"before they are queued.</span>")
            ok.setEnabled(True)
            return
        except WorkbenchError as exc:
            self.summary.setText(f"<span style='color:#b03a2e'>{exc}</span>")
            ok.setEnabled(False)
            return
        self.spec = spec
        self.summary.setText(f"{spec.run_count} runs varying {', '.join(spec.swept)}{spec.budget_text()}.")
        ok.setEnabled(True)

    def accept(self) -> None:
        """A sweep of more than ``CONFIRM_RUNS`` runs is queued only after a question."""
        from workbench.sweeps import sweep_from_dict

        if self.large is not None:
            answer = QMessageBox.question(self, "Queue a large sweep?", f"{self.large}.\n\nQueue them all?",
                                          QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
            if answer != QMessageBox.Yes:
                return
            try:
                self.spec = sweep_from_dict(self.raw(), source="sweep", base=self.base, confirmed=True)
            except WorkbenchError as exc:
                self.large = None
                self.summary.setText(f"<span style='color:#b03a2e'>{exc}</span>")
                self.buttons.button(QDialogButtonBox.Ok).setEnabled(False)
                return
        super().accept()
