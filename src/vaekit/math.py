"""The formulas of the theory as small pure functions, tested against torch.distributions and Monte Carlo.

Models use `torch.distributions` directly; these exist so that each formula of the notes has one
readable, checked implementation (and for code that wants the arithmetic without distribution objects).
"""

from __future__ import annotations

import math as _math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "kl_discrete",
    "kl_normal_std",
    "kl_normal",
    "log_normal_pdf",
    "reparameterize",
    "LOG_2PI",
]

LOG_2PI = _math.log(2.0 * _math.pi)

ArrayLike = Tensor | Sequence[float] | Sequence[Sequence[float]]


def _as_probabilities(name: str, values: ArrayLike) -> Tensor:
    t = values if isinstance(values, Tensor) else torch.as_tensor(values, dtype=torch.float64)
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if t.ndim == 0:
        raise ValueError(f"{name} must be a vector of probabilities, got a scalar")
    if torch.isnan(t).any():
        raise ValueError(f"{name} contains NaN; pass finite probabilities")
    if (t < 0).any():
        raise ValueError(f"{name} has negative entries; probabilities must be >= 0")
    total = t.sum(-1)
    tol = 1e-6 if t.dtype == torch.float64 else 1e-4
    if not torch.allclose(total, torch.ones_like(total), atol=tol, rtol=0):
        raise ValueError(f"{name} does not sum to 1 (sums: {total.tolist()}); normalise it first")
    return t


def kl_discrete(p: ArrayLike, q: ArrayLike) -> float | Tensor:
    """KL(P || Q) = sum_i p_i log(p_i / q_i) in nats, over the last axis.

    Terms with p_i = 0 contribute 0 (the limit of p log p); q_i = 0 where p_i > 0 gives inf.
    Returns a float for a single pair of vectors, a tensor for batches.
    """
    pt = _as_probabilities("p", p)
    qt = _as_probabilities("q", q)
    if pt.shape != qt.shape:
        raise ValueError(f"p and q must have the same shape, got {tuple(pt.shape)} and {tuple(qt.shape)}")
    dtype = torch.promote_types(pt.dtype, qt.dtype)
    pt, qt = pt.to(dtype), qt.to(dtype)
    ratio_log = torch.log(pt) - torch.log(qt)  # inf where q = 0 < p; nan where p = 0 (masked below)
    terms = torch.where(pt > 0, pt * ratio_log, torch.zeros_like(pt))
    kl = terms.sum(-1)
    return float(kl) if kl.ndim == 0 else kl


def kl_normal_std(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) = 1/2 sum(-log sigma^2 + mu^2 + sigma^2 - 1), summed over the last axis."""
    return 0.5 * (-logvar + mu.pow(2) + logvar.exp() - 1.0).sum(-1)


def kl_normal(mu1: Tensor, logvar1: Tensor, mu2: Tensor, logvar2: Tensor) -> Tensor:
    """KL(N(mu1, sigma1^2) || N(mu2, sigma2^2)) for diagonal Gaussians, summed over the last axis."""
    return 0.5 * (logvar2 - logvar1 + (logvar1.exp() + (mu1 - mu2).pow(2)) / logvar2.exp() - 1.0).sum(-1)


def log_normal_pdf(x: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """Elementwise log N(x; mean, exp(logvar)); sum over the event axes yourself (`.sum(-1)`)."""
    return -0.5 * (LOG_2PI + logvar + (x - mean).pow(2) * torch.exp(-logvar))


def reparameterize(mu: Tensor, logvar: Tensor, eps: Tensor | None = None) -> Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I): a sample that gradients flow through to mu and logvar."""
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + torch.exp(0.5 * logvar) * eps
