"""Masking preview: a real training example drawn token by token, and the rates masking really produces.

The panel edits the window's one ``RunSettings`` (masking, pair task and
length; the seed, batch size and accumulation come from the Training form).
Example ``k`` is row ``k % m`` of micro-batch ``k // m`` (m = pairs per forward
pass) of ``training_stream(...)`` for rank 0 of the chosen number of processes -
the very pair and the very mask the trainer feeds its model - drawn as
coloured chips: [MASK] (with the original), random replacement (new <- original),
kept-but-predicted, and unselected tokens of segment A and B, with the
IsNext/NotNext label. Every option re-draws at once; the rates are measured
over a couple of thousand examples with ``realised_statistics``. With a model
loaded, each predicted position shows its top guesses, right ones in green,
the example's accuracy by kind ([MASK], random, kept) next to the model's
accuracy by kind on the fixed evaluation set (scored on a worker thread), and -
"before / after" - the guesses of an earlier checkpoint of the same run (or of
the fresh weights) beside the loaded one's.
"""

from __future__ import annotations

import html
import threading

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton,
    QSpinBox, QTextBrowser, QVBoxLayout, QWidget,
)

from workbench.config import WorkbenchConfig
from workbench.data.masking import KEPT, MASKED, NOT_SELECTED, RANDOM
from workbench.errors import WorkbenchError
from workbench.gui.masking_html import COLORS, accuracy_by_kind, by_kind_text, chip, example_html, pair_label
from workbench.gui.run_settings import RunSettings
from workbench.gui.setting_fields import choice_field, number_field
from workbench.gui.workers import in_background

STAT_ROWS = (
    ("selected / non-special", "selected_fraction", "probability"),
    ("of which [MASK]", "mask_fraction", "mask_fraction"),
    ("of which random", "random_fraction", "random_fraction"),
    ("of which kept", "keep_fraction", "keep_fraction"),
    ("IsNext pairs", "is_next_fraction", "is_next_fraction"),
    ("predictions / sequence", "mean_selected_per_sequence", None),
    ("padding share", "padding_fraction", None),
    ("pairs truncated", "truncated_fraction", None),
)


def same_vocabulary(tokenizer, dataset) -> bool:
    """Whether ``tokenizer`` maps every token to the id ``dataset`` uses (the same size is not enough:
    training a tokenizer twice on the same text can give a different vocabulary)."""
    tokens = dataset.vocabulary.tokens
    return tokenizer.get_vocab_size() == len(tokens) and \
        all(tokenizer.id_to_token(i) == token for i, token in enumerate(tokens))


