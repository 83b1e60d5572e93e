"""The window's one run configuration: a ``WorkbenchConfig`` every panel reads and edits.

The Training form and the masking preview bind their fields to the same
``RunSettings``: a field edited anywhere writes into ``config`` and emits
``changed`` with its ``section.key``; every panel redraws from ``config``.
Start, Resume, Save config, Copy torchrun command and the preview all read
this one object, so nothing can disagree. ``processes`` (the number of
training processes a torchrun launch would use) lives beside it: it is not a
setting of the run, but the preview shows rank 0's first micro-batch for it.
"""

from __future__ import annotations

import copy

from PySide6.QtCore import QObject, Signal

from workbench.config import MODEL_PRESETS, WorkbenchConfig

SIZE_KEYS = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")


def default_run_config() -> WorkbenchConfig:
    """What a fresh window trains: the default recipe (tiny ModernBERT, 5 minutes), which learns on a CPU."""
    config = WorkbenchConfig()
    config.model.preset = "tiny"
    config.train.checkpoint_every = 500
    return config


class RunSettings(QObject):
    changed = Signal(str)          # "section.key" of an edited setting; "" when the whole config was replaced

    def __init__(self, config: WorkbenchConfig | None = None, parent=None):
        super().__init__(parent)
        self.config = copy.deepcopy(config) if config is not None else default_run_config()
        self.processes = 1
        self._named_sizes = preset_sizes(self.config.model.preset)

    def get(self, section: str, key: str):
        return getattr(getattr(self.config, section), key)

    def set(self, section: str, key: str, value) -> None:
        if self.get(section, key) == value:
            return
        setattr(getattr(self.config, section), key, value)
        if (section, key) == ("model", "preset"):
            self._preset_changed(value)
        if (section, key) == ("masking", "max_predictions_per_seq") and value:
            m = self.config.masking
            m.min_predictions_per_seq = min(m.min_predictions_per_seq, m.max_predictions_per_seq)
        self.changed.emit(f"{section}.{key}")

    def set_processes(self, processes: int) -> None:
        if processes != self.processes:
            self.processes = processes
            self.changed.emit("processes")

    def replace(self, config: WorkbenchConfig) -> None:
        """Take every setting from ``config`` (restored settings, "new run from config", a loaded TOML)."""
        self.config = copy.deepcopy(config)
        self._named_sizes = preset_sizes(self.config.model.preset)
        self.changed.emit("")

    def validated(self) -> WorkbenchConfig:
        """A validated copy; raises ConfigError with the CLI's message (prefixed ``settings:``)."""
        return WorkbenchConfig.from_dict(self.config.to_dict(), source="settings")

    def _preset_changed(self, preset: str) -> None:
        """A named preset takes its sizes (0 = the preset's); `custom` starts from the sizes shown before."""
        model = self.config.model
        if preset == "custom":
            for key in SIZE_KEYS:
                if not getattr(model, key):
                    setattr(model, key, self._named_sizes[key])
        else:
            self._named_sizes = preset_sizes(preset)
            for key in SIZE_KEYS:
                setattr(model, key, 0)


def preset_sizes(preset: str) -> dict[str, int]:
    """The sizes a named preset stands for (the tiny ones for `custom`, as a starting point)."""
    return dict(zip(SIZE_KEYS, MODEL_PRESETS.get(preset, MODEL_PRESETS["tiny"])))
