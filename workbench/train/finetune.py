"""The fine-tuning check: does pre-training help? Two (or three) arms, identical but for the encoder.

``compare_arms`` fine-tunes, for each seed and with identical data order,
head initialisation, budget and hyper-parameters:

* ``pretrained`` - the encoder of a pre-training checkpoint;
* ``scratch``    - the same architecture from fresh weights;
* ``frozen``     - (optional) the pre-trained encoder frozen, only the head trained.

Each arm is scored on the held-out examples (accuracy and macro-F1) at fixed
step intervals; the result holds every curve, the final scores, the gain of
``pretrained`` over ``scratch`` and its spread over seeds. Plain Python: the
CLI and the window's Fine-tune panel both call it.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from workbench.data.labelled import LabelledData
from workbench.errors import ConfigError
from workbench.model.classifier import SequenceClassifier, build_classifier

ARMS = ("pretrained", "scratch", "frozen")


@dataclass
class FinetuneConfig:
    steps: int = 300                 # optimizer steps per arm (the budget), unless minutes is set
    minutes: float = 0.0             # wall-clock budget per arm (0: steps only)
    learning_rate: float = 1e-3
    batch_size: int = 32
    max_length: int = 0              # tokens per example; 0: the pre-training run's data.max_seq_length
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    eval_every: int = 25
    seeds: tuple[int, ...] = (0, 1, 2)
    frozen_arm: bool = False
    heldout_fraction: float = 0.2

    def validate(self) -> None:
        checks = [("steps", 1 <= self.steps <= 10**7), ("minutes", 0 <= self.minutes <= 10**5),
                  ("learning_rate", 0 < self.learning_rate < 1), ("batch_size", 1 <= self.batch_size <= 65536),
                  ("max_length", self.max_length == 0 or 8 <= self.max_length <= 8192), ("eval_every", 1 <= self.eval_every <= 10**7),
                  ("seeds", 1 <= len(self.seeds) <= 100), ("heldout_fraction", 0 < self.heldout_fraction < 0.9)]
        for name, ok in checks:
            if not ok:
                raise ConfigError(f"finetune {name} is out of range: {getattr(self, name)!r}")
        for seed in self.seeds:
            if not (isinstance(seed, int) and 0 <= seed < 2**63):
                raise ConfigError(f"finetune seeds must be whole numbers in [0, 2^63), got {seed}")
        repeated = [seed for index, seed in enumerate(self.seeds) if seed in self.seeds[:index]]
        if repeated:
            raise ConfigError(f"finetune seeds list {repeated[0]} twice: the spread over seeds would count one "
                              f"run several times")


@dataclass
class ArmResult:
    arm: str
    seed: int
    curve: list[dict] = field(default_factory=list)   # {step, seconds, loss, accuracy, macro_f1}
    accuracy: float = 0.0
    macro_f1: float = 0.0
    steps: int = 0
    seconds: float = 0.0


@dataclass
class Comparison:
    label_names: list[str]
    train_examples: int
    heldout_examples: int
    arms: list[ArmResult]
    model: SequenceClassifier | None = None   # the pre-trained arm of the first seed, fine-tuned (for export)
    tokenizer: object = None
    max_length: int = 0

    def summary(self) -> dict:
        """Mean and spread per arm, and the gain of pre-training (pretrained - scratch, per seed)."""
        out: dict = {}
        for arm in ARMS:
            results = [r for r in self.arms if r.arm == arm]
            if results:
                acc = np.array([r.accuracy for r in results])
                f1 = np.array([r.macro_f1 for r in results])
                out[arm] = {"accuracy": float(acc.mean()), "accuracy_std": float(acc.std()),
                            "macro_f1": float(f1.mean()), "macro_f1_std": float(f1.std()), "seeds": len(results)}
        pre = {r.seed: r for r in self.arms if r.arm == "pretrained"}
        scratch = {r.seed: r for r in self.arms if r.arm == "scratch"}
        gains = [100 * (pre[s].accuracy - scratch[s].accuracy) for s in pre if s in scratch]
        f1_gains = [100 * (pre[s].macro_f1 - scratch[s].macro_f1) for s in pre if s in scratch]
        if gains:
            out["gain_points"] = {"accuracy": float(np.mean(gains)), "accuracy_std": float(np.std(gains)),
                                  "macro_f1": float(np.mean(f1_gains)), "macro_f1_std": float(np.std(f1_gains)),
                                  "per_seed": gains}
        return out

    def to_dict(self) -> dict:
        return {"label_names": self.label_names, "train_examples": self.train_examples,
                "heldout_examples": self.heldout_examples, "arms": [asdict(a) for a in self.arms],
                "summary": self.summary()}


def encode(tokenizer, data: LabelledData, max_length: int) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids and token types of every example ([CLS] A [SEP] (B [SEP])), truncated to ``max_length``."""
    from tokenizers import Tokenizer

    local = Tokenizer.from_str(tokenizer.to_str())  # truncation is set on a copy, never on the caller's
    local.enable_truncation(max_length)
    local.no_padding()
    inputs = list(zip(data.texts, data.pairs)) if data.pairs else data.texts
    encodings = local.encode_batch(inputs)
    return [e.ids for e in encodings], [e.type_ids for e in encodings]


