"""The objectives, in one place: every model trains on one of these, none carries its own copy.

A model exposes three `torch.distributions` objects, and that is all the objectives use:

    q  = model.posterior(x, y)    # q(z|x)
    p  = model.prior(y)           # p(z)
    px = model.likelihood(z, y)   # p(x|z); z may carry leading sample dimensions (k, B, latent)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor
from torch.distributions import Distribution, kl_divergence

__all__ = ["LatentVariableModel", "ELBOTerms", "elbo", "iwae_bound", "reconstruction_loss"]


class LatentVariableModel(Protocol):
    """The interface every vaekit model shares (design.md): three distributions."""

    def posterior(self, x: Tensor, y: Tensor | None = None) -> Distribution: ...

    def prior(self, y: Tensor | None = None) -> Distribution: ...

    def likelihood(self, z: Tensor, y: Tensor | None = None) -> Distribution: ...


@dataclass
class ELBOTerms:
    """Per-example terms of the bound, each of shape (B,), so logs and plots read them without recomputing.

    `elbo` = log_likelihood - kl is the bound itself (beta never enters it); `loss` is what training
    minimises: -(log_likelihood - beta * kl), averaged over the batch.
    """

    log_likelihood: Tensor
    kl: Tensor
    elbo: Tensor
    loss: Tensor
    z: Tensor | None = None  # the reparameterized sample the terms used (auxiliary losses read it)


def elbo(model: LatentVariableModel, x: Tensor, y: Tensor | None = None, kl: str = "analytic",
         beta: float = 1.0, free_bits: float = 0.0) -> ELBOTerms:
    """ELBO = E_q[log p(x|z)] - KL(q(z|x) || p(z)), one reparameterized sample per example.

    kl="analytic" uses the closed-form KL (lower variance); kl="mc" uses log q(z|x) - log p(z) on the
    same sample, which works for any prior and posterior. Both are unbiased for the same quantity.
    `free_bits` > 0 (Kingma et al. 2016) charges each latent dimension at least that many nats of KL,
    averaged over the batch, in the training loss only: a dimension below the floor feels no pull towards
    the prior, which keeps an autoregressive decoder from ignoring z. The reported `kl` and `elbo` stay true.
    """
    if kl not in ("analytic", "mc"):
        raise ValueError(f"kl must be 'analytic' or 'mc', got {kl!r}")
    q = model.posterior(x, y)
    z = q.rsample()
    log_likelihood = model.likelihood(z, y).log_prob(x)
    p = model.prior(y)
    kl_term = kl_divergence(q, p) if kl == "analytic" else q.log_prob(z) - p.log_prob(z)
    kl_term = kl_term.expand_as(log_likelihood)
    bound = log_likelihood - kl_term
    charged = kl_term.mean()
    if free_bits > 0:
        per_dim = kl_divergence(q.base_dist, p.base_dist)  # (B, D): needs the diagonal Gaussian pair
        charged = torch.clamp(per_dim.reshape(-1, per_dim.shape[-1]).mean(0), min=free_bits).sum()
    loss = -log_likelihood.mean() + beta * charged
    return ELBOTerms(log_likelihood=log_likelihood, kl=kl_term, elbo=bound, loss=loss, z=z)


def iwae_bound(model: LatentVariableModel, x: Tensor, k: int, chunk_size: int | None = None,
               y: Tensor | None = None) -> Tensor:
    """log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x): per-example, shape (B,).

    k=1 is the ELBO (Monte Carlo KL); it tightens monotonically in expectation as k grows and tends to
    log p(x) (Burda et al. 2015); k=5000 is the standard test log-likelihood estimate. Samples are drawn
    `chunk_size` at a time and folded into a running logsumexp, so memory is bounded whatever k is.
    Gradients flow when called outside `torch.no_grad()` (IWAE training).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    chunk = k if chunk_size is None else chunk_size
    if chunk < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    q = model.posterior(x, y)
    p = model.prior(y)
    running: Tensor | None = None
    done = 0
    while done < k:
        n = min(chunk, k - done)
        z = q.rsample((n,))
        log_w = model.likelihood(z, y).log_prob(x) + p.log_prob(z) - q.log_prob(z)  # (n, B)
        part = torch.logsumexp(log_w, dim=0)
        running = part if running is None else torch.logaddexp(running, part)
        done += n
    assert running is not None
    return running - math.log(k)


def reconstruction_loss(model: LatentVariableModel, x: Tensor, y: Tensor | None = None) -> ELBOTerms:
    """The autoencoder's objective: -log p(x|z) at the posterior mean, no KL (kl and elbo fields: 0 and ll)."""
    q = model.posterior(x, y)
    log_likelihood = model.likelihood(q.mean, y).log_prob(x)
    zeros = torch.zeros_like(log_likelihood)
    return ELBOTerms(log_likelihood=log_likelihood, kl=zeros, elbo=log_likelihood,
                     loss=-log_likelihood.mean())
