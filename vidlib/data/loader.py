"""Seeded, resumable data loading: the loader the training engine uses, for everyone.

Every random choice that makes a training clip (which frames, which crop, whether to flip) is drawn from
generators seeded by ``(seed, epoch, index)`` alone, so a clip does not depend on the DataLoader worker
that made it, on the number of workers, or on where an interrupted run resumed:

- :class:`EpochSampler` yields ``(index, epoch)``: a permutation of the data set drawn from
  ``seed + epoch`` (a ``DistributedSampler``, so under ``torchrun`` every process takes its share), which
  can skip the samples an interrupted epoch already used;
- :class:`SeededSamples` seeds torch's CPU generator, NumPy and ``random`` from ``(seed, epoch, index)``
  for the one call that makes the sample, then restores them;
- :func:`make_loader` puts the two in a ``DataLoader``.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

__all__ = ["EpochSampler", "SeededSamples", "make_loader"]


class EpochSampler(DistributedSampler):
    """Yields ``(index, epoch)``; shuffled per epoch from ``seed + epoch``; can resume mid-epoch.

    Args:
        dataset: the data set.
        seed: the run's seed.
        num_replicas, rank: the process's share under ``torchrun`` (1 and 0 for a single process).
        shuffle: a new permutation every epoch (``False``: dataset order).

    Call :meth:`set_epoch` before each epoch. The global batch ``k`` of a run with ``N`` processes holds
    the same samples as batch ``k`` of a single-process run with an N times larger batch.
    """

    def __init__(self, dataset, *, seed: int, num_replicas: int = 1, rank: int = 0, shuffle: bool = True):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Start epoch ``epoch``, leaving out its first ``skip`` samples of this process (resume)."""
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self):
        indices = list(super().__iter__())[self.skip :]
        return iter([(i, self.epoch) for i in indices])

    def __len__(self) -> int:
        return self.num_samples - self.skip


class SeededSamples(Dataset):
    """Wrap a dataset so that sample ``index`` of epoch ``epoch`` is drawn with its own seed.

    Indexed by ``(index, epoch)`` (what :class:`EpochSampler` yields). The random generators (torch's CPU
    generator, NumPy, ``random``) are seeded from ``(seed, epoch, index)`` for the call and restored
    afterwards, so augmentations depend on nothing else (not the worker, not the resume point).
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        index, epoch = key
        s = int(np.random.SeedSequence([self.seed, epoch, index]).generate_state(1)[0])
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            # the CPU generator only: the one the data pipeline uses
            with torch.random.fork_rng(devices=[]):
                # (torch.manual_seed would also reseed CUDA's)
                torch.random.default_generator.manual_seed(s)
                random.seed(s)
                np.random.seed(s)
                return self.dataset[index]
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
    sampler: EpochSampler | None = None,
    persistent_workers: bool = False,
) -> DataLoader:
    """A reproducible ``DataLoader`` of ``dataset``: the same ``seed`` gives the same batches, in any worker
    setup.

    Args:
        shuffle: a new order every epoch (``loader.sampler.set_epoch(e)``), drawn from ``seed + e``.
        sampler: an :class:`EpochSampler` to use instead (the trainer passes one with its process's share).
        drop_last, pin_memory, num_workers, persistent_workers: as in ``DataLoader``.
    """
    sampler = sampler if sampler is not None else EpochSampler(dataset, seed=seed, shuffle=shuffle)
    return DataLoader(
        SeededSamples(dataset, seed),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=persistent_workers and num_workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )
