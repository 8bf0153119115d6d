"""A few optimizer steps on a model's own training terms, for the tests that ask whether a step lowers the loss."""

from __future__ import annotations

import torch


def adam_steps(model: torch.nn.Module, x: torch.Tensor, steps: int, lr: float, seed: int | None = None) -> list[float]:
    """The loss at each of `steps` Adam steps on x (the same noise each step when `seed` is given)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        if seed is not None:
            torch.manual_seed(seed)
        terms = model(x)
        optimizer.zero_grad()
        terms.loss.backward()
        optimizer.step()
        losses.append(float(terms.loss.detach()))
    return losses
