"""Corpus: choose text (files, a folder, drag-and-drop, or the built-in sample), prepare it, see its statistics.

The tokenizer fields edit the window's one config (``RunSettings``: its ``[tokenizer]`` section), and
preparing uses that config's ``[tokenizer]`` and ``[data]`` sections, so "New run from config" prepares a
recorded run's dataset again exactly. Preparing runs ``prepare_dataset`` on a background thread (the window
owns it) with a progress bar and Cancel. The statistics and findings shown are the
dataset's own ``stats.json``; a bad file is reported by name in a dialog and the
panel stays usable.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import html
import json
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QListWidget, QProgressBar, QPushButton,
    QVBoxLayout, QWidget,
)

from workbench.config import WorkbenchConfig
from workbench.errors import ConfigError
from workbench.gui.run_settings import RunSettings
from workbench.gui.setting_fields import number_field
from workbench.data.corpus import CORPUS_SUFFIXES
from workbench.data.tokenizer_sample import describe_training
from workbench.data.diagnostics import Diagnostics
from workbench.user_folders import datasets_folder

SAMPLE = "built-in sample (Python's documentation)"
CORPUS_FILTER = f"Corpus files ({' '.join('*' + suffix for suffix in CORPUS_SUFFIXES)});;All files (*)"


def dataset_dir_for(sources: list[str], sample: bool, config: WorkbenchConfig, root: Path | None = None) -> Path:
    """A stable dataset folder per (sources, ``[tokenizer]``, how ``[data]`` reads text): preparing again with
    the same settings finds it; different settings never overwrite another's dataset."""
    data = config.data
    reading = [data.sentences, data.split_lines_longer_than, data.text_field, data.encoding_errors, data.max_seq_length]
    key = json.dumps([sorted(sources), sample, dataclasses.asdict(config.tokenizer), reading])
    name = "sample" if sample and not sources else Path(sources[0]).stem if sources else "corpus"
    return (root or datasets_folder()) / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


