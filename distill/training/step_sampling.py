"""Batches as a pure function of (seed, step, rank): resuming at step N replays exactly what follows.

A global batch of ``batch_size * world_size`` samples is drawn for every step from a seeded
per-epoch permutation; each rank takes its own slice. Samples are addressed as
``epoch * len(dataset) + index`` so that a view's augmentation (seeded by epoch and index) is
the same whether a run was interrupted or not.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, Sampler


class StepBatchSampler(Sampler[list[int]]):
    """Yields this rank's sample addresses for steps ``start_step`` .. ``total_steps - 1``."""

    def __init__(
        self,
        size: int,
        batch_size: int,
        seed: int,
        total_steps: int,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        global_batch = batch_size * world_size
        if size < global_batch:
            raise ValueError(f"the training set has {size} samples, fewer than one global batch ({global_batch})")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.total_steps, self.start_step = total_steps, start_step
        self.rank, self.world_size = rank, world_size
        self.steps_per_epoch = size // global_batch

    def _permutation(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))

    def __iter__(self) -> Iterator[list[int]]:
        cached_epoch, permutation = -1, None
        global_batch = self.batch_size * self.world_size
        for step in range(self.start_step, self.total_steps):
            epoch, within = divmod(step, self.steps_per_epoch)
            if epoch != cached_epoch:
                cached_epoch, permutation = epoch, self._permutation(epoch)
            chosen = permutation[within * global_batch : (within + 1) * global_batch]
            mine = chosen[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
            yield [epoch * self.size + int(index) for index in mine]

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)


class EpochAddressed(Dataset):
    """``views[epoch * N + i]`` = sample ``i`` of ``views`` with its augmentation for ``epoch``."""

    def __init__(self, views) -> None:
        self.views = views

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, address: int):
        epoch, index = divmod(address, len(self.views))
        self.views.set_epoch(epoch)
        return self.views[index]
