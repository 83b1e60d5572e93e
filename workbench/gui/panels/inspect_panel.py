"""Inspect: what the model learns, where and when - from a run's inspection snapshots (``workbench.snapshots``).

One step slider over the snapshots drives five views (``workbench.gui.inspect``): the **head atlas** (a tile
per head, coloured by what it attends to, its attention map on click), **what was learned when** (a passage
coloured by surprisal, surprisal by token class, the stage meter, per-word curves and the step each word was
learned), **embeddings** (a 2-D map aligned between steps, neighbours, anisotropy / rank / norms),
**probes** (probe x step) and **attention and syntax** (dependency accuracy per head, with a CoNLL-U
treebank). A second run ("vs") is shown at the equal step or the equal number of tokens. Reading, and
every computation over all snapshots, runs on a worker; moving the slider only redraws what depends on
the step.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QHBoxLayout, QLabel, QMenu, QPushButton, QSlider, QTabWidget, QVBoxLayout, QWidget,
)

from workbench.gui.compare_widgets import export_plot
from workbench.gui.inspect.embeddings_tab import EmbeddingsTab
from workbench.gui.inspect.heads_tab import HeadsTab
from workbench.gui.inspect.learned_tab import LearnedTab
from workbench.gui.inspect.loaded_run import LoadedRun, load_run
from workbench.gui.inspect.probes_tab import ProbesTab
from workbench.gui.inspect.syntax_tab import SyntaxTab
from workbench.gui.workers import in_background

CSV_VIEWS = (("heads", "Heads at this step"), ("classes", "Surprisal by token class"), ("words", "Words"),
             ("stages", "Stage meter"), ("embeddings", "Embedding curves"), ("neighbours", "Neighbours of the word"),
             ("probes", "Probes"), ("syntax", "Syntax"), ("passage", "Passage at this step"))


class InspectPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("inspectPanel")
        self.choices: list[tuple[str, str]] = []      # (label, run folder)
        self.a: LoadedRun | None = None
        self.b: LoadedRun | None = None
        self.loading = 0                               # reads in flight
        self.wanted: tuple[str, str] = ("", "")        # the folders asked for, A and B (the newest request wins)
        self._drawn: set = set()                       # (tab, runs) whose step-independent parts are drawn

        self.run_a = QComboBox(objectName="inspectRunA")
        self.run_b = QComboBox(objectName="inspectRunB")
        self.run_a.setMinimumContentsLength(18)
        self.run_b.setMinimumContentsLength(18)
        open_button = QPushButton("Open run folder…", objectName="inspectOpenButton")
        self.align = QComboBox(objectName="inspectAlign")
        self.align.addItems(["equal step", "equal tokens"])
        self.align.setToolTip("How the second run's snapshot is matched to the first's")
        image = QPushButton("Export image…", objectName="inspectExportImage")
        image.setToolTip("The view on display as PNG or SVG")
        self.csv_button = QPushButton("Export numbers…", objectName="inspectExportCsv")
        menu = QMenu(self.csv_button)
        for view, text in CSV_VIEWS:
            menu.addAction(text, lambda v=view: self.export_csv(v))
        self.csv_button.setMenu(menu)
        top = QHBoxLayout()
        for widget in (QLabel("Run"), self.run_a, QLabel("vs"), self.run_b, QLabel("at"), self.align, open_button):
            top.addWidget(widget)
        top.addStretch(1)
        top.addWidget(image)
        top.addWidget(self.csv_button)

        self.slider = QSlider(Qt.Horizontal, objectName="inspectStep")
        self.slider.setEnabled(False)
        self.step_label = QLabel("no snapshots", objectName="inspectStepLabel")
        self.step_label.setMinimumWidth(320)
        slider_row = QHBoxLayout()
        slider_row.addWidget(QLabel("Snapshot"))
        slider_row.addWidget(self.slider, 1)
        slider_row.addWidget(self.step_label)
        self.message = QLabel("Pick a run: snapshots are taken while a run trains (inspect.enabled); older runs "
                              "are inspected from their checkpoints with `pretrain-workbench inspect RUN "
                              "--from-checkpoints`.", objectName="inspectMessage")
        self.message.setWordWrap(True)

        self.heads, self.learned, self.embeddings = HeadsTab(self), LearnedTab(self), EmbeddingsTab(self)
        self.probes, self.syntax = ProbesTab(self), SyntaxTab(self)
        self.tabs = QTabWidget(objectName="inspectTabs")
        for tab in (self.heads, self.learned, self.embeddings, self.probes, self.syntax):
            self.tabs.addTab(tab, tab.title)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(slider_row)
        layout.addWidget(self.message)
        layout.addWidget(self.tabs, 1)

        self.run_a.activated.connect(lambda _: self._load_chosen())
        self.run_b.activated.connect(lambda _: self._load_chosen())
        self.align.currentIndexChanged.connect(lambda _: self.redraw())
        self.slider.valueChanged.connect(lambda _: self.redraw())
        self.tabs.currentChanged.connect(lambda _: self.redraw())
        open_button.clicked.connect(self._open_folder)
        image.clicked.connect(self.export_image)

    # --- runs -----------------------------------------------------------------------------------------------

    def set_choices(self, runs: list[tuple[str, str]]) -> None:
        """The runs the combos offer: (label, run folder), newest first."""
        current = (self.run_a.currentData(), self.run_b.currentData())
        self.choices = list(runs)
        for combo, keep, blank in ((self.run_a, current[0], None), (self.run_b, current[1], "— none —")):
            combo.blockSignals(True)
            combo.clear()
            if blank:
                combo.addItem(blank, "")
            for label, folder in self.choices:
                combo.addItem(label, folder)
            index = combo.findData(keep) if keep else -1
            combo.setCurrentIndex(max(index, 0))
            combo.blockSignals(False)

    def show_runs(self, runs: list[tuple[str, str]]) -> None:
        """Inspect the first run, and the second beside it (from the Runs or Compare panel)."""
        known = {folder for _, folder in self.choices}
        self.set_choices(self.choices + [r for r in runs if r[1] not in known])
        for combo, run in ((self.run_a, runs[0] if runs else None), (self.run_b, runs[1] if len(runs) > 1 else None)):
            combo.setCurrentIndex(max(0, combo.findData(run[1])) if run else 0)
        self._load_chosen()

    def snapshot_taken(self, run_dir: str, label: str) -> None:
        """A run that is training stored a snapshot: show it if nothing else is shown, refresh it if shown."""
        if run_dir not in {folder for _, folder in self.choices}:
            self.set_choices([(label, run_dir)] + self.choices)
        if not self.run_a.currentData() and not self.loading:
            self.run_a.setCurrentIndex(self.run_a.findData(run_dir))
        if run_dir in (self.run_a.currentData(), self.run_b.currentData()) and not self.loading:
            self._load_chosen()

    def _open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder")
        if folder:
            self.show_runs([(Path(folder).name, folder)])

    def _load_chosen(self) -> None:
        wanted = (self.run_a.currentData() or "", self.run_b.currentData() or "")
        self.wanted = wanted
        if not wanted[0]:
            self.a = self.b = None
            self.redraw()
            return
        labels = (self.run_a.currentText(), self.run_b.currentText())
        self.loading += 1
        self.message.setText("reading the snapshots…")

        def read():
            a = load_run(labels[0], wanted[0])
            b = load_run(labels[1], wanted[1]) if wanted[1] and wanted[1] != wanted[0] else None
            return wanted, a, b

        in_background(read, "inspect-read", then=self._loaded, failed=self._failed)

    def _loaded(self, result) -> None:
        self.loading -= 1
        wanted, a, b = result
        if wanted != self.wanted:
            return                     # a newer choice is being read
        at_end = self.a is None or self.slider.value() == self.slider.maximum()
        self.a, self.b = a, b
        self._drawn.clear()
        self.message.setText(self._describe())
        self.slider.blockSignals(True)
        self.slider.setRange(0, len(a.inspection) - 1)
        self.slider.setEnabled(True)
        if at_end:
            self.slider.setValue(len(a.inspection) - 1)
        self.slider.blockSignals(False)
        for index in range(self.tabs.count()):
            self.tabs.widget(index).runs_loaded()
        self.redraw()

    def _failed(self, message: str) -> None:
        self.loading -= 1
        self.a = self.b = None
        self.slider.setEnabled(False)
        self.message.setText(message)
        self.redraw()

    def _describe(self) -> str:
        a = self.a.inspection
        pack = a.pack
        text = (f"{self.a.label}: {len(a)} snapshots, steps {a.steps[0]}–{a.steps[-1]}; probe pack of "
                f"{len(pack.input_ids)} {'held-out' if pack.from_heldout else 'training (no held-out split)'} "
                f"sequences, {int((pack.pattern >= 0).sum())} tokens each scored once per snapshot.")
        if self.b is not None:
            text += f" vs {self.b.label}: {len(self.b.inspection)} snapshots."
        return text

    # --- drawing ---------------------------------------------------------------------------------------------

    @property
    def index(self) -> int:
        return self.slider.value()

    def index_b(self) -> int | None:
        if self.b is None or self.a is None:
            return None
        a = self.a.inspection
        if self.align.currentIndex() == 1:
            return self.b.inspection.index_at_tokens(int(a.tokens_seen[self.index]))
        return self.b.inspection.index_at(int(a.steps[self.index]))

    def redraw(self) -> None:
        if self.a is None:
            self.step_label.setText("no snapshots")
            return
        a = self.a.inspection
        i = self.index
        text = f"step {a.steps[i]:,} · {a.tokens_seen[i]:,} tokens · surprisal {a.mean_surprisal()[i]:.2f}"
        j = self.index_b()
        if j is not None:
            text += f"  |  vs step {self.b.inspection.steps[j]:,}"
        self.step_label.setText(text)
        tab = self.tabs.currentWidget()
        key = (self.tabs.currentIndex(), id(self.a), id(self.b))
        if key not in self._drawn:           # what does not depend on the step: once per runs shown
            self._drawn.add(key)
            tab.draw_runs()
        tab.draw_step()

    # --- export ---------------------------------------------------------------------------------------------

    def export_image(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the view", "inspect.png", "PNG (*.png);;SVG (*.svg)")
        if path:
            self.write_image(path)

    def write_image(self, path: str) -> None:
        kind = "svg" if path.lower().endswith(".svg") else "png"
        try:
            export_plot(self.tabs.currentWidget(), kind, path, self.tabs.tabText(self.tabs.currentIndex()))
        except OSError as exc:
            self.message.setText(f"cannot write {path}: {exc}")

    def export_csv(self, view: str, path: str | None = None) -> None:
        from workbench.snapshots.store import SnapshotError
        from workbench.snapshots.views import table, write_table_csv

        if self.a is None:
            self.message.setText("no run to export: pick a run first")
            return
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export the numbers", f"inspect-{view}.csv", "CSV (*.csv)")
            if not path:
                return
        try:
            columns, rows = table(self.a.inspection, view, self.index, self.embeddings.word.text().strip().lower(),
                                  self.embeddings.in_context.isChecked())
            write_table_csv(path, columns, rows)
        except (SnapshotError, OSError) as exc:
            self.message.setText(f"cannot export {view}: {exc}")


if __name__ == "__main__":
    import sys

    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv)
    panel = InspectPanel()
    if len(sys.argv) > 1:
        panel.show_runs([(Path(p).name, p) for p in sys.argv[1:3]])
    panel.resize(1200, 800)
    panel.show()
    app.exec()
