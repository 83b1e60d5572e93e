"""Training: the run's settings, validated as you type, and Start / Pause / Resume / Stop.

The form edits a ``WorkbenchConfig`` - the same object the TOML file holds and
the database stores - and validates it with the same code as the CLI, so a
message here reads exactly as ``pretrain-workbench train`` would print it.
The panel only lays out and forwards: the window owns the training thread.
"""

from __future__ import annotations

import copy
import shlex

from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
    QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from workbench.formatting import duration
from workbench.config import MODEL_PRESETS, WorkbenchConfig, dumps_toml
from workbench.errors import ConfigError

# (section, key, label, widget kind, extra): the settings a person changes most; every other
# setting keeps its value from the loaded config ("new run from this config" keeps them all).
FIELDS = (
    ("model", "architecture", "Architecture", "combo", ("modernbert", "bert")),
    ("model", "preset", "Model size", "combo", tuple(MODEL_PRESETS) + ("custom",)),
    ("model", "num_hidden_layers", "  layers", "int", (0, 96)),
    ("model", "hidden_size", "  hidden size", "int", (0, 16_384)),
    ("model", "num_attention_heads", "  attention heads", "int", (0, 256)),
    ("model", "intermediate_size", "  feed-forward size", "int", (0, 65_536)),
    ("train", "max_steps", "Steps (0 = no limit)", "int", (0, 10_000_000)),
    ("train", "max_minutes", "Time budget (min, 0 = none)", "float", (0.0, 100_000.0, 1)),
    ("train", "batch_size", "Batch size", "int", (1, 65_536)),
    ("train", "learning_rate", "Learning rate", "float", (0.0, 0.999, 6)),
    ("train", "warmup_steps", "Warm-up steps", "int", (0, 1_000_000)),
    ("train", "schedule", "Schedule", "combo", ("linear", "cosine", "constant")),
    ("train", "weight_decay", "Weight decay", "float", (0.0, 0.999, 4)),
    ("train", "precision", "Precision", "combo", ("auto", "fp32", "bf16")),
    ("train", "device", "Device", "combo", ("auto", "cpu", "cuda", "mps")),
    ("train", "eval_every_seconds", "Evaluate every (s)", "float", (0.0, 100_000.0, 0)),
    ("train", "eval_every", "  and every (steps)", "int", (0, 1_000_000)),
    ("train", "checkpoint_every", "Checkpoint every (steps)", "int", (0, 1_000_000)),
    ("train", "log_every", "Report every (steps)", "int", (1, 100_000)),
    ("train", "seed", "Seed", "int", (0, 2_147_483_647)),
    ("train", "name", "Run name", "text", ()),
)


def tiny_default_config() -> WorkbenchConfig:
    """What a fresh window trains: the default recipe (tiny ModernBERT, 5 minutes), which learns on a CPU."""
    config = WorkbenchConfig()
    config.model.preset = "tiny"
    config.train.checkpoint_every = 500
    return config


