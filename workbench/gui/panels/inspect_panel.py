"""Inspect: what the model learns, where and when - from a run's inspection snapshots (``workbench.snapshots``).

One step slider over the snapshots drives five views: the **head atlas** (a tile per head, coloured by
what it attends to, its attention map on click), **what was learned when** (a passage coloured by
surprisal, surprisal by token class, the stage meter, per-word curves and the step each word was
learned), **embeddings** (a 2-D map aligned between steps, neighbours, anisotropy / rank / norms),
**probes** (probe x step) and **syntax** (dependency accuracy per head, with a CoNLL-U treebank). A second
run ("vs") is shown at the equal step or the equal number of tokens. Reading and every computation over
all snapshots run on a worker; moving the slider only redraws from arrays already in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QListWidget, QMenu, QPushButton, QSlider,
    QSpinBox, QSplitter, QTableWidget, QTableWidgetItem, QTabWidget, QTextBrowser, QVBoxLayout, QWidget,
)

from workbench.gui.compare_widgets import export_plot
from workbench.gui.inspect_widgets import KIND_COLOURS, KIND_TEXT, AttentionMapView, HeadGrid, surprisal_html
from workbench.gui.table_items import NumberItem
from workbench.gui.workers import in_background

MAP_WORDS = 300            # points of the 2-D map
MAP_LABELS = 40            # of which the most frequent carry their word
CSV_VIEWS = (("heads", "Heads at this step"), ("classes", "Surprisal by token class"), ("words", "Words"),
             ("stages", "Stage meter"), ("embeddings", "Embedding curves"), ("neighbours", "Neighbours of the word"),
             ("probes", "Probes"), ("syntax", "Syntax"), ("passage", "Passage at this step"))
PEN_B = dict(style=Qt.DashLine)


@dataclass
class LoadedRun:
    """A run's snapshots and what every view needs from all of them, computed once on a worker."""

    label: str
    inspection: object                 # workbench.snapshots.views.RunInspection
    words: list
    word_index: dict
    map: np.ndarray                    # (N, MAP_WORDS, 2)
    map_words: list[str]
    classes: dict
    stages: dict
    embedding_curves: dict
    kinds: list                        # per snapshot, (L, nh) head kinds
    probes: tuple


def load_run(label: str, run_dir: str) -> LoadedRun:
    from workbench.snapshots.views import RunInspection

    inspection = RunInspection(run_dir)
    words = inspection.word_curves()
    return LoadedRun(label, inspection, words, {w.token: w for w in words}, inspection.embedding_map(MAP_WORDS),
                     inspection.map_words(MAP_WORDS), inspection.class_curves(), inspection.stages(),
                     inspection.embedding_curves(), [inspection.head_kinds(i) for i in range(len(inspection))],
                     inspection.probe_matrix())


def step_axis(steps: np.ndarray) -> np.ndarray:
    """x of the over-steps plots: step + 1 on a log axis (step 0 is the untrained model)."""
    return np.asarray(steps, float) + 1.0


