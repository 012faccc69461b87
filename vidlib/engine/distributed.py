"""Distributed training helpers: ``torchrun --nproc_per_node=N -m vidlib train ...``.

- :func:`init_distributed` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``),
  picks ``nccl`` on CUDA and ``gloo`` on CPU, and returns a :class:`DistInfo`.
- The training data order is :class:`vidlib.data.EpochSampler` (a ``DistributedSampler``), made for
  this process's rank by the trainer.
- :class:`ShardSampler` splits an evaluation set ``rank::world_size`` without the padding duplicates of
  ``DistributedSampler``; :func:`gather_by_index` puts the per-rank results back in dataset order.
- Logging and checkpoints happen on rank 0 only (:func:`is_main`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

__all__ = [
    "DistInfo",
    "init_distributed",
    "cleanup",
    "is_main",
    "barrier",
    "gather_by_index",
    "all_gather_lists",
    "all_reduce_sum",
    "ShardSampler",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size`` processes, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun set up (no-op for a single process).

    Returns the :class:`DistInfo` and the device this rank uses (``cuda:<local_rank>`` on GPUs).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank, world_size, local_rank), device


def cleanup() -> None:
    """Leave the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_main() -> bool:
    """True on rank 0 (and when not distributed)."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum a few Python numbers over all ranks (float64)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def all_gather_lists(items: list[str]) -> list[str]:
    """The sorted union of every rank's ``items`` (e.g. the videos each rank could not read)."""
    if dist.is_available() and dist.is_initialized():
        parts = [None] * dist.get_world_size()
        dist.all_gather_object(parts, list(items))
        items = [x for part in parts for x in part]
    return sorted(set(items))


def gather_by_index(indices: list[int], items: list) -> list:
    """All ranks' ``(index, item)`` pairs, sorted by dataset index, each index once."""
    pairs = list(zip(indices, items))
    if dist.is_available() and dist.is_initialized():
        parts = [None] * dist.get_world_size()
        dist.all_gather_object(parts, pairs)
        pairs = [p for part in parts for p in part]
    pairs.sort(key=lambda p: p[0])
    if len({i for i, _ in pairs}) != len(pairs):
        raise RuntimeError("gather_by_index: an index was evaluated twice (sampler padding?)")
    return [item for _, item in pairs]


class ShardSampler(Sampler):
    """Indices ``rank, rank + world_size, ...`` of a dataset: every sample on exactly one rank."""

    def __init__(self, length: int, info: DistInfo):
        self.indices = list(range(info.rank, length, info.world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