class CorpusPanel(QWidget):
    prepare_requested = Signal(list, bool, str, object)   # sources, sample, out dir, WorkbenchConfig
    cancel_requested = Signal()

    def __init__(self, settings: RunSettings | None = None, parent=None, datasets_root: Path | None = None):
        super().__init__(parent)
        self.setObjectName("corpusPanel")
        self.settings = settings or RunSettings(parent=self)
        self.setAcceptDrops(True)
        self.datasets_root = datasets_root
        self.sources: list[str] = []
        self.use_sample = True

        self.source_list = QListWidget(objectName="corpusSources")
        self.source_list.setMaximumHeight(70)
        self.source_list.setToolTip(f"Drop corpus files ({' '.join(CORPUS_SUFFIXES)}) or folders here")
        sample = QPushButton("Sample corpus", objectName="sampleButton")
        sample.setToolTip("Python's own documentation: several MB of English prose, built offline")
        files = QPushButton("Open files…", objectName="openFilesButton")
        folder = QPushButton("Open folder…", objectName="openFolderButton")
        choose = QHBoxLayout()
        for button in (sample, files, folder):
            choose.addWidget(button)

        self.vocab_size = number_field("tokenizer.vocab_size")
        self.vocab_size.setObjectName("vocabSize")
        self.vocab_size.setSingleStep(1024)
        self.sample_mb = number_field("tokenizer.sample_mb")
        self.sample_mb.setObjectName("tokenizerSampleMb")
        self.sample_mb.setSuffix(" MB")
        self.sample_mb.setSpecialValueText("whole corpus")  # shown for 0
        self.sample_mb.setSingleStep(64)
        self.sample_mb.setToolTip("A larger corpus trains its tokenizer on a sample of this size, taken evenly "
                                  "from 64 stretches of it (the same bytes every time); it is tokenized whole. "
                                  "0: train on the whole corpus.")
        self.lowercase = QCheckBox("lowercase (uncased)", objectName="lowercaseCheck")
        tokenizer_button = QPushButton("Use tokenizer file…", objectName="tokenizerFileButton")
        tokenizer_button.setToolTip("Load a tokenizer.json or BERT vocab.txt instead of training one")
        self.tokenizer_label = QLabel("", objectName="tokenizerLabel")
        self.clear_tokenizer = QPushButton("Train one instead", objectName="trainTokenizerButton")
        self.clear_tokenizer.setToolTip("Train a WordPiece tokenizer on the corpus (forget the tokenizer file)")
        tok_form = QFormLayout()
        tok_form.addRow("Vocabulary", self.vocab_size)
        tok_form.addRow("Train on at most", self.sample_mb)
        tok_form.addRow("", self.lowercase)
        file_row = QHBoxLayout()
        file_row.addWidget(self.tokenizer_label, 1)
        file_row.addWidget(self.clear_tokenizer)
        tok_form.addRow(tokenizer_button, file_row)
        tokenizer_box = QGroupBox("Tokenizer")
        tokenizer_box.setLayout(tok_form)

        self.prepare_button = QPushButton("Prepare", objectName="prepareButton")
        self.cancel_button = QPushButton("Cancel", objectName="cancelPrepareButton")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar(objectName="prepareProgress")
        self.progress.setRange(0, 1000)
        self.progress.setFormat("")
        run_row = QHBoxLayout()
        run_row.addWidget(self.prepare_button)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.progress, 1)

        self.stats = QLabel("No dataset yet.", objectName="corpusStats")
        self.stats.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.stats.setWordWrap(True)
        self.histogram = pg.PlotWidget(title="Tokens per sentence")
        self.histogram.setMinimumHeight(140)
        self.histogram.setLabel("bottom", "tokens")
        self.histogram.setLabel("left", "sentences")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.9, brush=(31, 119, 180))
        self.histogram.addItem(self.bars)
        self.max_line = pg.InfiniteLine(angle=90, pen=pg.mkPen((214, 39, 40), style=Qt.DashLine))
        self.histogram.addItem(self.max_line)
        self.findings = QListWidget(objectName="corpusFindings")
        self.findings.setMaximumHeight(90)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Text to train on:"))
        layout.addWidget(self.source_list)
        layout.addLayout(choose)
        layout.addWidget(tokenizer_box)
        layout.addLayout(run_row)
        layout.addWidget(self.stats)
        layout.addWidget(self.histogram, 1)
        layout.addWidget(QLabel("Findings:"))
        layout.addWidget(self.findings)

        sample.clicked.connect(self.choose_sample)
        files.clicked.connect(self.open_files)
        folder.clicked.connect(self.open_folder)
        tokenizer_button.clicked.connect(self._open_tokenizer)
        self.clear_tokenizer.clicked.connect(lambda: self.settings.set("tokenizer", "path", ""))
        self.vocab_size.valueChanged.connect(lambda value: self.settings.set("tokenizer", "vocab_size", value))
        self.sample_mb.valueChanged.connect(lambda value: self.settings.set("tokenizer", "sample_mb", value))
        self.lowercase.toggled.connect(self._set_lowercase)
        self.settings.changed.connect(self._settings_changed)
        self._settings_changed("")
        self.prepare_button.clicked.connect(self.request_prepare)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.choose_sample()

    # --- choosing -------------------------------------------------------------------------------

    def choose_sample(self) -> None:
        self.set_sources([], sample=True)

    def set_sources(self, sources: list[str], sample: bool = False) -> None:
        self.sources, self.use_sample = list(sources), sample
        self.source_list.clear()
        if sample:
            self.source_list.addItem(SAMPLE)
        self.source_list.addItems(self.sources)

    def open_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open corpus files", "", CORPUS_FILTER)
        if paths:
            self.set_sources(paths)

    def open_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open corpus folder")
        if path:
            self.set_sources([path])

    def _open_tokenizer(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Tokenizer", "", "Tokenizers (tokenizer.json vocab.txt *.json *.txt)")
        if path:
            self.settings.set("tokenizer", "path", path)

    def _set_lowercase(self, lowercase: bool) -> None:
        self.settings.set("tokenizer", "lowercase", lowercase)
        self.settings.set("tokenizer", "strip_accents", lowercase)     # an uncased BERT strips accents too

    def _settings_changed(self, key: str) -> None:
        """Show the config's ``[tokenizer]`` (signals blocked, so nothing echoes back)."""
        if key and not key.startswith("tokenizer."):
            return
        tokenizer = self.settings.config.tokenizer
        for widget, show in ((self.vocab_size, lambda: self.vocab_size.setValue(tokenizer.vocab_size)),
                             (self.sample_mb, lambda: self.sample_mb.setValue(tokenizer.sample_mb)),
                             (self.lowercase, lambda: self.lowercase.setChecked(tokenizer.lowercase))):
            widget.blockSignals(True)
            show()
            widget.blockSignals(False)
        self.vocab_size.setEnabled(not tokenizer.path)
        self.sample_mb.setEnabled(not tokenizer.path)
        self.lowercase.setEnabled(not tokenizer.path)
        self.clear_tokenizer.setVisible(bool(tokenizer.path))
        self.tokenizer_label.setText(Path(tokenizer.path).name if tokenizer.path
                                     else "train a WordPiece tokenizer on the corpus")

    @property
    def tokenizer_file(self) -> str:
        return self.settings.config.tokenizer.path

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            self.set_sources(paths)
            event.acceptProposedAction()

    # --- preparing ----------------------------------------------------------------------------------

    def request_prepare(self) -> None:
        """Prepare the chosen text with the config's ``[tokenizer]`` and ``[data]`` sections."""
        config = copy.deepcopy(self.settings.config)
        try:
            config.tokenizer.validate()
            config.data.validate()
        except ConfigError as exc:
            self.progress.setFormat(f"cannot prepare: {exc}")
            return
        out = dataset_dir_for(self.sources, self.use_sample, config, self.datasets_root)
        self.prepare_requested.emit(self.sources, self.use_sample, str(out), config)

    def set_busy(self, busy: bool) -> None:
        self.prepare_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        if busy:
            self.progress.setValue(0)
            self.progress.setFormat("starting…")

    def show_progress(self, stage: str, done: int, total: int) -> None:
        labels = {"sample": "building the sample corpus", "train-tokenizer": "counting words for the tokenizer",
                  "build-vocabulary": "building the vocabulary", "resume": "resuming where the last prepare stopped",
                  "tokenize": "tokenizing"}
        fraction = done / total if total else 1.0
        self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(f"{labels.get(stage, stage)}  {fraction:.0%}")

    def show_dataset(self, dataset) -> None:
        stats = dataset.stats
        counts = stats["counts"]
        tokenizer = dataset.manifest["tokenizer"]
        sentence = stats["sentence_tokens"]
        self.stats.setText(
            f"<b>{counts['documents']:,}</b> documents · <b>{counts['sentences']:,}</b> sentences · "
            f"<b>{counts['tokens']:,}</b> tokens · {counts['bytes'] / 1e6:.1f} MB on disk<br>"
            f"WordPiece, {tokenizer['vocab_size']:,} tokens, {'uncased' if tokenizer['lowercase'] else 'cased'} · "
            f"[UNK] {stats['unknown_token_share']:.2%} of tokens<br>"
            f"tokens per sentence: mean {sentence['mean']:.1f}, median {sentence['p50']}, p99 {sentence['p99']}, "
            f"max {sentence['max']} · sentences per document: median {stats['document_sentences']['p50']}<br>"
            f"<i>{html.escape(describe_training(dataset.manifest))}</i>")
        heights = np.asarray(sentence["histogram"], dtype=float)
        self.bars.setOpts(x=np.arange(len(heights)), height=heights, width=0.9, brush=(31, 119, 180), pen=None)
        self.max_line.setValue(stats.get("max_seq_length", 128) - 3)
        self.max_line.setToolTip("max_seq_length - 3: longer sentences are truncated")
        self.findings.clear()
        lines = Diagnostics.from_dict(stats["diagnostics"]).lines()
        self.findings.addItems(lines or ["nothing to report"])
        self.progress.setValue(1000)
        self.progress.setFormat(f"ready: {dataset.path.name}")


if __name__ == "__main__":  # python -m workbench.gui.panels.corpus_panel: the panel on its own
    import sys

    from workbench.gui.standalone import run_alone

    sys.exit(run_alone(CorpusPanel))
