"""Training on several processes with torchrun and DistributedDataParallel: gloo on CPUs, NCCL on GPUs.

    torchrun --nproc-per-node 2 -m gruasr train --config configs/tiny.toml --out runs/tiny-ddp
    torchrun --nnodes 2 --node-rank R --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 \\
        -m gruasr train --config ... --out SHARED/runs/x        # every node: the same command, its own R

torchrun starts one process per rank and sets RANK, LOCAL_RANK and WORLD_SIZE (and the rendezvous address); a
plain `gruasr train` is one rank of one. How a step is shared: every rank builds the same bucketed batches of the
epoch (the sampler is seeded by the run's seed and the epoch), and rank r takes utterances r, r + W, r + 2W, ... of
each batch, so the ranks see disjoint shares that together are the one-process batch. Each rank's loss is its
utterances' CTC losses (each divided by its target length, as `reduction="mean"` does) summed and divided by
the whole batch's size, times W; DDP averages the gradients over the W ranks, so the update is exactly the
one-process update of the whole batch (tests/training/test_distributed.py compares the weights). With
`train.accumulate = A`, each rank's share is further cut into A micro-batches whose gradients add up before the
step (DDP's no_sync on all but the last), for a global batch larger than memory: same update, less memory.

Dropout and SpecAugment draw from per-rank seeds (seed + rank; SpecAugment's masks are seeded by the batch's
keys, so a share draws other masks than the whole batch would), which is what makes a multi-rank run differ from
a one-process run at all; with both off the runs agree to rounding. Rank 0 alone writes checkpoints, the model,
logs and TensorBoard; each checkpoint carries every rank's RNG state, so a killed run resumes exactly (under the
same number of ranks). Every rank computes the features of the whole corpus and evaluates dev itself (the same
numbers on every rank, so no rank waits on another's selection).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from gruasr.errors import ConfigError

T = TypeVar("T")


def pick_device(name: str) -> torch.device:
    """`train.device`: "auto" is CUDA when there is a GPU, else the CPU; anything else as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Ranks:
        """From torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); one process of one when they are unset."""
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError as err:
            raise ConfigError(f"torchrun's RANK/WORLD_SIZE/LOCAL_RANK are not integers ({err})") from None
        if world < 1 or not 0 <= rank < world or local < 0:
            raise ConfigError(f"bad torchrun environment: RANK={rank} WORLD_SIZE={world} LOCAL_RANK={local}")
        return cls(rank, world, local)

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def device(self, name: str) -> torch.device:
        """The device of this rank: the GPU of its local rank under torchrun with CUDA, else as configured."""
        device = pick_device(name)
        if device.type == "cuda" and self.distributed and device.index is None:
            return torch.device("cuda", self.local_rank)
        return device

    def start(self, device: torch.device) -> None:
        """Join the process group (NCCL for CUDA devices, gloo otherwise); nothing to do for one process."""
        if not self.distributed or dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def stop(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()

    def share(self, keys: list[T]) -> list[T]:
        """This rank's share of a global batch: items rank, rank + W, rank + 2W, ..."""
        return keys[self.rank :: self.world]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum(self, value: float) -> float:
        """The sum of a number over the ranks."""
        if not self.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            tensor = tensor.cuda()
        dist.all_reduce(tensor)
        return float(tensor.item())

    def gather(self, value: Any) -> list[Any]:
        """Every rank's (picklable) value, in rank order, on every rank."""
        if not self.distributed:
            return [value]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value)
        return out
