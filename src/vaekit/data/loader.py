"""In-memory batching for tensor datasets: one index_select a batch, no per-item Python work.

Shuffles are keyed on (seed, epoch) so a resumed run sees the same order, and DDP ranks take
interleaved slices of the same global batch, so N ranks see exactly what one process would.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["BatchLoader"]


class BatchLoader:
    """Iterate (x, y) batches over tensors already in memory (optionally already on the device)."""

    def __init__(self, images: Tensor, labels: Tensor, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} must divide evenly over {world_size} processes")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle (and nothing else) the next iteration uses."""
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.images)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        order = order.to(self.images.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            if self.world_size > 1:
                idx = idx[self.rank::self.world_size]
            yield self.images.index_select(0, idx), self.labels.index_select(0, idx)
