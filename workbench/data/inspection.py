"""Realised masking and pairing statistics, measured on the examples training uses.

Users set ``probability = 0.15`` and wonder why their model sees something
else: caps, exact-count rounding, whole words and truncation all move the
realised numbers. ``inspect_examples`` draws N examples through the very
``BatchStream`` the trainer uses and reports what actually happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from workbench.config import WorkbenchConfig
from workbench.data.batches import Batch, BatchStream
from workbench.data.masking import KEPT, MASKED, NOT_SELECTED, RANDOM
from workbench.data.pairs import NOT_NEXT
from workbench.data.dataset import TokenizedDataset
from workbench.data.tokenizer import Vocabulary


def training_examples(dataset: TokenizedDataset, config: WorkbenchConfig, samples: int, seed: int,
                      batch_size: int = 32) -> Iterator[Batch]:
    """The first ``samples`` training examples for ``seed``, in batches (the last one cut short)."""
    stream = BatchStream(dataset, config, batch_size, seed)
    left = samples
    epoch = 0
    while left > 0:
        plan = stream.plan(epoch)
        if len(plan) == 0:
            return
        for index in range(-(-len(plan) // batch_size)):
            batch = stream.batch(epoch, index)
            if len(batch) > left:
                batch = _head(batch, left)
            left -= len(batch)
            yield batch
            if left <= 0:
                return
        epoch += 1


def _head(batch: Batch, n: int) -> Batch:
    return Batch(*(getattr(batch, f)[:n] for f in batch.__dataclass_fields__))


def realised_statistics(batches: Iterator[Batch], vocab: Vocabulary, config: WorkbenchConfig) -> dict:
    """Aggregate what the examples really contain. Keys are documented in the README."""
    n = positions = real = candidates = 0
    kinds = np.zeros(4, np.int64)
    special_selected = random_hit_special = zero_selected = truncated = not_next = 0
    lengths: list[np.ndarray] = []
    per_sequence: list[np.ndarray] = []
    specials = np.array([vocab.cls_id, vocab.sep_id, vocab.pad_id])
    for batch in batches:
        n += len(batch)
        positions += batch.input_ids.size
        is_real = batch.attention_mask.astype(bool)
        real += int(is_real.sum())
        candidates += int((is_real & ~vocab.is_special[batch.original_ids]).sum())
        kinds += np.bincount(batch.kinds.ravel(), minlength=4)
        selected = batch.kinds != NOT_SELECTED
        special_selected += int((selected & np.isin(batch.original_ids, specials)).sum())
        random_hit_special += int(vocab.is_special[batch.input_ids[batch.kinds == RANDOM]].sum())
        counts = selected.sum(axis=1)
        zero_selected += int((counts == 0).sum())
        per_sequence.append(counts)
        lengths.append(is_real.sum(axis=1))
        truncated += int(batch.truncated.sum())
        not_next += int((batch.nsp_labels == NOT_NEXT).sum())
    if n == 0:
        return {"samples": 0}
    selected_total = int(kinds[1:].sum())
    length = np.concatenate(lengths)
    chosen = np.concatenate(per_sequence)
    share = (lambda k: float(kinds[k] / selected_total)) if selected_total else (lambda k: 0.0)
    return {
        "samples": n,
        "selected_fraction": selected_total / candidates if candidates else 0.0,
        "mask_fraction": share(MASKED),
        "random_fraction": share(RANDOM),
        "keep_fraction": share(KEPT),
        "special_selected": special_selected,
        "random_hit_special": random_hit_special,
        "is_next_fraction": 1.0 - not_next / n,
        "mean_length": float(length.mean()),
        "max_length": int(length.max()),
        "length_percentiles": {f"p{q}": int(np.percentile(length, q)) for q in (10, 50, 90, 99)},
        "length_histogram": np.bincount(length, minlength=config.data.max_seq_length + 1).tolist(),
        "padding_fraction": 1.0 - real / positions,
        "mean_selected_per_sequence": float(chosen.mean()),
        "selected_per_sequence_histogram": np.bincount(chosen).tolist(),
        "zero_selected_sequences": zero_selected,
        "truncated_fraction": truncated / n,
        "configured": {
            "probability": config.masking.probability,
            "final_probability": config.masking.final_probability,
            "mask_fraction": config.masking.mask_fraction,
            "random_fraction": config.masking.random_fraction,
            "keep_fraction": round(config.masking.keep_fraction, 12),
            "is_next_fraction": 1.0 - config.nsp.random_next_probability if config.nsp.pair_task else 1.0,
            "selection": config.masking.selection,
            "strategy": config.masking.strategy,
            "max_predictions_per_seq": config.masking.max_predictions_per_seq,
            "max_seq_length": config.data.max_seq_length,
            "objective": config.nsp.objective,
        },
    }


@dataclass(frozen=True)
class TokenView:
    """One position of an example, as a viewer draws it."""

    position: int
    original: str    # the token before masking (the label where predicted)
    shown: str       # what the model sees
    kind: int        # NOT_SELECTED | MASKED | RANDOM | KEPT
    role: str        # "special" ([CLS]/[SEP]), "A" or "B"


def example_tokens(batch: Batch, row: int, vocab: Vocabulary) -> list[TokenView]:
    """The real (non-padding) positions of one example: the one source for every renderer."""
    views = []
    for pos in range(batch.input_ids.shape[1]):
        if not batch.attention_mask[row, pos]:
            break
        original = vocab.tokens[int(batch.original_ids[row, pos])]
        role = "special" if original in ("[CLS]", "[SEP]") else "B" if batch.token_type_ids[row, pos] else "A"
        views.append(TokenView(pos, original, vocab.tokens[int(batch.input_ids[row, pos])],
                               int(batch.kinds[row, pos]), role))
    return views


def render_example(batch: Batch, row: int, vocab: Vocabulary, color: bool = False) -> str:
    """One example as text: ``[MASK:orig]`` masked, ``[orig->new]`` random, ``[=orig]`` kept."""
    def paint(text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if color else text

    words = []
    for t in example_tokens(batch, row, vocab):
        if t.kind == MASKED:
            words.append(paint(f"[MASK:{t.original}]", "1;31"))
        elif t.kind == RANDOM:
            words.append(paint(f"[{t.original}->{t.shown}]", "1;33"))
        elif t.kind == KEPT:
            words.append(paint(f"[={t.original}]", "1;32"))
        else:
            words.append(paint(t.original, {"special": "2", "B": "36"}[t.role]) if t.role != "A" else t.original)
    label = "IsNext" if batch.nsp_labels[row] == 0 else "NotNext"
    head = (f"{label}  A={int(batch.a_lengths[row])} B={int(batch.b_lengths[row])} tokens"
            f"{'  (truncated)' if batch.truncated[row] else ''}")
    return head + "\n" + " ".join(words)
