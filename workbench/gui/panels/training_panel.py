"""Training: the run's settings, validated as you type, and Start / Pause / Resume / Stop.

The form is bound to the window's ``RunSettings`` - one ``WorkbenchConfig``,
the same object the TOML file holds and the database stores, which the
masking preview edits too - and validates it with the same code as the CLI,
so a message here reads exactly as ``pretrain-workbench train`` would print
it. The panel only lays out and forwards: the window owns the training thread.
"""

from __future__ import annotations

import shlex

from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
    QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from workbench.config import WorkbenchConfig, _toml_value, dumps_toml
from workbench.errors import ConfigError
from workbench.formatting import duration
from workbench.gui.run_settings import SIZE_KEYS, RunSettings, preset_sizes
from workbench.gui.setting_fields import WideSpinBox, choice_field, number_field

# (section, key, label, widget kind, decimals): the settings a person changes most; every other setting keeps
# its value from the loaded config ("new run from this config" keeps them all). Limits and choices come from
# the config's declarations (``setting_fields``).
FIELDS = (
    ("model", "architecture", "Architecture", "combo", 0),
    ("model", "preset", "Model size", "combo", 0),
    ("model", "num_hidden_layers", "  layers", "int", 0),
    ("model", "hidden_size", "  hidden size", "int", 0),
    ("model", "num_attention_heads", "  attention heads", "int", 0),
    ("model", "intermediate_size", "  feed-forward size", "int", 0),
    ("train", "max_steps", "Steps (0 = no limit)", "int", 0),
    ("train", "max_minutes", "Time budget (min, 0 = none)", "float", 1),
    ("train", "batch_size", "Batch size", "int", 0),
    ("train", "learning_rate", "Learning rate", "float", 6),
    ("train", "warmup_steps", "Warm-up steps", "int", 0),
    ("train", "warmup_fraction", "  at most (share of budget)", "float", 2),
    ("train", "schedule", "Schedule", "combo", 0),
    ("train", "cooldown_fraction", "  cool-down share (wsd)", "float", 2),
    ("train", "weight_decay", "Weight decay", "float", 4),
    ("train", "precision", "Precision", "combo", 0),
    ("train", "device", "Device", "device", 0),
    ("train", "eval_every_seconds", "Evaluate every (s)", "float", 0),
    ("train", "eval_every", "  and every (steps)", "int", 0),
    ("train", "checkpoint_every", "Checkpoint every (steps)", "int", 0),
    ("train", "log_every", "Report every (steps)", "int", 0),
    ("train", "seed", "Seed", "int", 0),
    ("train", "name", "Run name", "text", 0),
)
DEVICES = ("auto", "cpu", "cuda", "mps")        # free-form in TOML (cuda:1): an unknown one is added when shown


