"""What was learned when: a held-out passage coloured by surprisal, surprisal by token class, the stage meter,
and every word of the pack with its curve and the step it was learned."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QSpinBox, QTableWidget, QTableWidgetItem, QTextBrowser, QVBoxLayout, QWidget

from workbench.gui.inspect.tab import InspectTab, clear_plot, move_cursors, step_axis, steps_plot
from workbench.gui.inspect.widgets import surprisal_html
from workbench.gui.table_items import NumberItem

CLASS_COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1"]
WORD_ROWS = 2000           # of the word table (a pack has a few hundred token types)


class LearnedTab(InspectTab):
    title = "What was learned when"

    def __init__(self, panel):
        super().__init__(panel)
        self.row = QSpinBox(objectName="inspectPassageRow")
        self.row.setPrefix("held-out passage ")
        self.row.valueChanged.connect(lambda _: self.draw_passage())
        self.passage = QTextBrowser(objectName="inspectPassage")
        self.search = QLineEdit(objectName="inspectWordSearch")
        self.search.setPlaceholderText("search words…")
        self.search.textChanged.connect(lambda _: self.fill_words())
        self.words = QTableWidget(0, 5, objectName="inspectWords")
        self.words.setHorizontalHeaderLabels(["word", "in pack", "frequency rank", "learned at step", "surprisal now"])
        self.words.verticalHeader().setVisible(False)
        self.words.setSortingEnabled(True)
        self.words.sortByColumn(2, Qt.AscendingOrder)            # the most frequent words first
        self.words.itemSelectionChanged.connect(self.draw_word_curves)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(self.row)
        left_layout.addWidget(self.passage, 2)
        left_layout.addWidget(self.search)
        left_layout.addWidget(self.words, 3)
        self.class_plot = steps_plot("Surprisal by token class (held-out probe pack)", "nats")
        self.stage_plot = steps_plot("Stage meter: distance of the predictions from corpus statistics",
                                     "Jensen-Shannon (bits)")
        self.word_plot = steps_plot("Selected words", "nats")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        for plot in (self.class_plot, self.stage_plot, self.word_plot):
            right_layout.addWidget(plot, 1)
        self.set_sides(left, right, (460, 460))

    def runs_loaded(self) -> None:
        self.row.setRange(0, len(self.panel.a.inspection.pack.input_ids) - 1)
        self.fill_words()

    def draw_runs(self) -> None:
        clear_plot(self.class_plot)
        clear_plot(self.stage_plot)
        for run, _, style in self.runs():
            x = step_axis(run.inspection.steps)
            first = run is self.panel.a
            for colour, (name, curve) in zip(CLASS_COLOURS, run.classes.items()):
                if np.isfinite(curve).any():
                    self.class_plot.plot(x, curve, pen=pg.mkPen(colour, width=2, **style), name=name if first else None)
            suffix = "" if first else f" ({run.label})"
            self.stage_plot.plot(x, run.stages["unigram"], pen=pg.mkPen("#e15759", width=2, **style),
                                 name=f"to the unigram{suffix}")
            self.stage_plot.plot(x, run.stages["bigram"], pen=pg.mkPen("#4e79a7", width=2, **style),
                                 name=f"to the bigram{suffix}")
        self.draw_word_curves()

    def draw_step(self) -> None:
        self.draw_passage()
        self.fill_word_now()
        move_cursors(int(self.panel.a.inspection.steps[self.panel.index]), self.class_plot, self.stage_plot,
                     self.word_plot)

    def draw_passage(self) -> None:
        """Run A's passage at its step; below it run B's at the matched step when both share the probe pack
        (runs of one dataset), so the same words can be compared."""
        parts = []
        for run, index, _ in (self.runs() if self.panel.a is not None else []):
            inspection = run.inspection
            row = self.row.value()
            if run is not self.panel.a:
                if not np.array_equal(inspection.pack.input_ids, self.panel.a.inspection.pack.input_ids):
                    parts.append(f"<p><i>{run.label}: another probe pack (another dataset), no passage to "
                                 "compare</i></p>")
                    continue
            snapshot = inspection.snapshots[index]
            tokens = [str(inspection.pack.tokens[t]) for t in inspection.pack.input_ids[row]]
            guesses = [str(inspection.pack.tokens[g]) if g >= 0 else "" for g in snapshot.top1[row]]
            heading = f"<p><b>{run.label}</b>, step {inspection.steps[index]:,}</p>" if self.panel.b is not None else ""
            parts.append(heading + surprisal_html(tokens, inspection.surprisal(index)[row], guesses))
        self.passage.setHtml("".join(parts))

    def fill_words(self) -> None:
        if self.panel.a is None:
            return
        needle = self.search.text().strip().lower()
        shown = [w for w in self.panel.a.words if needle in w.token.lower()][:WORD_ROWS]
        self.words.setSortingEnabled(False)
        self.words.setRowCount(len(shown))
        for r, word in enumerate(shown):
            learned = word.learned_step
            self.words.setItem(r, 0, QTableWidgetItem(word.token))
            self.words.setItem(r, 1, NumberItem(word.occurrences, f"{word.occurrences}"))
            self.words.setItem(r, 2, NumberItem(word.frequency_rank, f"{word.frequency_rank:,}"))
            self.words.setItem(r, 3, NumberItem(learned if learned is not None else math.inf,
                                                f"{learned:,}" if learned is not None else "not yet"))
            self.words.setItem(r, 4, NumberItem(0.0, ""))
        self.words.setSortingEnabled(True)
        self.fill_word_now()
        self.words.resizeColumnsToContents()

    def fill_word_now(self) -> None:
        """The "surprisal now" column, in place: the items keep their rows while their values change."""
        panel = self.panel
        if panel.a is None:
            return
        sorting = self.words.isSortingEnabled()
        self.words.setSortingEnabled(False)
        for r in range(self.words.rowCount()):
            word = panel.a.word_index.get(self.words.item(r, 0).text())
            item = self.words.item(r, 4)
            if word is not None and item is not None:
                item.value = float(word.surprisal[panel.index])
                item.setText(f"{item.value:.2f}")
        self.words.setSortingEnabled(sorting)

    def draw_word_curves(self) -> None:
        clear_plot(self.word_plot)
        if self.panel.a is None:
            return
        rows = sorted({i.row() for i in self.words.selectedIndexes()})[:8]
        for k, r in enumerate(rows):
            token = self.words.item(r, 0).text()
            colour = pg.intColor(k, hues=8)
            for run, _, style in self.runs():
                word = run.word_index.get(token)
                if word is not None:
                    self.word_plot.plot(step_axis(run.inspection.steps), word.surprisal,
                                        pen=pg.mkPen(colour, width=2, **style),
                                        name=token if run is self.panel.a else None)