def _batch(ids: list[list[int]], types: list[list[int]], rows, pad_id: int) -> dict[str, torch.Tensor]:
    length = max(len(ids[i]) for i in rows)
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    token_types = torch.zeros((len(rows), length), dtype=torch.long)
    attention = torch.zeros((len(rows), length), dtype=torch.long)
    for r, i in enumerate(rows):
        n = len(ids[i])
        input_ids[r, :n] = torch.tensor(ids[i])
        token_types[r, :n] = torch.tensor(types[i])
        attention[r, :n] = 1
    return {"input_ids": input_ids, "token_type_ids": token_types, "attention_mask": attention}


def macro_f1(predictions: np.ndarray, labels: np.ndarray, classes: int) -> float:
    scores = []
    for c in range(classes):
        tp = int(((predictions == c) & (labels == c)).sum())
        fp = int(((predictions == c) & (labels != c)).sum())
        fn = int(((predictions != c) & (labels == c)).sum())
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def evaluate(model: SequenceClassifier, ids, types, labels: np.ndarray, pad_id: int, batch_size: int = 128):
    """(loss, accuracy, macro-F1, predictions) on the held-out examples."""
    model.eval()
    predictions, losses = [], []
    with torch.no_grad():
        for start in range(0, len(ids), batch_size):
            rows = list(range(start, min(len(ids), start + batch_size)))
            logits = model(**_batch(ids, types, rows, pad_id))
            losses.append(float(model.loss(logits, torch.from_numpy(labels[rows]))) * len(rows))
            predictions.append(logits.argmax(-1).numpy())
    model.train()
    predicted = np.concatenate(predictions)
    return (sum(losses) / len(ids), float((predicted == labels).mean()), macro_f1(predicted, labels, model.num_labels),
            predicted)


