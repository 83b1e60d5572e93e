"""The metrics of the steps since the last report, accumulated as named sums.

Device sums (losses, right answers, gradient norms) are added without a sync; host counts come from the
batches themselves; both are summed over micro-batches, then across ranks once per report. A checkpoint keeps
the unreported part by name, so a run resumes from a checkpoint written with another set of sums.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from workbench import checkpoint as ckpt
from workbench.data.batches import Batch
from workbench.data.masking import IGNORE_INDEX, KEPT, MASKED, RANDOM
from workbench.train.distributed import Distributed

# The metric accumulator's named sums: values that live on the device (summed without a sync) and counts
# known on the host from the batch itself; both are summed over micro-batches, then across ranks. A
# checkpoint keeps them by name, so a run resumes from a checkpoint written with another set of sums.
DEVICE_SUMS = ("mlm_loss", "nsp_loss", "mlm_correct", "masked_correct", "random_correct", "kept_correct",
               "nsp_correct", "grad_norm")
HOST_SUMS = ("batches", "mlm_total", "masked_total", "random_total", "kept_total", "nsp_total", "real_tokens")
# The order checkpoints written before sums were named (workbench 0.x) kept them in.
_POSITIONAL = (("mlm_loss", "nsp_loss", "mlm_correct", "masked_correct", "random_correct", "kept_correct",
                "nsp_correct", "grad_norm"), ("batches", "mlm_total", "masked_total", "random_total", "kept_total",
                                              "nsp_total"))


class MetricInterval:
    """The metrics of the steps since the last report, summed without a device sync.

    ``sums`` live on the device (losses, right answers by kind, gradient norms); ``counts`` are known on
    the host from the batches themselves (batches, predicted positions by kind, pairs); both are summed
    over micro-batches, then across ranks when reported. A checkpoint keeps the unreported part, so a
    resumed run reports exactly what an uninterrupted one would."""

    def __init__(self, device: torch.device):
        self.device = device
        self.sums = torch.zeros(len(DEVICE_SUMS), dtype=torch.float64, device=device)
        self.counts = np.zeros(len(HOST_SUMS))
        self.tokens = self.positions = self.steps = 0
        self.start = time.perf_counter()

    def add(self, out, tensors: dict, batch: Batch) -> None:
        """One micro-batch's losses and right answers."""
        # Selected positions in row-major order: the order of the model's ``mlm_positions``.
        kinds = batch.kinds.reshape(-1)[batch.mlm_labels.reshape(-1) != IGNORE_INDEX]
        of_kind = np.stack([kinds == kind for kind in (MASKED, RANDOM, KEPT)]).astype(np.float64)   # (3, M)
        masked, random, kept = of_kind.sum(axis=1)
        real = int(batch.attention_mask.sum())
        self._count(batches=1, mlm_total=len(kinds), masked_total=masked, random_total=random, kept_total=kept,
                    nsp_total=len(batch), real_tokens=real)
        with torch.no_grad():
            labels = tensors["mlm_labels"].reshape(-1).index_select(0, out.mlm_positions)
            correct = (out.predicted_tokens() == labels).double()                               # (M,)
            by_kind = torch.from_numpy(of_kind).to(self.device) @ correct                          # (3,)
            sums = {"mlm_loss": out.mlm_loss.detach().double(), "mlm_correct": correct.sum(),
                    "masked_correct": by_kind[0], "random_correct": by_kind[1], "kept_correct": by_kind[2]}
            if out.nsp_logits is not None:
                sums["nsp_loss"] = out.nsp_loss.detach().double()
                sums["nsp_correct"] = (out.nsp_logits.argmax(-1) == tensors["nsp_labels"]).double().sum()
            self._sum(sums)
        self.tokens += real
        self.positions += batch.attention_mask.size

    def _sum(self, values: dict[str, torch.Tensor]) -> None:
        """Add device scalars by name (no sync: one stacked add)."""
        zero = torch.zeros((), dtype=torch.float64, device=self.device)
        self.sums += torch.stack([values.get(name, zero) for name in DEVICE_SUMS])

    def _count(self, **values: float) -> None:
        self.counts += [values.get(name, 0.0) for name in HOST_SUMS]

    def add_grad_norm(self, grad_norm: torch.Tensor) -> None:
        self.sums[DEVICE_SUMS.index("grad_norm")] += grad_norm.detach().double()

    def totals(self, dist: Distributed) -> dict[str, float]:
        """Every sum and count of the interval by name, over all ranks (a sync point: once per report)."""
        together = torch.cat([self.sums, torch.from_numpy(self.counts).to(self.device)])
        return dict(zip(DEVICE_SUMS + HOST_SUMS, dist.all_reduce_sum(together).tolist()))

    def reset(self) -> None:
        self.sums.zero_()
        self.counts[:] = 0
        self.tokens = self.positions = self.steps = 0
        self.start = time.perf_counter()

    def unreported(self, dist: Distributed) -> dict:
        """The unreported part by name, summed over ranks, for a checkpoint (rank 0 restores it on resume)."""
        together = dist.all_reduce_sum(torch.cat([self.sums.cpu(), torch.from_numpy(self.counts)])).tolist()
        return {"sums": dict(zip(DEVICE_SUMS, together[:len(DEVICE_SUMS)])),
                "counts": dict(zip(HOST_SUMS, together[len(DEVICE_SUMS):])),
                "tokens": [self.tokens, self.positions, self.steps], "ranks": dist.world_size}

    def restore(self, state: ckpt.TrainingState, dist: Distributed) -> None:
        """Continue the interval a resumed run was in (its sums on rank 0 only: they are summed over ranks).
        Sums are matched by name: one this version does not keep is dropped, one the checkpoint lacks starts
        at 0 (that interval's report then averages it over fewer micro-batches)."""
        interval = state.interval
        if not interval:
            return
        sums, counts = interval["sums"], interval["counts"]
        if isinstance(sums, list):                   # written before the sums were named
            sums, counts = dict(zip(_POSITIONAL[0], sums)), dict(zip(_POSITIONAL[1], counts))
        if dist.is_main:
            self.sums += torch.tensor([float(sums.get(name, 0.0)) for name in DEVICE_SUMS], dtype=torch.float64,
                                      device=self.device)
            self.counts += [float(counts.get(name, 0.0)) for name in HOST_SUMS]
        self.tokens, self.positions, self.steps = interval["tokens"]
