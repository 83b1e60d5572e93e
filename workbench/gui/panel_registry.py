"""The window's panels: one line each - key, dock title, where the default layout puts it, how it is built.

Adding a panel is its module (``gui/panels/``, runnable on its own) and one line here; the window makes its
dock, its View menu entry and its place in the default layout from this list, and the saved-layout version
follows the list (``layout_version``), so an older saved layout never hides a new panel.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

from PySide6.QtWidgets import QWidget

# Where the default layout puts a panel: settings on the left; curves, preview and Compare on top right;
# runs, probe and fine-tuning below them. The first panel of each area is in front.
AREAS = ("left", "top_right", "bottom_right")


@dataclass(frozen=True)
class PanelSpec:
    key: str                                  # the window's attribute and the dock's object name ({key}Dock)
    title: str
    area: str                                 # one of AREAS
    build: Callable[[object], QWidget]        # window -> the panel (it may read the window's RunSettings)


def _panels() -> tuple[PanelSpec, ...]:
    from workbench.gui.panels.compare_panel import ComparePanel
    from workbench.gui.panels.corpus_panel import CorpusPanel
    from workbench.gui.panels.finetune_panel import FinetunePanel
    from workbench.gui.panels.inspect_panel import InspectPanel
    from workbench.gui.panels.masking_panel import MaskingPanel
    from workbench.gui.panels.plots_panel import PlotsPanel
    from workbench.gui.panels.probe_panel import ProbePanel
    from workbench.gui.panels.runs_panel import RunsPanel
    from workbench.gui.panels.training_panel import TrainingPanel

    return (
        PanelSpec("training", "Training", "left", lambda w: TrainingPanel(w.run_settings)),
        PanelSpec("corpus", "Corpus", "left", lambda w: CorpusPanel(w.run_settings, datasets_root=w.data_dir / "datasets")),
        PanelSpec("plots", "Live plots", "top_right", lambda w: PlotsPanel()),
        PanelSpec("masking", "Masking preview", "top_right", lambda w: MaskingPanel(w.run_settings)),
        PanelSpec("runs", "Runs", "bottom_right", lambda w: RunsPanel()),
        PanelSpec("compare", "Compare", "top_right", lambda w: ComparePanel()),
        PanelSpec("inspect", "Inspect", "top_right", lambda w: InspectPanel()),
        PanelSpec("probe", "Probe", "bottom_right", lambda w: ProbePanel()),
        PanelSpec("finetune", "Fine-tune", "bottom_right", lambda w: FinetunePanel()),
    )


PANELS: tuple[PanelSpec, ...] = _panels()


def areas(panels: tuple[PanelSpec, ...] = PANELS) -> dict[str, tuple[str, ...]]:
    """The panel keys of each area of the default layout, in tab order."""
    return {area: tuple(p.key for p in panels if p.area == area) for area in AREAS}


def layout_version(panels: tuple[PanelSpec, ...] = PANELS) -> int:
    """The saved-layout version: it changes with the set of panels (a layout saved without a panel would
    restore without it), so nobody has to remember to bump it."""
    return zlib.crc32(",".join(f"{p.key}:{p.area}" for p in panels).encode()) & 0x7FFFFFFF
