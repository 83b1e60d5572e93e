"""DistributedDataParallel set-up from the environment ``torchrun`` provides.

Under ``torchrun`` every process has RANK, WORLD_SIZE and LOCAL_RANK; we join
the process group (nccl on CUDA, gloo on CPU) and each rank trains on its own
slice of every global batch. Without those variables nothing happens.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    active: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def all_gather_bytes(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's copy of a CPU byte tensor of equal size (e.g. RNG states), in rank order."""
        if not self.active:
            return [tensor]
        device = torch.device("cuda", self.local_rank) if dist.get_backend() == "nccl" else torch.device("cpu")
        local = tensor.to(device)
        gathered = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(gathered, local)
        return [t.cpu() for t in gathered]

    def close(self) -> None:
        if self.active and dist.is_initialized():
            # DistributedDataParallel's reducer sits in reference cycles (autograd hooks); collected only
            # at interpreter exit, after the group is gone, its gloo threads abort the process
            # ("terminate called without an active exception"). Collect it while the group lives,
            # then tear down together.
            import gc

            gc.collect()
            try:
                dist.barrier()
            except RuntimeError:  # another rank failed: nothing left to agree on
                pass
            dist.destroy_process_group()
            self.active = False


def init_distributed(device_type: str) -> Distributed:
    """Join the process group if launched by torchrun; a no-op otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Distributed(rank=rank, world_size=world_size, local_rank=local_rank, active=True)
