"""Training batches: pairs of an epoch -> padded id arrays -> dynamic masking.

``BatchStream`` is what the trainer, ``inspect`` and the masking preview all
use, so each of them sees exactly the same examples for the same seed:

* epoch ``e`` has its own pair plan, built with ``rng(seed, e)``;
* batch ``k`` of epoch ``e`` on rank ``r`` is masked with ``rng(seed, e, k, r)``,
  so a run can resume at any (epoch, batch) without replaying anything;
* under DDP, global batch ``k`` is ``world * batch_size`` consecutive pairs of
  the plan and rank ``r`` takes its ``r``-th slice;
* the masking rate is ``masking.probability_at(progress)``: with a
  ``masking.final_probability`` it falls over the run, and the trainer passes
  the progress it stood at (saved in checkpoints, so a resume masks alike).

Arrays are padded to the longest sequence of the batch, rounded up to a
multiple of 8 (at most ``max_seq_length``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from workbench.config import WorkbenchConfig
from workbench.data.masking import MaskedTokens, mask_batch
from workbench.data.pairs import PairPlan, build_pair_plan, document_split
from workbench.data.dataset import TokenizedDataset
from workbench.data.tokenizer import Vocabulary
from workbench.errors import ConfigError, DatasetError

PAD_MULTIPLE = 8


@dataclass
class Batch:
    """One batch, ready for the model. Shapes: B sequences of T positions."""

    input_ids: np.ndarray       # (B, T) int64, after masking
    token_type_ids: np.ndarray  # (B, T) int64: 0 for [CLS] A [SEP], 1 for B [SEP], 0 on padding
    attention_mask: np.ndarray  # (B, T) int64: 1 on real tokens, 0 on padding
    mlm_labels: np.ndarray      # (B, T) int64: original id where predicted, -100 elsewhere
    kinds: np.ndarray           # (B, T) int8: masking.NOT_SELECTED | MASKED | RANDOM | KEPT
    original_ids: np.ndarray    # (B, T) int64: the ids before masking
    nsp_labels: np.ndarray      # (B,) int64: 0 IsNext, 1 NotNext
    truncated: np.ndarray       # (B,) bool: the pair was trimmed to fit
    a_lengths: np.ndarray       # (B,) int64: tokens of segment A (without specials)
    b_lengths: np.ndarray       # (B,) int64

    def __len__(self) -> int:
        return len(self.nsp_labels)


def assemble(tokens: np.ndarray, plan: PairPlan, vocab: Vocabulary, max_seq_length: int) -> tuple[np.ndarray, ...]:
    """Lay out ``[CLS] A [SEP] B [SEP] [PAD]...`` for every pair with one gather.

    Returns (input_ids, token_type_ids, attention_mask), each (B, T) int64.
    """
    a_len = plan.a_len[:, None]                                           # (B, 1)
    b_len = plan.b_len[:, None]
    total = plan.a_len + plan.b_len + 3
    T = min(max_seq_length, int(-(-total.max() // PAD_MULTIPLE) * PAD_MULTIPLE)) if len(plan) else PAD_MULTIPLE
    pos = np.arange(T)[None, :]                                           # (1, T)
    in_a = (pos >= 1) & (pos <= a_len)
    b_first = a_len + 2
    in_b = (pos >= b_first) & (pos < b_first + b_len)
    source = np.where(in_a, plan.a_start[:, None] + pos - 1, np.where(in_b, plan.b_start[:, None] + pos - b_first, 0))
    ids = np.asarray(tokens[source.ravel()], dtype=np.int64).reshape(source.shape)  # gather from the memmap
    ids[:, 0] = vocab.cls_id
    sep = (pos == a_len + 1) | (pos == b_first + b_len)
    ids[sep] = vocab.sep_id
    real = pos < total[:, None]
    ids[~real] = vocab.pad_id
    token_types = ((pos >= b_first) & real).astype(np.int64)
    return ids, token_types, real.astype(np.int64)


def make_batch(tokens: np.ndarray, plan: PairPlan, vocab: Vocabulary, config: WorkbenchConfig,
               rng: np.random.Generator, progress: float = 0.0) -> Batch:
    """The pairs of ``plan`` assembled and masked at the rate for the run's ``progress`` (0: its start)."""
    ids, token_types, attention = assemble(tokens, plan, vocab, config.data.max_seq_length)
    masking = config.masking
    if masking.final_probability:
        masking = dataclasses.replace(masking, probability=masking.probability_at(progress))
    masked: MaskedTokens = mask_batch(ids, attention, vocab, masking, rng)
    return Batch(masked.input_ids, token_types, attention, masked.labels, masked.kinds, ids,
                 plan.label.copy(), plan.truncated.copy(), plan.a_len.copy(), plan.b_len.copy())