class TrainingPanel(QWidget):
    start_requested = Signal(object)   # a validated WorkbenchConfig
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()

    def __init__(self, settings: RunSettings | None = None, parent=None):
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        self.settings = settings or RunSettings(parent=self)
        self.widgets: dict[tuple[str, str], QWidget] = {}

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        for section, key, label, kind, decimals in FIELDS:
            widget = self._make_widget(kind, decimals, section, key)
            widget.setObjectName(f"{section}_{key}")
            widget.setToolTip(_help(section, key))
            self.widgets[(section, key)] = widget
            form.addRow(label, widget)
        self.processes = QSpinBox(objectName="processesSpin")
        self.processes.setRange(1, 4096)
        self.processes.setToolTip("Training processes of a torchrun launch (one per GPU): the torchrun command "
                                  "uses it, and the masking preview shows the first process's micro-batches")
        self.processes.valueChanged.connect(self.settings.set_processes)
        form.addRow("Processes (torchrun)", self.processes)
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
        self.settings.changed.connect(self._settings_changed)
        self.refresh()
        self.set_state("idle")

    # --- form <-> config ------------------------------------------------------------------------

    def _make_widget(self, kind: str, decimals: int, section: str, key: str) -> QWidget:
        """A field bound to ``settings``: an edit writes the setting (and every panel redraws from it)."""
        def store(value) -> None:
            self.settings.set(section, key, value)

        if kind in ("combo", "device"):
            widget = choice_field(f"{section}.{key}") if kind == "combo" else QComboBox()
            if kind == "device":
                widget.addItems(list(DEVICES))
            widget.currentTextChanged.connect(store)
        elif kind in ("int", "float"):
            widget = number_field(f"{section}.{key}", decimals)
            if key == "learning_rate":  # 0 is a value of its own: the trainer chooses the rate for the model
                widget.setSpecialValueText("auto (chosen for the model)")
            if kind == "float":
                widget.setSingleStep(10 ** -decimals * 10 if decimals > 2 else 1)
            widget.valueChanged.connect(store)
        else:
            widget = QLineEdit()
            widget.setPlaceholderText("made from the preset and the time")
            widget.textChanged.connect(lambda text: store(text.strip()))
        return widget

    def load_config(self, config: WorkbenchConfig) -> None:
        """Take every setting from ``config`` (the window's one config is replaced; every panel redraws)."""
        self.settings.replace(config)

    def _settings_changed(self, key: str) -> None:
        if key in ("", "model.preset", "processes"):
            self.refresh()
            return
        widget = self.widgets.get(tuple(key.split(".", 1)))
        if widget is not None and not isinstance(widget, QLineEdit):   # set elsewhere (a sweep, the self-test)
            self._show(key.split(".", 1), widget)
        if key == "train.schedule":
            self._enable_dependent_fields()
        self.validate()

    def _show(self, field: tuple[str, str] | list[str], widget: QWidget) -> None:
        """One setting in its field (signals blocked, so nothing echoes back)."""
        section, key = field
        config = self.settings.config
        value = getattr(getattr(config, section), key)
        if config.model.preset != "custom" and section == "model" and key in SIZE_KEYS:
            value = preset_sizes(config.model.preset)[key]      # 0 in the config: the preset's size
        widget.blockSignals(True)
        if isinstance(widget, QComboBox):
            index = widget.findText(str(value))
            if index < 0:                                        # e.g. device = "cuda:1" from a TOML file
                widget.addItem(str(value))
                index = widget.count() - 1
            widget.setCurrentIndex(index)
        elif isinstance(widget, (QSpinBox, QDoubleSpinBox, WideSpinBox)):
            if widget.value() != value:
                widget.setValue(value)
        else:
            widget.setText(str(value))
        widget.blockSignals(False)

    def refresh(self) -> None:
        """Show the settings in the form (signals blocked, so nothing echoes back)."""
        config = self.settings.config
        for field, widget in self.widgets.items():
            self._show(field, widget)
        self.processes.blockSignals(True)
        self.processes.setValue(self.settings.processes)
        self.processes.blockSignals(False)
        self._enable_dependent_fields()
        dataset = config.data.dataset
        self.dataset_label.setText(f"Dataset: {dataset}" if dataset else
                                   "Dataset: none yet - prepare a corpus in the Corpus panel")
        self.validate()

    def _enable_dependent_fields(self) -> None:
        """Fields that matter only with another setting are read-only without it: a named preset shows its
        sizes (`custom` lets every size be set), and the cool-down share is the `wsd` schedule's."""
        config = self.settings.config
        editable = self.state not in ("running", "paused", "starting", "stopping")
        for key in SIZE_KEYS:
            self.widgets[("model", key)].setEnabled(editable and config.model.preset == "custom")
        self.widgets[("train", "cooldown_fraction")].setEnabled(editable and config.train.schedule == "wsd")

    @property
    def dataset_path(self) -> str:
        return self.settings.config.data.dataset

    def set_dataset(self, path: str) -> None:
        self.settings.set("data", "dataset", path)
        self.dataset_label.setText(f"Dataset: {path}")
        self.validate()

    def config(self) -> WorkbenchConfig:
        """The window's config, validated; raises ConfigError with the CLI's message when invalid."""
        return self.settings.validated()

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
        self._enable_dependent_fields()
        self.validate()

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
        sets = [f"--set {key}={shlex.quote(_toml_value(value))}" for key, value in _changed(config)]
        return " ".join([f"torchrun --nproc-per-node {self.settings.processes} -m workbench train", *sets])

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


def _help(section: str, key: str) -> str:
    from workbench.config import allowed_text, describe_settings

    for name, default, _, text in describe_settings():
        if name == f"{section}.{key}":
            allowed = allowed_text(name)
            return f"{name} (default {default}{'; ' + allowed if allowed else ''}): {text}"
    return ""


if __name__ == "__main__":  # python -m workbench.gui.panels.training_panel: the panel on its own
    import sys

    from workbench.gui.standalone import run_alone

    sys.exit(run_alone(TrainingPanel, 450, 800))
