"""Typed configuration: one dataclass per TOML section, validated, round-tripped.

The same objects are edited by the GUI form, written to and read from TOML
files by the CLI, and stored verbatim with every run. Each field carries a
``help`` text in its metadata (the README's config reference is built from
it) and a ``kind``: ``structural`` settings change what a run computes (a new
run is needed to change them); ``resumable`` ones (budget, intervals, device)
may change when a run is resumed; ``live`` ones only change how results are shown.

Validation messages name the offending key as ``section.key`` so that a person
can find it in their file::

    masking.probability must be in (0, 1), got 1.5
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from workbench import architectures
from workbench.errors import ConfigError, read_user_text
from workbench.setting_rules import Bounds, check_rules, choices_in, setting


@dataclass
class DataConfig:
    """How a corpus is read and cut into sequences."""

    SECTION: ClassVar[str] = "data"

    dataset: str = setting("", "Directory written by `prepare` that training and `inspect` read.")
    max_seq_length: int = setting(
        128, "Length of a training sequence in tokens, including [CLS] and both [SEP].", bounds="[8, 8192]")
    sentences: str = setting(
        "auto",
        "How text lines become sentences: `auto` keeps each line as one sentence and splits "
        "lines longer than `split_lines_longer_than`; `lines` keeps every line whole; "
        "`wrapped` joins the lines of a document (hard-wrapped prose) and splits sentences.",
        choices=("auto", "lines", "wrapped"),
    )
    split_lines_longer_than: int = setting(
        200, "In `auto` mode, a line longer than this many characters is split into sentences.", bounds="[20, 10**9]")
    text_field: str = setting("text", "Field of a `.jsonl` record (or column of a `.csv` file) holding the text.")
    encoding_errors: str = setting(
        "strict",
        "What to do with bytes that are not UTF-8: `strict` stops with the file and line, "
        "`replace` substitutes U+FFFD and counts them.",
        choices=("strict", "replace"),
    )
    heldout_fraction: float = setting(
        0.02, "Share of documents kept out of training for evaluation (chosen by document hash).", bounds="[0, 0.5)")

    def validate(self) -> None:
        check_rules(self)
        _check(self, "dataset", "\x00" not in self.dataset, "must be a folder path")
        _check(self, "text_field", bool(self.text_field.strip()), "must not be empty")


@dataclass
class TokenizerConfig:
    """Which WordPiece tokenizer turns text into ids: trained on the corpus or loaded."""

    SECTION: ClassVar[str] = "tokenizer"

    path: str = setting(
        "", "An existing `tokenizer.json` or BERT `vocab.txt` to use; empty trains one on the corpus."
    )
    vocab_size: int = setting(16384, "Vocabulary size of a trained tokenizer (special tokens included).", bounds="[64, 1000000]")
    lowercase: bool = setting(True, "Lower-case text before tokenizing (an 'uncased' model).")
    strip_accents: bool = setting(True, "Remove accents (é -> e) before tokenizing.")
    min_frequency: int = setting(2, "A trained token must occur at least this often.", bounds="[1, 10**9]")
    limit_alphabet: int = setting(1000, "At most this many distinct characters in a trained vocabulary.", bounds="[26, 1000000]")
    sample_mb: int = setting(
        256, "A corpus larger than this many MB (on disk) trains its tokenizer on a sample of this size: the first "
        "part of each of 64 equal stretches of the corpus, the same bytes every time. 0 trains on the whole "
        "corpus. The whole corpus is tokenized either way.", bounds="[0, 10**7]")
    loaded_case: str = setting(
        "auto", "How a loaded `vocab.txt` treats case: `auto` infers it from the vocabulary (lower-cased when "
        "under 1% of its tokens have capitals), `lowercase` or `cased` decide (`prepare --lowercase/--cased`). "
        "A `tokenizer.json` carries its own normaliser.", choices=("auto", "lowercase", "cased"))

    def validate(self) -> None:
        check_rules(self)


@dataclass
class MaskingConfig:
    """Which positions Masked Language Modeling predicts and what the model sees there."""

    SECTION: ClassVar[str] = "masking"

    probability: float = setting(0.3, "Share of tokens selected for prediction: ModernBERT's 0.3 learns faster per minute than "
                                 "BERT's 0.15 (`benchmarks/learning_value.py`); evaluation always masks 0.15.", bounds="(0, 1)")
    final_probability: float = setting(
        0.0, "The rate at the end of the run: the rate falls linearly from `probability` to this over the run's "
        "progress (steps or time, as the learning rate); 0: `probability` throughout.", bounds="[0, 1)")
    mask_fraction: float = setting(0.8, "Share of selected tokens replaced by [MASK].", bounds="[0, 1]")
    random_fraction: float = setting(
        0.1, "Share of selected tokens replaced by a random vocabulary token; the rest stay unchanged.", bounds="[0, 1]")
    selection: str = setting(
        "exact",
        "`exact`: each sequence gets max(1, round(length * probability)) predictions (at most "
        "max_predictions_per_seq), counting [CLS]/[SEP] in the length as Google's BERT does; "
        "`bernoulli`: each token is selected independently, as the transformers MLM collator does.",
        choices=("exact", "bernoulli"),
    )
    strategy: str = setting(
        "token",
        "What is selected together: single `token`s, `whole_word`s (WordPiece ## pieces go with "
        "their word) or `span`s of whole words with geometric lengths (SpanBERT).",
        choices=("token", "whole_word", "span"),
    )
    max_predictions_per_seq: int = setting(0, "At most this many predicted positions per sequence (0: no cap; Google's "
                                           "BERT used 20 at length 128).", bounds="[0, 8192]")
    min_predictions_per_seq: int = setting(
        1, "Bernoulli selection picks at least this many positions, so no sequence has zero (0 allows it).", bounds="[0, 8192]")
    span_geometric_p: float = setting(0.2, "Span strategy: parameter of the geometric span-length law.", bounds="(0, 1]")
    span_max_words: int = setting(10, "Span strategy: longest span, in words.", bounds="[1, 8192]")

    @property
    def keep_fraction(self) -> float:
        return 1.0 - self.mask_fraction - self.random_fraction

    def prediction_cap(self, length: int) -> int:
        """Most predictions a sequence of ``length`` positions may get: ``max_predictions_per_seq`` (0: no cap)."""
        return min(self.max_predictions_per_seq, length) if self.max_predictions_per_seq else length

    def probability_at(self, progress: float) -> float:
        """The selection rate at ``progress`` (the run's budget used, in [0, 1]): ``probability``, falling
        linearly to ``final_probability`` when that is set."""
        if not self.final_probability:
            return self.probability
        progress = min(1.0, max(0.0, progress))
        return self.probability + (self.final_probability - self.probability) * progress

    def validate(self) -> None:
        check_rules(self)
        if self.mask_fraction + self.random_fraction > 1.0 + 1e-9:
            raise ConfigError(
                "masking.mask_fraction + masking.random_fraction must be <= 1, got "
                f"{self.mask_fraction} + {self.random_fraction}"
            )
        if self.max_predictions_per_seq and self.min_predictions_per_seq > self.max_predictions_per_seq:
            raise ConfigError(
                "masking.min_predictions_per_seq must be <= masking.max_predictions_per_seq, got "
                f"{self.min_predictions_per_seq} > {self.max_predictions_per_seq}"
            )


@dataclass
class NspConfig:
    """How sentence pairs are cut for Next Sentence (or Sentence Order) Prediction."""

    SECTION: ClassVar[str] = "nsp"

    objective: str = setting(
        "nsp",
        "`nsp`: B is the true continuation or a segment of another document; "
        "`sop`: B is the true continuation or A and B are swapped (ALBERT); "
        "`none`: no pair task, MLM only (RoBERTa): B is always the true continuation and no pair loss is trained.",
        choices=("nsp", "sop", "none"),
    )
    random_next_probability: float = setting(
        0.5, "Share of pairs labelled NotNext (random B for NSP, swapped for SOP).", bounds="[0, 1]")
    short_seq_prob: float = setting(
        0.1, "Probability of a shorter random target length, so the model also sees short sequences.", bounds="[0, 1]")

    @property
    def pair_task(self) -> bool:
        """Whether a pair loss is trained (and pair metrics reported)."""
        return self.objective != "none"

    def validate(self) -> None:
        check_rules(self)



# name -> (layers, hidden, heads, intermediate). Cramming/Turc et al. sizes; base is BERT-base.
MODEL_PRESETS: dict[str, tuple[int, int, int, int]] = {
    "tiny": (2, 128, 2, 512),
    "mini": (4, 256, 4, 1024),
    "small": (4, 512, 8, 2048),
    "medium": (8, 512, 8, 2048),
    "base": (12, 768, 12, 3072),
}


@dataclass
class ModelConfig:
    """BERT encoder sizes. Names match ``transformers.BertConfig``; 0 means "from the preset"."""

    SECTION: ClassVar[str] = "model"

    architecture: str = setting(
        "modernbert",
        "`modernbert`: pre-LayerNorm, gated-GELU feed-forward, rotary positions, no biases, global attention "
        "(learns far faster at small budgets; exports to transformers' ModernBertForMaskedLM); `bert`: the "
        "original post-LayerNorm BERT with learned positions and token types (exports to BertForPreTraining).",
        choices=architectures.names)
    preset: str = setting("tiny", "Named size: tiny, mini, small, medium, base (or `custom` with every size set).",
                          choices=("tiny", "mini", "small", "medium", "base", "custom"))
    vocab_size: int = setting(0, "Vocabulary size; 0 takes it from the dataset's tokenizer.", bounds="[0, 1000000]")
    hidden_size: int = setting(0, "Width of the encoder; 0 takes the preset's.", bounds="[0, 65536]")
    num_hidden_layers: int = setting(0, "Transformer layers; 0 takes the preset's.", bounds="[0, 1024]")
    num_attention_heads: int = setting(0, "Attention heads; 0 takes the preset's. Must divide hidden_size.", bounds="[0, 1024]")
    intermediate_size: int = setting(0, "Width of the feed-forward layer; 0 takes the preset's.", bounds="[0, 262144]")
    hidden_dropout_prob: float = setting(
        0.0, "Dropout on embeddings and layer outputs (original BERT: 0.1; none learns faster at small budgets).", bounds="[0, 1)")
    attention_probs_dropout_prob: float = setting(0.0, "Dropout on attention probabilities (original BERT: 0.1).", bounds="[0, 1)")
    max_position_embeddings: int = setting(512, "Longest sequence the position table holds.", bounds="[8, 65536]")
    type_vocab_size: int = setting(2, "Token types (segments A and B).", bounds="[2, 1024]")
    initializer_range: float = setting(0.0, "Standard deviation of the initial weights; 0 takes the architecture's "
                                            "(modernbert 0.04, bert 0.02).", bounds="[0, 1)")
    layer_norm_eps: float = setting(0.0, "Epsilon of every LayerNorm; 0 takes the architecture's (bert 1e-12, "
                                         "modernbert 1e-5).", bounds="[0, 1)")
    rope_theta: float = setting(160000.0, "modernbert: base of the rotary position frequencies.", bounds="[1, 1e9]")

    @classmethod
    def from_preset(cls, name: str, vocab_size: int = 0, **overrides: Any) -> "ModelConfig":
        """A config with the preset's sizes filled in: ``ModelConfig.from_preset("mini", vocab_size=8192)``."""
        if name not in MODEL_PRESETS:
            raise ConfigError(f"model.preset must be one of {', '.join(MODEL_PRESETS)}; got {name!r}")
        layers, hidden, heads, inter = MODEL_PRESETS[name]
        values = dict(preset=name, vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, intermediate_size=inter)
        values.update(overrides)
        return cls(**values)

    def resolved(self, vocab_size: int | None = None) -> "ModelConfig":
        """Concrete sizes: the preset's where a size is 0, the tokenizer's vocabulary where vocab_size is 0."""
        values = dataclasses.asdict(self)
        if self.preset in MODEL_PRESETS:
            for key, value in zip(("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size"),
                                  MODEL_PRESETS[self.preset]):
                if not values[key]:
                    values[key] = value
        if not values["vocab_size"] and vocab_size:
            values["vocab_size"] = vocab_size
        architecture = architectures.get(self.architecture)
        for key in ("layer_norm_eps", "initializer_range"):
            if not values[key]:
                values[key] = getattr(architecture, key)
        resolved = ModelConfig(**values)
        resolved.validate(require_sizes=True)
        return resolved

    def validate(self, require_sizes: bool = False) -> None:
        check_rules(self)
        sizes = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
        if self.preset == "custom" or require_sizes:
            for key in sizes:
                _check(self, key, getattr(self, key) > 0, "must be set (> 0)" + (
                    " when model.preset is custom" if self.preset == "custom" else ""))
        if self.hidden_size and self.num_attention_heads and self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"model.hidden_size ({self.hidden_size}) must be divisible by model.num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if require_sizes:
            _check(self, "vocab_size", self.vocab_size > 0, "must be known (set it or use a dataset)")


@dataclass
class TrainConfig:
    """Optimizer, schedule, budget, device and bookkeeping of a training run."""

    SECTION: ClassVar[str] = "train"

    name: str = setting("", "Name of the run; empty makes one from the preset and the time.", kind="resumable")
    max_steps: int = setting(0, "Stop after this many optimizer steps (0: no step limit; the time budget ends "
                                "the run).", kind="resumable", bounds="[0, 10**12]")
    max_minutes: float = setting(5.0, "Stop after this many minutes of training (0: no time budget). With a "
                                      "budget the learning-rate schedule runs over the time.", kind="resumable", bounds="[0, 10**7]")
    batch_size: int = setting(32, "Sequences per optimizer step (across all processes and accumulation).", bounds="[1, 1000000]")
    gradient_accumulation_steps: int = setting(1, "Micro-batches per optimizer step.", bounds="[1, 100000]")
    learning_rate: float = setting(0.0, "Peak learning rate of AdamW; 0 picks one for the model: "
                                        "2e-3 x sqrt(128 / hidden_size) for modernbert, half of that for the "
                                        "post-LayerNorm bert (tiny: 2e-3 and 1e-3).", bounds="[0, 1)")
    weight_decay: float = setting(0.01, "Decoupled weight decay (not applied to biases and LayerNorm).", bounds="[0, 1)")
    pair_loss_weight: float = setting(
        0.5, "Weight of the pair (NSP/SOP) loss in the objective: MLM loss + weight x pair loss. 0.5 learns "
        "both tasks faster per minute than 1 (`benchmarks/learning_value.py`). The losses shown and recorded "
        "stay unweighted.", bounds="[0, 100]")
    adam_beta1: float = setting(0.9, "AdamW beta1.", bounds="[0, 1)")
    adam_beta2: float = setting(0.98, "AdamW beta2.", bounds="[0, 1)")
    adam_epsilon: float = setting(1e-6, "AdamW epsilon.", bounds="(0, 1)")
    warmup_steps: int = setting(100, "Linear warm-up from 0 to the peak learning rate over this many steps, or "
                                     "over `warmup_fraction` of the budget if that ends first.", bounds="[0, 10**12]")
    warmup_fraction: float = setting(0.06, "The longest warm-up, as a share of the budget (steps or time): on a "
                                           "slow machine, 100 steps can be a third of 5 minutes. 0: by steps "
                                           "alone.", bounds="[0, 1]")
    schedule: str = setting("wsd", "After warm-up: `wsd` (warm-up, stable, decay) holds the peak, then falls linearly to 0 "
                                   "over the last `cooldown_fraction` of the budget; `linear` or `cosine` decay to 0 over "
                                   "the whole budget; `constant` holds the peak.", choices=("wsd", "linear", "cosine", "constant"))
    cooldown_fraction: float = setting(0.25, "`wsd` schedule: the last share of the budget after warm-up (steps or "
                                             "time), over which the learning rate falls linearly to 0.", bounds="(0, 1]")
    max_grad_norm: float = setting(1.0, "Clip the gradient norm to this (0: no clipping).", bounds="[0, 1e12]")
    seed: int = setting(0, "Seed of initialisation, pairs, masking and dropout.", bounds="[0, 2**63 - 1]")
    device: str = setting("auto", "`auto` (CUDA, else MPS, else CPU), `cpu`, `cuda`, `cuda:N` or `mps`.", kind="resumable")
    precision: str = setting("auto", "`fp32`, `bf16` (autocast) or `auto` (bf16 on CUDA and on CPUs with AMX, fp32 elsewhere).",
                             choices=("auto", "fp32", "bf16"))
    compile: bool = setting(False, "Compile the model with torch.compile: for GPUs (on CPU it is slower than the default "
                                   "path: 0.70x measured).", kind="resumable")
    threads: int = setting(0, "CPU threads for PyTorch (0: all cores).", kind="resumable", bounds="[0, 4096]")
    log_every: int = setting(1, "Report step metrics every this many steps (averaged over them).", kind="resumable", bounds="[1, 10**12]")
    eval_every: int = setting(0, "Evaluate on the fixed evaluation set every this many steps (0: by time only, "
                                 "or at the end).", kind="resumable", bounds="[0, 10**12]")
    eval_every_seconds: float = setting(30.0, "Also evaluate every this many seconds of training (0: off).",
                                        kind="resumable", bounds="[0, 10**9]")
    eval_batches: int = setting(16, "Size of the fixed evaluation set, in batches of 32 held-out pairs (the same "
                                    "pre-masked pairs for every run of a dataset).", kind="resumable", bounds="[1, 10**12]")
    checkpoint_every: int = setting(500, "Save a checkpoint every this many steps (0: only at the end).", kind="resumable", bounds="[0, 10**12]")
    keep_checkpoints: int = setting(3, "Keep the last this many checkpoints.", kind="resumable", bounds="[1, 10**12]")
    output_dir: str = setting("runs", "Folder in which each run gets its own directory.", kind="resumable")
    init_from: str = setting("", "Start from the weights of a Hugging Face BERT directory (continued pre-training).")

    @property
    def step_limit(self) -> int:
        """``max_steps``, or no limit (a number no run reaches) when it is 0."""
        return self.max_steps or 2**62

    def validate(self) -> None:
        check_rules(self)
        if not self.max_steps and not self.max_minutes:
            raise ConfigError("train.max_steps and train.max_minutes are both 0: set a step limit or a time budget")
        if self.batch_size % self.gradient_accumulation_steps:
            raise ConfigError(
                f"train.batch_size ({self.batch_size}) must be divisible by train.gradient_accumulation_steps "
                f"({self.gradient_accumulation_steps})"
            )
        device = self.device
        if not (device in ("auto", "cpu", "cuda", "mps") or (device.startswith("cuda:") and device[5:].isascii() and device[5:].isdigit())):
            raise ConfigError(f"train.device must be auto, cpu, cuda, cuda:N or mps; got {device!r}")
        _check(self, "output_dir", bool(self.output_dir.strip()) and "\x00" not in self.output_dir,
               "must be a folder path")
        _check(self, "init_from", "\x00" not in self.init_from, "must be a folder path")
        from workbench.ownership import check_run_name

        check_run_name(self.name)


@dataclass
class InspectConfig:
    """Inspection snapshots: what the model computes on a fixed probe pack, recorded while it trains."""

    SECTION: ClassVar[str] = "inspect"

    enabled: bool = setting(True, "Record inspection snapshots (heads, per-token surprisal, embeddings, probes) at "
                                  "step 0, at `first`, 2 x `first`, 4 x `first`, ... below `every`, then every "
                                  "`every` steps, and at the run's end.", kind="resumable")
    first: int = setting(8, "The first log-spaced snapshot after step 0 (1 gives 1, 2, 4, 8, ...).",
                         kind="resumable", bounds="[1, 10**12]")
    every: int = setting(250, "After the log-spaced steps, take a snapshot every this many steps.", kind="resumable",
                         bounds="[1, 10**12]")
    sequences: int = setting(8, "Held-out sequences in the probe pack (each is scored once per mask pattern).",
                             bounds="[1, 4096]")
    patterns: int = setting(6, "Disjoint mask patterns of the probe pack: pattern j masks every position t with "
                               "(t + row) % patterns == j, so together they cover every token.", bounds="[2, 64]")
    words: int = setting(600, "Input embeddings of this many most frequent tokens are kept per snapshot "
                               "(neighbours and the 2-D map).", bounds="[10, 100000]")
    probes: str = setting("", "A probe file (JSONL or TSV: fill-in-the-blank, minimal pairs, sentence pairs) scored "
                              "at every snapshot; empty: the built-in probes when training on the sample corpus.",
                          kind="resumable")
    treebank: str = setting("", "A CoNLL-U treebank of the corpus' language: each head's dependency accuracy is "
                                "recorded at every snapshot.", kind="resumable")

    def validate(self) -> None:
        check_rules(self)
        for key in ("probes", "treebank"):
            _check(self, key, "\x00" not in getattr(self, key), "must be a file path")


SECTIONS: tuple[type, ...] = (DataConfig, TokenizerConfig, MaskingConfig, NspConfig, ModelConfig, TrainConfig,
                              InspectConfig)


@dataclass
class WorkbenchConfig:
    """The whole configuration of a run; one attribute per TOML section."""

    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    nsp: NspConfig = field(default_factory=NspConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    inspect: InspectConfig = field(default_factory=InspectConfig)

    def validate(self) -> None:
        check_rules(self)
        for section in self.sections():
            section.validate()
        if self.data.max_seq_length > self.model.max_position_embeddings:
            raise ConfigError(
                f"data.max_seq_length ({self.data.max_seq_length}) must be <= model.max_position_embeddings "
                f"({self.model.max_position_embeddings})"
            )

    def sections(self) -> list[Any]:
        return [getattr(self, cls.SECTION) for cls in SECTIONS]

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {s.SECTION: dataclasses.asdict(s) for s in self.sections()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> "WorkbenchConfig":
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: expected a table of sections, got {type(raw).__name__}")
        known = {c.SECTION: c for c in SECTIONS}
        sections = {}
        for name, values in raw.items():
            if name not in known:
                raise ConfigError(f"{source}: unknown section [{name}]{_suggest(name, known)}")
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [{name}] must be a table, got {type(values).__name__}")
            sections[name] = section_from_dict(known[name], values)
        config = cls(**sections)
        config.validate()
        return config

    @classmethod
    def from_record(cls, raw: dict[str, Any], source: str = "recorded config") -> "WorkbenchConfig":
        """A config recorded with a run (a checkpoint's, a stored run's): a setting added since it was recorded
        takes the value that was in effect before the setting existed (``VALUES_BEFORE_ADDED``), not today's
        default, so the run resumes and repeats as it trained."""
        if isinstance(raw, dict):
            raw = {name: dict(values) if isinstance(values, dict) else values for name, values in raw.items()}
            for (section, key), value in VALUES_BEFORE_ADDED.items():
                if isinstance(raw.get(section), dict):
                    raw[section].setdefault(key, value)
        return cls.from_dict(raw, source)

    def with_overrides(self, assignments: list[str]) -> "WorkbenchConfig":
        """A copy with ``section.key=value`` assignments applied (values in TOML syntax)."""
        raw = apply_settings(self.to_dict(), dict(parse_assignment(a) for a in assignments))
        return WorkbenchConfig.from_dict(raw, source="--set")


def apply_settings(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``raw`` (a config as sections of values; changed in place and returned) with ``{"section.key": value}``
    set: the one place where ``--set``, the CLI's flags and sweeps turn dotted keys into sections.
    ``WorkbenchConfig.from_dict`` then checks the section, the key and the value."""
    for key, value in values.items():
        section, dot, name = key.partition(".")
        if not dot or not section or not name:
            raise ConfigError(f"{key!r} must name a setting as section.key (e.g. masking.probability)")
        raw.setdefault(section, {})[name] = value
    return raw


def section_from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Build one section, rejecting unknown keys and values of the wrong type."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"unknown key {cls.SECTION}.{key}{_suggest(key, names, cls.SECTION + '.')}")
        kwargs[key] = _coerce(f"{cls.SECTION}.{key}", hints[key], value)
    section = cls(**kwargs)
    for f in dataclasses.fields(cls):
        choices = choices_in(f)
        if choices and getattr(section, f.name) not in choices:
            raise ConfigError(
                f"{cls.SECTION}.{f.name} must be one of {', '.join(choices)}; got {getattr(section, f.name)!r}"
            )
    return section


def _coerce(key: str, expected: Any, value: Any) -> Any:
    if expected is bool:
        if isinstance(value, bool):
            return value
    elif expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) >= 2**63:
                raise ConfigError(f"{key} is far too large ({len(str(abs(value)))} digits)")
            return value
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
            return int(value)
    elif expected is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, int) and abs(value) >= 2**63:
                raise ConfigError(f"{key} is far too large ({len(str(abs(value)))} digits)")
            if not math.isfinite(value):
                raise ConfigError(f"{key} must be a finite number, got {value}")
            return float(value)
    elif expected is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - every field uses one of the types above
        raise TypeError(f"unsupported config type {expected!r} for {key}")
    raise ConfigError(f"{key} must be {_type_name(expected)}, got {value!r}")


def _type_name(t: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[t]


def _check(section: Any, key: str, ok: bool, what: str) -> None:
    if not ok:
        raise ConfigError(f"{section.SECTION}.{key} {what}, got {getattr(section, key)!r}")


def _suggest(name: str, known: Any, prefix: str = "") -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse ``section.key=value``; the value is TOML (bare words are taken as strings)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or "." not in key:
        raise ConfigError(f"--set expects section.key=value, got {text!r}")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key, parsed


# Settings added after runs were already being recorded, whose default today differs from what every run did
# before they existed. A recorded config that lacks one meant this value (see ``WorkbenchConfig.from_record``).
VALUES_BEFORE_ADDED: dict[tuple[str, str], Any] = {
    ("train", "pair_loss_weight"): 1.0,     # the pair loss was added unweighted; the default became 0.5 later
    ("train", "warmup_fraction"): 0.0,      # warm-up was by steps alone before the budget capped it
}


def load_config(path: str | Path, recorded: bool = False) -> WorkbenchConfig:
    """Read and validate a TOML config file; ``recorded``: one written with a run (``WorkbenchConfig.from_record``)."""
    path = Path(path)
    text = read_user_text(path, ConfigError, "config file")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        return (WorkbenchConfig.from_record if recorded else WorkbenchConfig.from_dict)(raw, source=str(path))
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith(str(path)) else f"{path}: {message}") from None


def dumps_toml(config: WorkbenchConfig) -> str:
    """The config as TOML text; ``load_config`` of it gives back an equal config."""
    lines: list[str] = []
    for section in config.sections():
        if lines:
            lines.append("")
        lines.append(f"[{section.SECTION}]")
        for f in dataclasses.fields(section):
            lines.append(f"{f.name} = {_toml_value(getattr(section, f.name))}")
    return "\n".join(lines) + "\n"


def save_config(config: WorkbenchConfig, path: str | Path) -> None:
    Path(path).write_text(dumps_toml(config), encoding="utf-8")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # shortest repr that parses back to the same float
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_string(text: str) -> str:
    """A TOML basic string: quote, backslash and control characters escaped, the rest verbatim."""
    out = []
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def describe_settings() -> list[tuple[str, str, str, str]]:
    """(key, default, kind, help) for every setting, for the README and --help texts."""
    rows = []
    for cls in SECTIONS:
        for f in dataclasses.fields(cls):
            rows.append((f"{cls.SECTION}.{f.name}", _toml_value(f.default), f.metadata["kind"], f.metadata["help"]))
    return rows


def choices_of(key: str) -> tuple[str, ...]:
    """The allowed values of a setting (``"train.schedule"`` -> ``("wsd", "linear", "cosine", "constant")``),
    from its field's metadata: the window's lists and the CLI's ``choices=`` come from here."""
    section_name, _, name = key.partition(".")
    for f in dataclasses.fields(WorkbenchConfig):
        if f.name == section_name:
            for inner in dataclasses.fields(f.default_factory):
                if inner.name == name:
                    return choices_in(inner)
    raise KeyError(key)


def bounds_of(key: str) -> Bounds | None:
    """The interval a numeric setting must lie in (``"train.seed"`` -> ``[0, 2**63 - 1]``), or None."""
    section_name, _, name = key.partition(".")
    for f in dataclasses.fields(WorkbenchConfig):
        if f.name == section_name:
            for inner in dataclasses.fields(f.default_factory):
                if inner.name == name:
                    return inner.metadata.get("bounds")
    raise KeyError(key)


def allowed_text(key: str) -> str:
    """What a setting accepts, as its declaration says: ``[0, 1)``, ``modernbert, bert``, or ""."""
    choices, bounds = choices_of(key), bounds_of(key)
    return ", ".join(choices) if choices else str(bounds) if bounds is not None else ""


def settings_table() -> str:
    """The README's configuration reference, generated from the declarations (a test keeps them equal)."""
    lines = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for key, default, kind, help_text in describe_settings():
        mark = " *(resumable)*" if kind == "resumable" else " *(live)*" if kind == "live" else ""
        allowed = allowed_text(key)
        lines.append(f"| `{key}` | `{default}` | {f'`{allowed}`' if allowed else ''} | {help_text}{mark} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m workbench.config: print the configuration reference
    print(settings_table())