def train_arm(arm: str, seed: int, model_config, encoder_state: dict | None, tokenizer, train: LabelledData,
              heldout: LabelledData, config: FinetuneConfig, on_point: Callable[[ArmResult, dict], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> tuple[ArmResult, SequenceClassifier]:
    """Fine-tune one arm; ``encoder_state`` is the pre-trained weights (None: fresh, seeded by ``seed``)."""
    from workbench.model import build_model

    torch.manual_seed(seed)
    model = build_classifier(model_config, len(train.label_names), head_seed=seed)
    model.load_encoder(encoder_state if encoder_state is not None else build_model(model_config).state_dict())
    trainable = model.head_parameters() if arm == "frozen" else list(model.parameters())
    if arm == "frozen":
        for p in model.parameters():
            p.requires_grad_(False)
        for p in trainable:
            p.requires_grad_(True)
    decay = [p for p in trainable if p.dim() >= 2]
    rest = [p for p in trainable if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": rest, "weight_decay": 0.0}], lr=config.learning_rate,
                                  betas=(0.9, 0.98), eps=1e-6)
    pad_id = tokenizer.token_to_id("[PAD]")
    train_ids, train_types = encode(tokenizer, train, config.max_length)
    held_ids, held_types = encode(tokenizer, heldout, config.max_length)
    train_labels, held_labels = np.asarray(train.labels), np.asarray(heldout.labels)
    rng = np.random.default_rng(seed)           # the same data order for every arm of this seed
    order = np.zeros(0, dtype=np.int64)
    result = ArmResult(arm, seed)
    budget = 60.0 * config.minutes if config.minutes else math.inf
    elapsed, step = 0.0, 0
    warmup = max(1, int(config.warmup_fraction * config.steps))
    model.train()
    while step < config.steps and elapsed < budget and not (should_stop and should_stop()):
        started = time.perf_counter()
        if len(order) < config.batch_size:
            order = np.concatenate([order, rng.permutation(len(train_ids))])
        rows, order = order[: config.batch_size], order[config.batch_size:]
        progress = max(step / config.steps, elapsed / budget if math.isfinite(budget) else 0.0)
        scale = (step + 1) / warmup if step < warmup else max(0.0, 1.0 - progress) / max(1e-9, 1.0 - warmup / config.steps)
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * min(1.0, scale)
        logits = model(**_batch(train_ids, train_types, rows.tolist(), pad_id))
        loss = model.loss(logits, torch.from_numpy(train_labels[rows]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        elapsed += time.perf_counter() - started
        if step % config.eval_every == 0 or step == config.steps or elapsed >= budget:
            held_loss, accuracy, f1, _ = evaluate(model, held_ids, held_types, held_labels, pad_id)
            point = {"step": step, "seconds": round(elapsed, 2), "train_loss": float(loss.detach()),
                     "loss": held_loss, "accuracy": accuracy, "macro_f1": f1}
            result.curve.append(point)
            if on_point:
                on_point(result, point)
    if not result.curve or result.curve[-1]["step"] != step:
        held_loss, accuracy, f1, _ = evaluate(model, held_ids, held_types, held_labels, pad_id)
        result.curve.append({"step": step, "seconds": round(elapsed, 2), "train_loss": math.nan, "loss": held_loss,
                             "accuracy": accuracy, "macro_f1": f1})
    result.accuracy, result.macro_f1 = result.curve[-1]["accuracy"], result.curve[-1]["macro_f1"]
    result.steps, result.seconds = step, elapsed
    return result, model


def compare_arms(checkpoint: str | Path, train: LabelledData, heldout: LabelledData, config: FinetuneConfig,
                 on_point: Callable[[ArmResult, dict], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> Comparison:
    """Every arm for every seed, from the pre-training checkpoint (or run folder) ``checkpoint``."""
    from workbench.interop.huggingface import load_for_inference

    config.validate()
    pretrained, tokenizer, pretraining = load_for_inference(checkpoint)
    model_config = pretrained.config
    if not config.max_length:
        config = replace(config, max_length=min(pretraining.data.max_seq_length if pretraining else 128,
                                                model_config.max_position_embeddings))
    if config.max_length > model_config.max_position_embeddings:
        raise ConfigError(f"finetune max_length ({config.max_length}) is longer than the model's positions "
                          f"({model_config.max_position_embeddings})")
    state = {k: v.detach().clone() for k, v in pretrained.state_dict().items()}
    arms = ["pretrained", "scratch"] + (["frozen"] if config.frozen_arm else [])
    results = []
    kept = None
    for seed in config.seeds:
        for arm in arms:
            if should_stop and should_stop():
                break
            result, model = train_arm(arm, seed, model_config, None if arm == "scratch" else state, tokenizer, train,
                                      heldout, config, on_point, should_stop)
            results.append(result)
            if arm == "pretrained" and kept is None:
                kept = model.eval()
    return Comparison(train.label_names, len(train), len(heldout), results, kept, tokenizer, config.max_length)