class BatchStream:
    """Deterministic batches of a dataset for a given config, seed, rank and world size."""

    def __init__(self, dataset: TokenizedDataset, config: WorkbenchConfig, batch_size: int, seed: int,
                 split: str = "train", rank: int = 0, world_size: int = 1):
        if split not in ("train", "heldout"):
            raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
        self.dataset = dataset
        self.config = config
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.vocab = dataset.vocabulary
        train_docs, heldout_docs = document_split(dataset.num_documents, config.data.heldout_fraction)
        self.documents = train_docs if split == "train" else heldout_docs
        self.split = split
        self._plans: dict[int, PairPlan] = {}

    def plan(self, epoch: int) -> PairPlan:
        """The pairs of an epoch (cached: building it is a pass over the sentences)."""
        if epoch not in self._plans:
            rng = np.random.default_rng([self.seed, epoch, 0 if self.split == "train" else 1])
            self._plans = {epoch: build_pair_plan(self.dataset.sentence_offsets, self.dataset.document_offsets,
                                                  self.documents, self.config.data, self.config.nsp, rng)}
        return self._plans[epoch]

    def batches_per_epoch(self, epoch: int = 0) -> int:
        """Full global batches in an epoch (the remainder is dropped, as usual for pre-training)."""
        return len(self.plan(epoch)) // (self.batch_size * self.world_size)

    def batch(self, epoch: int, index: int, progress: float = 0.0) -> Batch:
        """Batch ``index`` of ``epoch``, masked at the rate for the run's ``progress`` (0: its start)."""
        plan = self.plan(epoch)
        global_size = self.batch_size * self.world_size
        start = index * global_size + self.rank * self.batch_size
        pairs = plan.take(slice(start, start + self.batch_size))
        if len(pairs) == 0:
            raise IndexError(f"epoch {epoch} has no batch {index}")
        rng = np.random.default_rng([self.seed, epoch, 2, index, self.rank])
        return make_batch(self.dataset.tokens, pairs, self.vocab, self.config, rng, progress)

    def iterate(self, epoch: int = 0, start: int = 0,
                progress: Callable[[], float] | None = None) -> Iterator[tuple[int, int, Batch]]:
        """Yield (epoch, batch index, batch) forever, from the given position on; each batch is masked at the
        rate for ``progress()`` as it stands when the batch is asked for (0 without it)."""
        while True:
            count = self.batches_per_epoch(epoch)
            if count == 0:
                raise DatasetError(
                    f"{self.dataset.path}: too small for one batch of {self.batch_size * self.world_size} pairs "
                    f"({len(self.plan(epoch))} pairs per epoch); use a smaller batch size or a larger corpus"
                )
            for index in range(start, count):
                yield epoch, index, self.batch(epoch, index, progress() if progress is not None else 0.0)
            epoch, start = epoch + 1, 0


def micro_batch_size(config: WorkbenchConfig, world_size: int = 1) -> int:
    """Pairs per forward pass: ``train.batch_size`` split over accumulation steps and processes."""
    t = config.train
    micro, remainder = divmod(t.batch_size, t.gradient_accumulation_steps * world_size)
    if remainder or micro == 0:
        raise ConfigError(f"train.batch_size ({t.batch_size}) must be divisible by "
                          f"train.gradient_accumulation_steps x processes ({t.gradient_accumulation_steps} x "
                          f"{world_size})")
    return micro


def training_stream(dataset: TokenizedDataset, config: WorkbenchConfig, rank: int = 0,
                    world_size: int = 1) -> BatchStream:
    """The stream a training process of rank ``rank`` (of ``world_size``) feeds its model from.

    ``Trainer`` and the window's masking preview both call this: the preview's
    example ``k`` is micro-batch ``k // micro_batch_size``, row ``k % micro_batch_size``,
    of rank 0 in the first epoch - the very pairs and masks training uses."""
    return BatchStream(dataset, config, micro_batch_size(config, world_size), config.train.seed, "train", rank,
                       world_size)