class InspectPanel(QWidget):
    runs_wanted = Signal()             # the run choices should be refreshed from the Runs panel

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("inspectPanel")
        self.choices: list[tuple[str, str]] = []      # (label, run folder)
        self.a: LoadedRun | None = None
        self.b: LoadedRun | None = None
        self.loading = 0                               # reads in flight
        self.wanted: tuple[str, str] = ("", "")        # the folders asked for, A and B (newest request wins)
        self.selected_head = (0, 0)
        self._drawn: set = set()                      # (tab, runs) whose step-independent parts are drawn

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

        self.tabs = QTabWidget(objectName="inspectTabs")
        self.tabs.addTab(self._heads_tab(), "Head atlas")
        self.tabs.addTab(self._learned_tab(), "What was learned when")
        self.tabs.addTab(self._embeddings_tab(), "Embeddings")
        self.tabs.addTab(self._probes_tab(), "Probes")
        self.tabs.addTab(self._syntax_tab(), "Attention and syntax")

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

    # --- the tabs ------------------------------------------------------------------------------------------

    def _heads_tab(self) -> QWidget:
        self.grid_a = HeadGrid("")
        self.grid_b = HeadGrid("")
        self.grid_a.clicked.connect(self._head_clicked)
        self.grid_b.clicked.connect(self._head_clicked)
        self.head_change = QCheckBox("show the change since the first snapshot", objectName="inspectHeadChange")
        self.head_change.toggled.connect(lambda _: self.redraw())
        legend = QLabel(" ".join(f'<span style="background:{c}">&nbsp;{KIND_TEXT[k]}&nbsp;</span>'
                                 for k, c in KIND_COLOURS.items()))
        legend.setWordWrap(True)
        self.example = QSpinBox(objectName="inspectExample")
        self.example.setPrefix("example ")
        self.example.valueChanged.connect(lambda _: self._draw_attention())
        self.attention = AttentionMapView()
        grids = QWidget()
        grid_layout = QVBoxLayout(grids)
        grid_layout.addWidget(self.head_change)
        grid_layout.addWidget(self.grid_a, 1)
        grid_layout.addWidget(self.grid_b, 1)
        grid_layout.addWidget(legend)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.example)
        right_layout.addWidget(self.attention, 1)
        splitter = QSplitter()
        splitter.addWidget(grids)
        splitter.addWidget(right)
        splitter.setSizes([500, 420])
        return splitter

    def _plot(self, title: str, y: str, log_x: bool = True) -> pg.PlotWidget:
        plot = pg.PlotWidget(title=title)
        plot.setBackground("w")
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setLabel("bottom", "step + 1" if log_x else "")
        plot.setLabel("left", y)
        plot.setLogMode(x=log_x, y=False)
        if log_x:                                              # decades only: 2·10¹ 3·10¹ ... crowd the axis
            plot.getAxis("bottom").setTicks([[(d, f"{10 ** d:,}") for d in range(0, 8)], []])
        plot.getAxis("left").enableAutoSIPrefix(False)
        plot.addLegend(offset=(10, -10))                        # bottom left: curves fall to the right
        plot.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#888888", style=Qt.DotLine))
        plot.addItem(plot.cursor, ignoreBounds=True)
        return plot

    def _learned_tab(self) -> QWidget:
        self.row = QSpinBox(objectName="inspectPassageRow")
        self.row.setPrefix("held-out passage ")
        self.row.valueChanged.connect(lambda _: self._draw_passage())
        self.passage = QTextBrowser(objectName="inspectPassage")
        self.word_search = QLineEdit(objectName="inspectWordSearch")
        self.word_search.setPlaceholderText("search words…")
        self.word_search.textChanged.connect(lambda _: self._fill_words())
        self.words = QTableWidget(0, 5, objectName="inspectWords")
        self.words.setHorizontalHeaderLabels(["word", "in pack", "frequency rank", "learned at step", "surprisal now"])
        self.words.verticalHeader().setVisible(False)
        self.words.setSortingEnabled(True)
        self.words.sortByColumn(2, Qt.AscendingOrder)            # the most frequent words first
        self.words.itemSelectionChanged.connect(self._draw_word_curves)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(self.row)
        left_layout.addWidget(self.passage, 2)
        left_layout.addWidget(self.word_search)
        left_layout.addWidget(self.words, 3)
        self.class_plot = self._plot("Surprisal by token class (held-out probe pack)", "nats")
        self.stage_plot = self._plot("Stage meter: distance of the predictions from corpus statistics",
                                     "Jensen-Shannon (bits)")
        self.word_plot = self._plot("Selected words", "nats")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        for plot in (self.class_plot, self.stage_plot, self.word_plot):
            right_layout.addWidget(plot, 1)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([460, 460])
        return splitter

    def _embeddings_tab(self) -> QWidget:
        self.map_plot = pg.PlotWidget(title="Input embeddings of the most frequent words (PCA, aligned between steps)")
        self.map_plot.setBackground("w")
        self.map_plot.hideAxis("left")
        self.map_plot.hideAxis("bottom")
        self.map_points = pg.ScatterPlotItem(size=6, brush=pg.mkBrush(78, 121, 167, 160), pen=None)
        self.map_plot.addItem(self.map_points)
        self.map_labels: list[pg.TextItem] = []
        self.neighbour_word = QLineEdit(objectName="inspectNeighbourWord")
        self.neighbour_word.setPlaceholderText("a word, e.g. return")
        self.neighbour_word.textChanged.connect(lambda _: self._draw_neighbours())
        self.in_context = QCheckBox("in context (mean final state over the probe pack)", objectName="inspectInContext")
        self.in_context.toggled.connect(lambda _: self._draw_neighbours())
        self.neighbours_a = QListWidget(objectName="inspectNeighboursA")
        self.neighbours_b = QListWidget(objectName="inspectNeighboursB")
        for widget in (self.neighbours_a, self.neighbours_b):
            widget.setWordWrap(True)
        lists = QHBoxLayout()
        lists.addWidget(self.neighbours_a)
        lists.addWidget(self.neighbours_b)
        self.embedding_choice = QComboBox(objectName="inspectEmbeddingCurve")
        self.embedding_choice.addItems(["mean cosine by frequency band (a cone: high)", "norm by frequency band",
                                        "effective rank"])
        self.embedding_choice.currentIndexChanged.connect(lambda _: self._draw_embedding_curves()
                                                         if self.a is not None else None)
        self.embedding_plot = self._plot("", "")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(QLabel("Nearest neighbours (cosine)"))
        right_layout.addWidget(self.neighbour_word)
        right_layout.addWidget(self.in_context)
        right_layout.addLayout(lists, 1)
        right_layout.addWidget(self.embedding_choice)
        right_layout.addWidget(self.embedding_plot, 1)
        splitter = QSplitter()
        splitter.addWidget(self.map_plot)
        splitter.addWidget(right)
        splitter.setSizes([520, 400])
        return splitter

    def _probes_tab(self) -> QWidget:
        self.probe_note = QLabel("", objectName="inspectProbeNote")
        self.probe_note.setWordWrap(True)
        self.probes_a = QTableWidget(0, 0, objectName="inspectProbesA")
        self.probes_b = QTableWidget(0, 0, objectName="inspectProbesB")
        self.probe_titles = (QLabel(), QLabel())
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.addWidget(self.probe_note)
        for title, table in zip(self.probe_titles, (self.probes_a, self.probes_b)):
            title.setStyleSheet("font-weight: bold;")
            table.verticalHeader().setDefaultSectionSize(20)
            table.setSelectionMode(QTableWidget.NoSelection)
            layout.addWidget(title)
            layout.addWidget(table, 1)
        return box

    def _syntax_tab(self) -> QWidget:
        self.syntax_note = QLabel("", objectName="inspectSyntaxNote")
        self.syntax_note.setWordWrap(True)
        self.syntax_table = QTableWidget(0, 0, objectName="inspectSyntaxTable")
        self.syntax_plot = self._plot("Best head's dependency accuracy and the best fixed offset", "share of words")
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.addWidget(self.syntax_note)
        layout.addWidget(self.syntax_table, 1)
        layout.addWidget(self.syntax_plot, 1)
        return box

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
        pack = a.inspection.pack
        self.row.setRange(0, len(pack.input_ids) - 1)
        self.example.setRange(0, a.inspection.snapshots[0].attention.shape[0] - 1)
        self._fill_words()
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
        tab = self.tabs.currentIndex()
        key = (tab, id(self.a), id(self.b))
        if key not in self._drawn:           # what does not depend on the step: once per runs shown
            self._drawn.add(key)
            [lambda: None, self._draw_learned_curves, self._draw_embedding_curves, self._fill_probes,
             self._fill_syntax][tab]()
        [self._draw_heads, self._draw_learned, self._draw_embeddings, self._draw_probes, self._draw_syntax][tab]()

    def _draw_heads(self) -> None:
        from workbench.snapshots.reductions import HEAD_FEATURES, SHARE_FEATURES

        for grid, run, index in ((self.grid_a, self.a, self.index), (self.grid_b, self.b, self.index_b())):
            grid.setVisible(run is not None)
            if run is None:
                continue
            inspection = run.inspection
            heads = inspection.heads(index)
            kinds = run.kinds[index]
            grid.set_shape(*heads.shape[:2])
            grid.title.setText(f"{run.label} at step {inspection.steps[index]:,}")
            first = inspection.heads(0)
            uniform = math.log(max(inspection.mean_length, 2.0))
            uniform_shares = np.maximum(inspection.uniform_shares(), 1e-6)
            for (layer, head), tile in grid.tiles.items():
                kind = str(kinds[layer, head])
                if kind == "local":
                    series = sum(inspection.head_series(k)[:, layer, head] for k in ("self", "previous", "next"))
                    value = float(heads[layer, head, 3:6].sum())
                elif kind in SHARE_FEATURES:
                    feature = HEAD_FEATURES.index(kind)
                    series = inspection.head_series(kind)[:, layer, head]
                    value = heads[layer, head, feature]
                else:
                    feature = HEAD_FEATURES.index("entropy")
                    series = inspection.head_series("entropy")[:, layer, head] / uniform
                    value = heads[layer, head, feature] / uniform
                if kind in SHARE_FEATURES or kind == "local":
                    caption = f"{KIND_TEXT[kind]} {value:.0%}"
                else:                              # what it leans to most, against attention spread evenly
                    lift = heads[layer, head, :6] / uniform_shares
                    top = int(lift.argmax())
                    caption = (f"{KIND_TEXT[kind]}\n{SHARE_FEATURES[top]} {heads[layer, head, top]:.0%} "
                               f"({lift[top]:.0f}x even)")
                if self.head_change.isChecked():
                    change = heads[layer, head, :6] - first[layer, head, :6]
                    biggest = int(np.abs(change).argmax())
                    caption = f"Δ {SHARE_FEATURES[biggest]} {change[biggest]:+.2f}"
                tip = "\n".join(f"{name}: {heads[layer, head, k]:.3f}" for k, name in enumerate(HEAD_FEATURES))
                tile.show_head(kind, caption, series, index, f"layer {layer}, head {head}\n{tip}")
            grid.select(*self.selected_head)
        self._draw_attention()

    def _head_clicked(self, layer: int, head: int) -> None:
        self.selected_head = (layer, head)
        self.grid_a.select(layer, head)
        self.grid_b.select(layer, head)
        self._draw_attention()

    def _draw_attention(self) -> None:
        if self.a is None:
            return
        inspection = self.a.inspection
        layer, head = self.selected_head
        maps = inspection.snapshots[self.index].attention                      # (E, L, nh, A, A)
        if layer >= maps.shape[1] or head >= maps.shape[2]:
            return
        example = min(self.example.value(), maps.shape[0] - 1)
        A = maps.shape[-1]
        ids = inspection.pack.input_ids[example, :A]
        real = int(inspection.pack.attention_mask[example, :A].sum())
        tokens = [str(inspection.pack.tokens[t]) for t in ids[:real]]
        self.attention.show_map(tokens, maps[example, layer, head, :real, :real].astype(float),
                                f"L{layer} H{head} at step {inspection.steps[self.index]:,} (rows attend to columns)")

    def _cursor_at(self, *plots) -> None:
        x = math.log10(step_axis([self.a.inspection.steps[self.index]])[0])
        for plot in plots:
            plot.cursor.setPos(x)

    def _draw_learned(self) -> None:
        self._draw_passage()
        self._fill_word_now()
        self._cursor_at(self.class_plot, self.stage_plot, self.word_plot)

    def _draw_learned_curves(self) -> None:
        self.class_plot.clear()
        self.class_plot.addItem(self.class_plot.cursor, ignoreBounds=True)
        colours = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1"]
        for run, style in ((self.a, {}), (self.b, PEN_B)):
            if run is None:
                continue
            x = step_axis(run.inspection.steps)
            for colour, (name, curve) in zip(colours, run.classes.items()):
                if np.isfinite(curve).any():
                    self.class_plot.plot(x, curve, pen=pg.mkPen(colour, width=2, **style),
                                         name=name if run is self.a else None)
        self.stage_plot.clear()
        self.stage_plot.addItem(self.stage_plot.cursor, ignoreBounds=True)
        for run, style in ((self.a, {}), (self.b, PEN_B)):
            if run is None:
                continue
            x = step_axis(run.inspection.steps)
            suffix = "" if run is self.a else f" ({run.label})"
            self.stage_plot.plot(x, run.stages["unigram"], pen=pg.mkPen("#e15759", width=2, **style),
                                 name=f"to the unigram{suffix}")
            self.stage_plot.plot(x, run.stages["bigram"], pen=pg.mkPen("#4e79a7", width=2, **style),
                                 name=f"to the bigram{suffix}")
        self._draw_word_curves()

    def _draw_passage(self) -> None:
        if self.a is None:
            return
        inspection = self.a.inspection
        row = self.row.value()
        snapshot = inspection.snapshots[self.index]
        tokens = [str(inspection.pack.tokens[t]) for t in inspection.pack.input_ids[row]]
        guesses = [str(inspection.pack.tokens[g]) if g >= 0 else "" for g in snapshot.top1[row]]
        self.passage.setHtml(surprisal_html(tokens, inspection.surprisal(self.index)[row], guesses))

    def _fill_words(self) -> None:
        if self.a is None:
            return
        needle = self.word_search.text().strip().lower()
        shown = [w for w in self.a.words if needle in w.token.lower()][:2000]
        self.words.setSortingEnabled(False)
        self.words.setRowCount(len(shown))
        for r, word in enumerate(shown):
            self.words.setItem(r, 0, QTableWidgetItem(word.token))
            self.words.setItem(r, 1, NumberItem(word.occurrences, f"{word.occurrences}"))
            self.words.setItem(r, 2, NumberItem(word.frequency_rank, f"{word.frequency_rank:,}"))
            learned = word.learned_step
            self.words.setItem(r, 3, NumberItem(learned if learned is not None else math.inf,
                                                f"{learned:,}" if learned is not None else "not yet"))
            self.words.setItem(r, 4, NumberItem(0.0, ""))
        self.words.setSortingEnabled(True)
        self._fill_word_now()
        self.words.resizeColumnsToContents()

    def _fill_word_now(self) -> None:
        if self.a is None:
            return
        sorting = self.words.isSortingEnabled()
        self.words.setSortingEnabled(False)          # items keep their rows while their values change
        for r in range(self.words.rowCount()):
            word = self.a.word_index.get(self.words.item(r, 0).text())
            item = self.words.item(r, 4)
            if word is not None and item is not None:
                value = float(word.surprisal[self.index])
                item.setText(f"{value:.2f}")
                item.value = value
        self.words.setSortingEnabled(sorting)

    def _draw_word_curves(self) -> None:
        self.word_plot.clear()
        self.word_plot.addItem(self.word_plot.cursor, ignoreBounds=True)
        if self.a is None:
            return
        rows = sorted({i.row() for i in self.words.selectedIndexes()})[:8]
        for k, r in enumerate(rows):
            token = self.words.item(r, 0).text()
            colour = pg.intColor(k, hues=8)
            for run, style in ((self.a, {}), (self.b, PEN_B)):
                word = run.word_index.get(token) if run is not None else None
                if word is not None:
                    self.word_plot.plot(step_axis(run.inspection.steps), word.surprisal,
                                        pen=pg.mkPen(colour, width=2, **style), name=token if run is self.a else None)

    def _draw_embeddings(self) -> None:
        points = self.a.map[self.index]
        self.map_points.setData(points[:, 0], points[:, 1], data=self.a.map_words)
        while len(self.map_labels) < min(MAP_LABELS, len(points)):
            label = pg.TextItem(color="#333333", anchor=(0.5, 1.2))
            self.map_plot.addItem(label)
            self.map_labels.append(label)
        for label, word, (x, y) in zip(self.map_labels, self.a.map_words, points):
            label.setText(word)
            label.setPos(x, y)
        span = float(np.abs(self.a.map).max()) or 1.0
        self.map_plot.setRange(xRange=(-span, span), yRange=(-span, span), padding=0.05)
        self._draw_neighbours()
        self._cursor_at(self.embedding_plot)

    def _draw_neighbours(self) -> None:
        from workbench.snapshots.store import SnapshotError

        word = self.neighbour_word.text().strip().lower()
        for widget, run, index in ((self.neighbours_a, self.a, self.index), (self.neighbours_b, self.b, self.index_b())):
            widget.clear()
            widget.setVisible(run is not None)
            if run is None or not word:
                continue
            try:
                found = run.inspection.neighbours(word, index, in_context=self.in_context.isChecked())
            except SnapshotError as exc:
                widget.addItem(str(exc))
                continue
            widget.addItem(f"{run.label}, step {run.inspection.steps[index]:,}:")
            for neighbour, similarity in found:
                widget.addItem(f"{neighbour}   {similarity:.2f}")

    def _draw_embedding_curves(self) -> None:
        plot = self.embedding_plot
        plot.clear()
        plot.addItem(plot.cursor, ignoreBounds=True)
        self._cursor_at(plot)
        choice = self.embedding_choice.currentIndex()
        prefix = ("cosine ", "norm ", "effective rank")[choice]
        for run, style in ((self.a, {}), (self.b, PEN_B)):
            if run is None:
                continue
            names = [n for n in run.embedding_curves if n.startswith(prefix)]
            for k, name in enumerate(names):
                plot.plot(step_axis(run.inspection.steps), run.embedding_curves[name],
                          pen=pg.mkPen(pg.intColor(k, hues=5), width=2, **style),
                          name=name.replace(prefix, "") or name if run is self.a else None)

    def _draw_probes(self) -> None:
        """The current step's column: a bold header, the cells keep their colours."""
        for table, index in ((self.probes_a, self.index), (self.probes_b, self.index_b())):
            for column in range(table.columnCount()):
                header = table.horizontalHeaderItem(column)
                if header is not None:
                    font = header.font()
                    font.setBold(column == index)
                    font.setUnderline(column == index)
                    header.setFont(font)

    def _fill_probes(self) -> None:
        any_probes = False
        for title, table, run in zip(self.probe_titles, (self.probes_a, self.probes_b), (self.a, self.b)):
            table.setVisible(run is not None)
            title.setVisible(run is not None)
            if run is None:
                continue
            title.setText(run.label)
            scores, right = run.probes
            names = run.inspection.probe_names()
            any_probes |= bool(len(names))
            steps = run.inspection.steps
            table.setRowCount(len(names))
            table.setColumnCount(len(steps))
            table.setHorizontalHeaderLabels([f"{s:,}" for s in steps])
            table.setVerticalHeaderLabels(names)
            for r in range(len(names)):
                for c in range(len(steps)):
                    value = scores[r, c]
                    item = QTableWidgetItem("" if not np.isfinite(value) else f"{value:.1f}")
                    item.setBackground(QBrush(QColor("#b7e1a1" if right[r, c] else "#f4b6b6")))
                    item.setToolTip(f"{names[r]}\nstep {steps[c]:,}: score {value:.3f}, "
                                    f"{'right' if right[r, c] else 'wrong'}")
                    table.setItem(r, c, item)
            table.resizeColumnsToContents()
        self.probe_note.setText(
            "Each cell: a probe's score at a snapshot (fill: ln p(answer); minimal pair: PLL(good) − PLL(bad); "
            "pair: ln p(expected label)); green = right, red = wrong." if any_probes else
            "This run has no probes: set inspect.probes to a probe file (JSONL or TSV, see the README), or score "
            "one on its checkpoints with `pretrain-workbench inspect RUN --from-checkpoints --probes FILE`. Runs "
            "on the built-in sample corpus get the built-in probes.")

    def _fill_syntax(self) -> None:
        accuracy, baseline = self.a.inspection.syntax()
        if not np.isfinite(baseline).any():
            return
        plot = self.syntax_plot
        plot.clear()
        plot.addItem(plot.cursor, ignoreBounds=True)
        for run, style in ((self.a, {}), (self.b, PEN_B)):
            if run is None:
                continue
            acc, base = run.inspection.syntax()
            x = step_axis(run.inspection.steps)
            plot.plot(x, np.nanmax(acc.reshape(len(x), -1), axis=1), pen=pg.mkPen("#4e79a7", width=2, **style),
                      name="best head" if run is self.a else None)
            plot.plot(x, base, pen=pg.mkPen("#888888", width=2, **style), name="best offset" if run is self.a else None)

    def _draw_syntax(self) -> None:
        accuracy, baseline = self.a.inspection.syntax()
        has = bool(np.isfinite(baseline).any())
        self.syntax_table.setVisible(has)
        self.syntax_plot.setVisible(has)
        if not has:
            self.syntax_note.setText("No treebank: set inspect.treebank to a CoNLL-U file of the corpus' language "
                                     "(or `pretrain-workbench inspect RUN --from-checkpoints --treebank FILE`) to "
                                     "see how often each head's strongest attention goes to a word's dependency head.")
            return
        now = accuracy[self.index]
        self.syntax_note.setText(f"At step {self.a.inspection.steps[self.index]:,}: the best head finds the "
                                 f"dependency head of {np.nanmax(now):.0%} of words; always taking the best fixed "
                                 f"offset finds {baseline[self.index]:.0%}.")
        L, nh = now.shape
        self.syntax_table.setRowCount(L)
        self.syntax_table.setColumnCount(nh)
        self.syntax_table.setVerticalHeaderLabels([f"layer {l}" for l in range(L)])
        self.syntax_table.setHorizontalHeaderLabels([f"head {h}" for h in range(nh)])
        for l in range(L):
            for h in range(nh):
                item = QTableWidgetItem(f"{now[l, h]:.0%}")
                better = now[l, h] > baseline[self.index]
                item.setBackground(QBrush(QColor("#b7e1a1" if better else "#f0f0f0")))
                self.syntax_table.setItem(l, h, item)
        self._cursor_at(self.syntax_plot)

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
            columns, rows = table(self.a.inspection, view, self.index, self.neighbour_word.text().strip().lower(),
                                  self.in_context.isChecked())
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
