"""Binarization protocols for grey-level images in [0, 1], as used for MNIST NLL tables.

Draws are keyed on (seed, epoch) rather than on a stateful generator, so a resumed run, or a run split
over DDP ranks, sees exactly the pixels a single uninterrupted process would.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["BINARIZATIONS", "bernoulli_draw", "binarize"]

BINARIZATIONS = ("dynamic", "static", "none")


def bernoulli_draw(x: Tensor, seed: int) -> Tensor:
    """One Bernoulli(x) draw per pixel, reproducible from `seed` (drawn on the CPU, moved to x's device)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(x.shape, generator=g, dtype=torch.float32)
    return (noise.to(x.device) < x).to(x.dtype)


def binarize(x: Tensor, protocol: str, seed: int = 0, epoch: int = 0) -> Tensor:
    """Apply a protocol: 'dynamic' (a fresh draw each epoch), 'static' (one fixed draw), 'none' (as is)."""
    if protocol == "none":
        return x
    if protocol == "static":
        return bernoulli_draw(x, seed)
    if protocol == "dynamic":
        return bernoulli_draw(x, seed * 1_000_003 + epoch + 1)
    raise ValueError(f"binarization must be one of {BINARIZATIONS}, got {protocol!r}")