class MaskingPanel(QWidget):
    """Longer than the house's ~400 lines for a class, for a reason: the fields, the example on display, the
    loaded and "before" models' guesses, accuracy by kind and the measured statistics are one view of one
    example, and each redraws when the stream of pairs changes. The HTML is out (``gui/masking_html.py``),
    and every pass over the data or a model runs on a worker."""

    options_changed = Signal()

    def __init__(self, settings: RunSettings | None = None, parent=None):
        super().__init__(parent)
        self.setObjectName("maskingPanel")
        self.settings = settings or RunSettings(parent=self)
        self.dataset = None
        self.model = None
        self.tokenizer = None
        self.checkpoint = None        # the loaded model's checkpoint folder, when it came from a run
        self.before = None            # (label, model) whose guesses are shown beside the loaded model's
        self.eval_by_kind: dict | None = None
        self.example_kinds = ""       # accuracy by kind of the example on display (HTML)
        self.stream = None
        self.stream_lock = threading.Lock()   # one worker at a time cuts batches from the cached stream
        self.drawn_request = self.draw_request = 0   # the example asked for last, and the one on display
        self.micro_batch_index = 0
        self.stats_job = None         # (dataset, config, micro-batch) of the statistics last asked for
        self.last_stats: dict = {}
        self.current = None  # (batch, row) on display
        self.prediction_job = None    # (batch, row, model, before) whose guesses are being computed

        self.bound: dict[str, QWidget] = {}
        self.probability = self._spin("masking.probability")
        self.final_probability = self._spin("masking.final_probability")
        self.final_probability.setSpecialValueText("constant")   # shown for 0
        self.final_probability.setToolTip("The masking rate falls linearly from Probability to this over the run "
                                          "(by steps or time, as the learning rate); \"constant\" keeps it")
        self.mask_fraction = self._spin("masking.mask_fraction")
        self.random_fraction = self._spin("masking.random_fraction")
        self.selection = self._combo("masking.selection")
        self.strategy = self._combo("masking.strategy")
        self.max_predictions = self._int("masking.max_predictions_per_seq")
        self.max_predictions.setSpecialValueText("no cap")   # shown for 0
        self.objective = self._combo("nsp.objective")
        self.max_length = self._int("data.max_seq_length")
        self.example = QSpinBox(objectName="exampleIndex")
        self.example.setRange(0, 10_000_000)
        self.example.valueChanged.connect(self._schedule_example)
        self.example.setToolTip("Index of the training example: batch = index // batch size")
        options = QGridLayout()
        cells = (("Probability", self.probability), ("Falls to", self.final_probability),
                 ("[MASK] share", self.mask_fraction),
                 ("Random share", self.random_fraction), ("Selection", self.selection),
                 ("Units", self.strategy), ("Max predictions", self.max_predictions),
                 ("Pair task", self.objective), ("Max length", self.max_length),
                 ("Example", self.example))
        for i, (label, widget) in enumerate(cells):
            options.addWidget(QLabel(label), i // 5 * 2, i % 5)
            options.addWidget(widget, i // 5 * 2 + 1, i % 5)
        next_button = QPushButton("Next example", objectName="nextExampleButton")
        next_button.setShortcut("Ctrl+N")
        self.show_predictions = QCheckBox("Model predictions", objectName="predictionsCheck")
        self.show_predictions.setToolTip("Top guesses of the loaded checkpoint at each predicted position")
        self.show_predictions.setEnabled(False)
        self.before_choice = QComboBox(objectName="beforeCombo")
        self.before_choice.setToolTip("Before / after: show this model's top guess beside the loaded one's")
        self.before_choice.setEnabled(False)
        self.before_choice.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.before_choice.addItem("no comparison")
        row = QHBoxLayout()
        row.addWidget(next_button)
        row.addWidget(self.show_predictions)
        row.addWidget(QLabel("before:"))
        row.addWidget(self.before_choice)
        row.addStretch(1)
        row.addWidget(self._legend())

        self.view = QTextBrowser(objectName="maskingView")
        self.view.setOpenLinks(False)
        self.header = QLabel("Prepare a dataset to see its training examples.", objectName="exampleHeader")
        self.header.setWordWrap(True)
        self.eval_line = QLabel("", objectName="evalByKind")
        self.eval_line.setWordWrap(True)
        self.eval_line.setVisible(False)

        self.stats_labels: dict[str, QLabel] = {}
        stats = QGridLayout()
        for i, (title, key, _) in enumerate(STAT_ROWS):
            label = QLabel("-")
            label.setObjectName(f"stat_{key}")
            self.stats_labels[key] = label
            stats.addWidget(QLabel(title), i % 4, (i // 4) * 2)
            stats.addWidget(label, i % 4, (i // 4) * 2 + 1)
        stats.setColumnStretch(1, 1)
        stats.setColumnStretch(3, 1)
        stats_box = QGroupBox("Realised over 2,000 training examples (configured in brackets)")
        stats_box.setLayout(stats)

        layout = QVBoxLayout(self)
        layout.addLayout(options)
        layout.addLayout(row)
        layout.addWidget(self.header)
        layout.addWidget(self.eval_line)
        layout.addWidget(self.view, 1)
        layout.addWidget(stats_box)

        self.redraw_timer = QTimer(self, singleShot=True, interval=30)
        self.redraw_timer.timeout.connect(self.redraw)
        self.stats_timer = QTimer(self, singleShot=True, interval=250)
        self.stats_timer.timeout.connect(lambda: self.measure(background=True))
        next_button.clicked.connect(lambda: self.example.setValue(self.example.value() + 1))
        self.show_predictions.toggled.connect(self._schedule_example)
        self.before_choice.currentIndexChanged.connect(self._choose_before)
        self.settings.changed.connect(self._settings_changed)
        self.refresh()

    # --- widgets ----------------------------------------------------------------------------------

    def _changed(self) -> None:
        self.stream = None
        self._schedule_example()
        self.stats_timer.start()
        self.options_changed.emit()

    # Settings that change the stream of training pairs (the preview redraws when one of them changes).
    STREAM_KEYS = ("masking.", "nsp.", "data.max_seq_length", "train.seed", "train.batch_size",
                   "train.gradient_accumulation_steps", "processes")

    def _settings_changed(self, key: str) -> None:
        if key == "" or any(key.startswith(prefix) for prefix in self.STREAM_KEYS):
            self.refresh()
            self._changed()

    def refresh(self) -> None:
        """Show the settings in the fields (signals blocked, so nothing echoes back)."""
        for key, widget in self.bound.items():
            value = self.settings.get(*key.split("."))
            widget.blockSignals(True)
            if isinstance(widget, QComboBox):
                widget.setCurrentIndex(max(0, widget.findText(str(value))))
            else:
                widget.setValue(value)
            widget.blockSignals(False)

    def _schedule_example(self, *_) -> None:
        self.redraw_timer.start()

    def _bind(self, widget: QWidget, key: str, signal) -> QWidget:
        widget.setObjectName(key.replace(".", "_"))
        self.bound[key] = widget
        section, name = key.split(".")
        signal.connect(lambda value: self.settings.set(section, name, value))
        return widget

    def _spin(self, key) -> QDoubleSpinBox:
        widget = number_field(key, decimals=2)
        widget.setSingleStep(0.01)
        return self._bind(widget, key, widget.valueChanged)

    def _int(self, key) -> QSpinBox:
        widget = number_field(key)
        return self._bind(widget, key, widget.valueChanged)

    def _combo(self, key) -> QComboBox:
        widget = choice_field(key)
        return self._bind(widget, key, widget.currentTextChanged)

    def _legend(self) -> QLabel:
        legend = QLabel(" ".join([
            chip("[MASK]", *COLORS[MASKED]), chip("random", *COLORS[RANDOM]), chip("kept", *COLORS[KEPT]),
            chip("segment A", *COLORS["A"]), chip("segment B", *COLORS["B"])]), objectName="maskingLegend")
        legend.setTextFormat(Qt.RichText)
        return legend

    # --- config <-> widgets ------------------------------------------------------------------------

    def load_config(self, config: WorkbenchConfig) -> None:
        """Take every setting from ``config`` (the window's one config is replaced; every panel redraws)."""
        self.settings.replace(config)

    def set_dataset(self, dataset) -> None:
        self.dataset = dataset
        self._changed()

    def set_model(self, model, tokenizer, checkpoint=None) -> None:
        """A model to show predictions from (None to forget it); its vocabulary must be the dataset's.

        ``checkpoint`` (the folder it was loaded from, when it belongs to a run) offers the run's other
        checkpoints and its fresh weights as the "before" of a before/after view."""
        self.model, self.tokenizer, self.checkpoint = model, tokenizer, checkpoint
        usable = model is not None and self.dataset is not None and same_vocabulary(tokenizer, self.dataset)
        self.show_predictions.setEnabled(usable)
        if usable:
            self.show_predictions.setChecked(True)
        self._offer_before(usable)
        self.eval_by_kind = None
        self.eval_line.setVisible(model is not None and self.dataset is not None)
        if model is not None and self.dataset is not None and not usable:
            self.eval_line.setText("The loaded model's vocabulary is not this dataset's: its guesses are shown for "
                                   "a dataset prepared with the model's tokenizer (Corpus → Use tokenizer file…).")
        if usable:
            self._score_eval_set()
        self._schedule_example()

    def _offer_before(self, usable: bool) -> None:
        from workbench.checkpoint import list_checkpoints, step_of

        self.before = None
        self.before_choice.blockSignals(True)
        self.before_choice.clear()
        self.before_choice.addItem("no comparison", None)
        if usable and self.checkpoint is not None:
            for folder in list_checkpoints(self.checkpoint.parent.parent):
                if folder.name != self.checkpoint.name:
                    self.before_choice.addItem(f"step {step_of(folder)}", str(folder))
            self.before_choice.addItem("fresh weights (step 0)", "fresh")
        self.before_choice.setEnabled(self.before_choice.count() > 1)
        self.before_choice.blockSignals(False)
        # The earliest other checkpoint is the natural "before".
        self.before_choice.setCurrentIndex(1 if self.before_choice.count() > 1 else 0)

    def _choose_before(self, index: int) -> None:
        """Load the model to compare against (an earlier checkpoint, or the run's initial weights) on a worker."""
        choice, label = self.before_choice.itemData(index), self.before_choice.itemText(index)
        self.before = None
        if choice is None:
            self._schedule_example()
            return

        def loaded(model) -> None:
            if self.before_choice.currentIndex() == index:       # still the one chosen
                self.before = (label, model)
                self._schedule_example()

        in_background(lambda: self._load_before(choice), "masking-before", then=loaded,
                      failed=lambda message: self.header.setText(f"Cannot load {label}: {message}"))

    def _load_before(self, choice: str):
        from workbench.interop.huggingface import load_for_inference

        if choice != "fresh":
            return load_for_inference(choice)[0]
        import torch

        from workbench.model import build_model
        from workbench.checkpoint import checkpoint_config

        config = checkpoint_config(self.checkpoint)
        torch.manual_seed(config.train.seed)       # the run's own initial weights (it seeds the same way)
        return build_model(config.model.resolved(vocab_size=self.tokenizer.get_vocab_size())).eval()

    def _score_eval_set(self) -> None:
        model, dataset = self.model, self.dataset
        try:
            config = self.config()
        except WorkbenchError as exc:
            self.eval_line.setText(str(exc))
            return

        def score():
            from workbench.train.evaluation import accuracy_by_kind, build_eval_set

            try:
                eval_set = build_eval_set(dataset, config)
                return accuracy_by_kind(model, eval_set.batches) if eval_set else "no held-out documents"
            except (WorkbenchError, RuntimeError, ValueError) as exc:
                return str(exc)

        in_background(score, "eval-by-kind", then=lambda result: self._show_eval(model, result))

    def _show_eval(self, model, result) -> None:
        if model is not self.model:
            return                      # scored for a model no longer loaded
        if isinstance(result, str):
            self.eval_line.setText(f"Evaluation set: {html.escape(result)}")
            return
        self.eval_by_kind = result
        self._show_kind_line()

    def _show_kind_line(self) -> None:
        """"Accuracy by kind - this example: ... · evaluation set: ..." (what is known so far)."""
        if self.model is None or not self.show_predictions.isEnabled():
            return
        parts = []
        if self.example_kinds:
            parts.append(f"<b>this example</b> {self.example_kinds}")
        if self.eval_by_kind is not None:
            parts.append("<b>evaluation set</b> (fixed held-out pairs, standard 15% masking) "
                         + by_kind_text(self.eval_by_kind))
        else:
            parts.append("scoring the evaluation set…")
        self.eval_line.setText("Top-1 accuracy by kind: " + " &nbsp;·&nbsp; ".join(parts))

    # --- drawing ------------------------------------------------------------------------------------

    def config(self) -> WorkbenchConfig:
        """The window's config, validated (raises ConfigError with the CLI's message)."""
        return self.settings.validated()

    @property
    def micro_batch(self) -> int:
        """Pairs per forward pass of one training process (1 while the settings are invalid)."""
        from workbench.data.batches import micro_batch_size

        try:
            return micro_batch_size(self.settings.config, self.settings.processes)
        except WorkbenchError:
            return 1

    @property
    def drawing(self) -> bool:
        """An example is being cut on a worker (``redraw``)."""
        return self.drawn_request != self.draw_request

    def redraw(self) -> None:
        """Show the example the index names. A new stream plans the epoch's pairs (a pass over the dataset),
        so the stream is built and the batch cut on a worker thread; the example is drawn when it arrives."""
        from workbench.data.batches import training_stream

        if self.dataset is None:
            return
        try:
            config = self.config()
        except WorkbenchError as exc:
            self.header.setText(str(exc))
            self.view.clear()
            return
        self.draw_request += 1
        request, stream, dataset = self.draw_request, self.stream, self.dataset
        processes, example = self.settings.processes, self.example.value()

        def cut():
            with self.stream_lock:
                cut_from = stream or training_stream(dataset, config, 0, processes)
                examples = cut_from.batches_per_epoch(0) * cut_from.batch_size     # rank 0's share of the epoch
                if examples == 0:
                    return cut_from, None
                index = example % examples
                return cut_from, (cut_from.batch(0, index // cut_from.batch_size), index % cut_from.batch_size,
                                  index // cut_from.batch_size)

        in_background(cut, "masking-example", then=lambda result: self._draw(request, *result),
                      failed=lambda message: self._draw_failed(request, message))

    def _draw(self, request: int, stream, example) -> None:
        if request != self.draw_request:
            return                            # a newer example was asked for meanwhile
        self.drawn_request = request
        self.stream = stream
        if example is None:
            self.header.setText("This dataset yields no training pairs at this length.")
            return
        batch, row, self.micro_batch_index = example
        self.current = (batch, row)
        self.view.setHtml(self.render(batch, row))
        self._predict(batch, row)

    def _draw_failed(self, request: int, message: str) -> None:
        if request == self.draw_request:
            self.drawn_request = request
            self.header.setText(message)
            self.view.clear()

    @property
    def predicting(self) -> bool:
        """Whether the loaded model's guesses for the example on display are still being computed."""
        return self.prediction_job is not None

    def _predict(self, batch, row: int) -> None:
        """The models' guesses for the example on display, on a worker thread (a forward pass of a large
        model takes a while on a CPU); the example is redrawn with them when they arrive."""
        if self.model is None or not self.show_predictions.isChecked():
            self.prediction_job = None
            return
        job = self.prediction_job = (batch, row, self.model, self.before)

        vocabulary = self.dataset.vocabulary

        def predict():
            try:
                guesses = top_guesses(job[2], batch, row, vocabulary)
                return guesses, (top_guesses(job[3][1], batch, row, vocabulary) if job[3] else {})
            except (RuntimeError, ValueError, IndexError) as exc:
                return f"The model cannot read this example: {exc}"

        in_background(predict, "masking-predictions", then=lambda result: self._show_predictions(job, result))

    def _show_predictions(self, job, result) -> None:
        if job is not self.prediction_job:
            return                      # computed for an example, model or "before" no longer on display
        self.prediction_job = None
        if isinstance(result, str):
            self.header.setText(html.escape(result))
            return
        batch, row = job[0], job[1]
        self.view.setHtml(self.render(batch, row, *result))

    def render(self, batch, row: int, predictions: dict | None = None, before: dict | None = None) -> str:
        """The example as chips; with the loaded model's guesses (and the "before" model's) when given."""
        config, vocab = self.settings.config, self.dataset.vocabulary
        predictions = predictions or {}
        before = before if predictions and before else {}
        selected = int((batch.kinds[row] != NOT_SELECTED).sum())
        self.header.setText(
            f"<b>{pair_label(config, batch, row)}</b> · segment A {int(batch.a_lengths[row])} tokens, "
            f"B {int(batch.b_lengths[row])} tokens{' (truncated)' if batch.truncated[row] else ''} · "
            f"{selected} predicted positions · micro-batch {self.micro_batch_index}, row {row} of the first epoch "
            f"(process 1 of {self.settings.processes})" + falling_rate(config))
        before_label = self.before[0] if before else ""
        self.example_kinds = ""
        if predictions:
            self.example_kinds = (accuracy_by_kind(batch, row, vocab, predictions)
                                  + (f" (before, {html.escape(before_label)}: "
                                     f"{accuracy_by_kind(batch, row, vocab, before)})" if before else ""))
        self._show_kind_line()
        return example_html(batch, row, vocab, predictions, before, before_label)

    def measure(self, background: bool = False) -> dict:
        """Realised rates over 2,000 training examples, shown next to the configured ones.

        ``background``: computed on a worker thread (what an edit of the settings does, so typing never
        stalls the window) and shown when ready; a result for settings changed meanwhile is dropped."""
        if self.dataset is None:
            return {}
        try:
            config = self.config()
        except WorkbenchError as exc:
            self.header.setText(str(exc))
            return {}
        job = self.stats_job = (self.dataset, config, self.micro_batch)
        if not background:
            stats = compute_statistics(*job)
            self._show_stats(job, stats)
            return stats if isinstance(stats, dict) else {}
        in_background(lambda: compute_statistics(*job), "masking-stats",
                      then=lambda stats: self._show_stats(job, stats))
        return {}

    def _show_stats(self, job, stats) -> None:
        if job is not self.stats_job:
            return                        # measured for settings that changed since
        if isinstance(stats, str):
            self.header.setText(stats)
            return
        if not stats.get("samples"):
            return
        configured = stats["configured"]
        for _, key, configured_key in STAT_ROWS:
            value = stats[key]
            text = f"{value:.2f}" if key == "mean_selected_per_sequence" else f"{value:.3f}"
            if configured_key:
                text += f"   ({configured[configured_key]:.3f})"
            self.stats_labels[key].setText(text)
        self.last_stats = stats


def falling_rate(config: WorkbenchConfig) -> str:
    """The header's note on a masking rate that falls over the run ("" when it is constant)."""
    m = config.masking
    return (f" · masked at the start rate {m.probability:g}; training lowers it to {m.final_probability:g} by "
            f"the end" if m.final_probability else "")


def top_guesses(model, batch, row: int, vocab, k: int = 3) -> dict[int, list[tuple[str, float]]]:
    """``{position: [(token, probability), ...]}``: the model's ``k`` best guesses at each predicted
    position of one example (any thread; the model is only read)."""
    import torch

    positions = [int(p) for p in (batch.kinds[row] != NOT_SELECTED).nonzero()[0]]
    if not positions:
        return {}
    with torch.no_grad():
        out = model(torch.from_numpy(batch.input_ids[row:row + 1]),
                    torch.from_numpy(batch.token_type_ids[row:row + 1]),
                    torch.from_numpy(batch.attention_mask[row:row + 1]))
        top = out.mlm_logits[0, positions].float().softmax(-1).topk(k, dim=-1)
    return {pos: [(vocab.tokens[int(i)], float(p)) for p, i in zip(top.values[j], top.indices[j])]
            for j, pos in enumerate(positions)}


def compute_statistics(dataset, config: WorkbenchConfig, micro_batch: int):
    """``realised_statistics`` over 2,000 training examples, or the error's text; any thread."""
    from workbench.data.inspection import realised_statistics, training_examples

    try:
        return realised_statistics(training_examples(dataset, config, 2000, config.train.seed, micro_batch),
                                   dataset.vocabulary, config)
    except WorkbenchError as exc:
        return str(exc)


if __name__ == "__main__":  # python -m workbench.gui.panels.masking_panel [DATASET]: the panel on its own
    import sys

    from workbench.gui.standalone import run_alone

    def make() -> MaskingPanel:
        from workbench.data.dataset import TokenizedDataset

        panel = MaskingPanel()
        if len(sys.argv) > 1:
            panel.set_dataset(TokenizedDataset(sys.argv[1]))
        return panel

    sys.exit(run_alone(make))
