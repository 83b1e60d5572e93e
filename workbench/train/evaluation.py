"""One yardstick for every run: a fixed, pre-masked held-out evaluation set and its context-free references.

The evaluation set is built from the held-out documents with its own seed and
*standard* masking (15% of tokens, exact count, 80% [MASK] / 10% random / 10%
kept, single tokens), whatever the run's masking settings, so runs with
different masking rates are scored on the same positions. Pairs follow the
run's pair task (NSP or SOP) with half of them negative.

``context_free_floor`` is what a model that ignores context achieves on those
positions: predicting the training-set token frequencies (loss = cross-entropy
of the unigram distribution, accuracy = the most frequent token's share).
Being below the floor is "has learned to use context"; chance (0.5) is the
pair task's floor.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from workbench.config import WorkbenchConfig
from workbench.data.batches import Batch, BatchStream
from workbench.data.frequencies import training_token_counts
from workbench.data.masking import IGNORE_INDEX

EVAL_SEED = 20240601      # independent of any run's seed
EVAL_SEQUENCES = 512


def standard_eval_config(config: WorkbenchConfig) -> WorkbenchConfig:
    """The run's data and pair settings with standard BERT masking and a balanced pair task."""
    fixed = copy.deepcopy(config)
    m = fixed.masking
    m.probability, m.mask_fraction, m.random_fraction = 0.15, 0.8, 0.1
    m.selection, m.strategy = "exact", "token"
    m.max_predictions_per_seq = max(1, round(0.15 * config.data.max_seq_length) + 1)
    m.min_predictions_per_seq = 1
    fixed.nsp.random_next_probability = 0.5
    return fixed


@dataclass
class EvalSet:
    batches: list[Batch]
    floor_loss: float          # context-free (unigram) cross-entropy at the evaluated positions
    floor_accuracy: float      # share of evaluated positions that hold the most frequent token
    chance_pair_accuracy: float

    @property
    def sequences(self) -> int:
        return sum(len(b) for b in self.batches)


def build_eval_set(dataset, config: WorkbenchConfig, batch_size: int = 32,
                   sequences: int = EVAL_SEQUENCES) -> EvalSet | None:
    """The first ``sequences`` pairs of the fixed evaluation set (same for every run of this dataset
    and pair task), in batches of ``batch_size``."""
    stream = BatchStream(dataset, standard_eval_config(config), batch_size, EVAL_SEED, "heldout")
    if len(stream.documents) == 0:
        return None
    # A small held-out split gives few pairs per epoch: take further epochs (new cuts and masks of the
    # same held-out text) until the set is full.
    batches: list[Batch] = []
    for epoch in range(16):
        available = -(-len(stream.plan(epoch)) // batch_size)
        for index in range(available):
            if len(batches) * batch_size >= sequences:
                break
            batches.append(stream.batch(epoch, index))
        if len(batches) * batch_size >= sequences or available == 0:
            break
    if not batches:
        return None
    loss, accuracy = context_free_floor(dataset, config, batches)
    labels = np.concatenate([b.nsp_labels for b in batches])
    chance = max(float(labels.mean()), 1.0 - float(labels.mean()))
    return EvalSet(batches, loss, accuracy, chance)


def unigram_distribution(dataset, config: WorkbenchConfig) -> np.ndarray:
    """Token frequencies of the training documents (add-one smoothed over non-special tokens), (V,)."""
    counts = training_token_counts(dataset, config.data.heldout_fraction)
    counts[~dataset.vocabulary.is_special] += 1.0
    counts[dataset.vocabulary.is_special] = 0.0
    return counts / counts.sum()


def context_free_floor(dataset, config: WorkbenchConfig, batches: list[Batch]) -> tuple[float, float]:
    probabilities = unigram_distribution(dataset, config)
    labels = np.concatenate([b.mlm_labels[b.mlm_labels != IGNORE_INDEX] for b in batches])
    loss = float(-np.log(np.maximum(probabilities[labels], 1e-12)).mean())
    accuracy = float((labels == int(probabilities.argmax())).mean())
    return loss, accuracy


def accuracy_by_kind(model, batches: list[Batch], rows: list[int] | None = None) -> dict[str, tuple[int, int]]:
    """Top-1 accuracy of ``model`` at the predicted positions, by what masking did there.

    Returns ``{"[MASK]": (right, total), "random": ..., "kept": ...}`` over every
    row of ``batches`` (or, with ``rows``, over those rows of the single batch
    given). The three kinds answer different questions: [MASK] is "can it fill
    a gap from context", random is "does it notice a wrong token", kept is
    "does it trust a right one".
    """
    import torch

    from workbench.data.masking import KEPT, KIND_NAMES, MASKED, RANDOM

    counts = {KIND_NAMES[kind]: [0, 0] for kind in (MASKED, RANDOM, KEPT)}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                chosen = slice(None) if rows is None else rows
                out = model(torch.from_numpy(batch.input_ids[chosen]), torch.from_numpy(batch.token_type_ids[chosen]),
                            torch.from_numpy(batch.attention_mask[chosen]))
                guesses = out.predicted_tokens().numpy()
                kinds, originals = batch.kinds[chosen], batch.original_ids[chosen]
                for kind in (MASKED, RANDOM, KEPT):
                    where = kinds == kind
                    entry = counts[KIND_NAMES[kind]]
                    entry[0] += int((guesses[where] == originals[where]).sum())
                    entry[1] += int(where.sum())
    finally:
        model.train(was_training)
    return {name: (right, total) for name, (right, total) in counts.items()}