class TrainingPanel(QWidget):
    start_requested = Signal(object)   # a validated WorkbenchConfig
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        self.base = tiny_default_config()
        self.dataset_path = ""
        self.widgets: dict[tuple[str, str], QWidget] = {}

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        for section, key, label, kind, extra in FIELDS:
            widget = self._make_widget(kind, extra, key)
            widget.setObjectName(f"{section}_{key}")
            widget.setToolTip(_help(section, key))
            self.widgets[(section, key)] = widget
            form.addRow(label, widget)
        settings = QGroupBox("Run settings")
        settings.setLayout(form)

        self.dataset_label = QLabel("Dataset: none yet - prepare a corpus in the Corpus panel",
                                    objectName="datasetLabel")
        self.dataset_label.setWordWrap(True)
        self.message = QLabel("", objectName="validationMessage")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #c0392b;")

        self.start_button = QPushButton("Start", objectName="startButton")
        self.pause_button = QPushButton("Pause", objectName="pauseButton")
        self.stop_button = QPushButton("Stop", objectName="stopButton")
        self.start_button.setToolTip("Start a new run with these settings (Ctrl+R)")
        self.pause_button.setToolTip("Pause or resume the run (Ctrl+P)")
        self.stop_button.setToolTip("Stop the run; a checkpoint is saved (Ctrl+.)")
        buttons = QHBoxLayout()
        for button in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(button)

        self.progress = QProgressBar(objectName="trainingProgress")
        self.progress.setRange(0, 1000)
        self.progress.setFormat("idle")
        self.progress.setTextVisible(True)

        save = QPushButton("Save config…", objectName="saveConfigButton")
        copy_cmd = QPushButton("Copy torchrun command", objectName="copyTorchrunButton")
        extra_buttons = QHBoxLayout()
        extra_buttons.addWidget(save)
        extra_buttons.addWidget(copy_cmd)

        layout = QVBoxLayout(self)
        layout.addWidget(self.dataset_label)
        layout.addWidget(settings)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addLayout(extra_buttons)
        layout.addStretch(1)

        self.start_button.clicked.connect(self._start)
        self.pause_button.clicked.connect(self._pause_or_resume)
        self.stop_button.clicked.connect(self.stop_requested)
        save.clicked.connect(self._save_config)
        copy_cmd.clicked.connect(self._copy_torchrun)
        self.widgets[("model", "preset")].currentIndexChanged.connect(self._show_preset_sizes)
        self.load_config(self.base)
        self.set_state("idle")

    # --- form <-> config ------------------------------------------------------------------------

    def _make_widget(self, kind: str, extra: tuple, key: str = "") -> QWidget:
        if kind == "combo":
            widget = QComboBox()
            widget.addItems(list(extra))
            widget.currentIndexChanged.connect(self.validate)
        elif kind == "int":
            widget = QSpinBox()
            widget.setRange(*extra)
            widget.setGroupSeparatorShown(True)
            widget.valueChanged.connect(self.validate)
        elif kind == "float":
            widget = QDoubleSpinBox()
            widget.setRange(extra[0], extra[1])
            widget.setDecimals(extra[2])
            if key == "learning_rate":  # 0 is a value of its own: the trainer chooses the rate for the model
                widget.setSpecialValueText("auto (chosen for the model)")
            widget.setSingleStep(10 ** -extra[2] * 10 if extra[2] > 2 else 1)
            widget.valueChanged.connect(self.validate)
        else:
            widget = QLineEdit()
            widget.setPlaceholderText("made from the preset and the time")
            widget.textChanged.connect(self.validate)
        return widget

    def load_config(self, config: WorkbenchConfig) -> None:
        """Show ``config`` in the form (model -> widget with signals blocked, so nothing echoes back)."""
        self.base = copy.deepcopy(config)
        for (section, key), widget in self.widgets.items():
            value = getattr(getattr(config, section), key)
            widget.blockSignals(True)
            if isinstance(widget, QComboBox):
                index = widget.findText(str(value))
                widget.setCurrentIndex(max(0, index))
            elif isinstance(widget, (QSpinBox, QDoubleSpinBox)):
                widget.setValue(value)
            else:
                widget.setText(str(value))
            widget.blockSignals(False)
        self._show_preset_sizes()
        if config.data.dataset:
            self.set_dataset(config.data.dataset)
        self.validate()

    SIZE_KEYS = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")

    def _show_preset_sizes(self, *_) -> None:
        """A named preset shows its sizes (read-only); `custom` lets every size be set."""
        preset = self.widgets[("model", "preset")].currentText()
        custom = preset == "custom"
        for key, value in zip(self.SIZE_KEYS, MODEL_PRESETS.get(preset, (None,) * 4)):
            widget = self.widgets[("model", key)]
            widget.setEnabled(custom and self.state not in ("running", "paused", "starting", "stopping"))
            if not custom:
                widget.blockSignals(True)
                widget.setValue(value)
                widget.blockSignals(False)
        self.validate()

    def set_dataset(self, path: str) -> None:
        self.dataset_path = path
        self.dataset_label.setText(f"Dataset: {path}")
        self.validate()

    def config(self) -> WorkbenchConfig:
        """The form's config; raises ConfigError with the CLI's message when invalid."""
        raw = self.base.to_dict()
        for (section, key), widget in self.widgets.items():
            if isinstance(widget, QComboBox):
                value = widget.currentText()
            elif isinstance(widget, (QSpinBox, QDoubleSpinBox)):
                value = widget.value()
            else:
                value = widget.text().strip()
            raw[section][key] = value
        if raw["model"]["preset"] != "custom":
            for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
                raw["model"][key] = 0  # sizes come from the chosen preset
        raw["data"]["dataset"] = self.dataset_path
        return WorkbenchConfig.from_dict(raw, source="settings")

    def validate(self, *_) -> bool:
        try:
            self.config()
        except ConfigError as exc:
            self.message.setText(str(exc).removeprefix("settings: "))
            self.start_button.setEnabled(False)
            return False
        ready = bool(self.dataset_path)
        self.message.setText("" if ready else "Prepare a dataset in the Corpus panel to start.")
        self.start_button.setEnabled(ready and self.state in ("idle", "finished"))
        return ready

    # --- run state ----------------------------------------------------------------------------------

    state = "idle"

    def set_state(self, state: str) -> None:
        """idle | starting | running | paused | stopping | finished"""
        self.state = state
        running = state in ("running", "paused", "starting")
        self.pause_button.setEnabled(state in ("running", "paused"))
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        self.stop_button.setEnabled(running)
        for widget in self.widgets.values():
            widget.setEnabled(not running and state != "stopping")
        self._show_preset_sizes()

    def show_progress(self, step: int, max_steps: int, progress: float, eta_seconds: float) -> None:
        self.progress.setValue(int(1000 * progress))
        of = f" / {max_steps:,}" if max_steps else ""
        self.progress.setFormat(f"step {step:,}{of}  —  {progress:.0%}  —  ETA {duration(eta_seconds)}")

    def _start(self) -> None:
        if self.validate():
            self.start_requested.emit(self.config())

    def _pause_or_resume(self) -> None:
        (self.resume_requested if self.state == "paused" else self.pause_requested).emit()

    def _save_config(self) -> None:
        try:
            config = self.config()
        except ConfigError as exc:
            self.message.setText(str(exc))
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save config", "run.toml", "TOML files (*.toml)")
        if path:
            with open(path, "w", encoding="utf-8") as f:
                f.write(dumps_toml(config))

    def torchrun_command(self) -> str:
        config = self.config()
        sets = [f"--set {key}={shlex.quote(_toml(value))}" for key, value in _changed(config)]
        return " ".join(["torchrun --nproc-per-node 8 -m workbench train", *sets])

    def _copy_torchrun(self) -> None:
        try:
            QGuiApplication.clipboard().setText(self.torchrun_command())
        except ConfigError as exc:
            self.message.setText(str(exc))


def _changed(config: WorkbenchConfig) -> list[tuple[str, object]]:
    """Settings that differ from the defaults: the short form of a command line."""
    default = WorkbenchConfig().to_dict()
    return [(f"{section}.{key}", value) for section, values in config.to_dict().items()
            for key, value in values.items() if default[section][key] != value]


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def _help(section: str, key: str) -> str:
    from workbench.config import describe_settings

    for name, default, _, text in describe_settings():
        if name == f"{section}.{key}":
            return f"{name} (default {default}): {text}"
    return ""


if __name__ == "__main__":
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    panel = TrainingPanel()
    panel.show()
    app.exec()
