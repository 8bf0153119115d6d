"""The objectives, in one place: every model trains on one of these, none carries its own copy.

A flat model exposes three `torch.distributions` objects:

    q  = model.posterior(x, y)    # q(z|x)
    p  = model.prior(y)           # p(z)
    px = model.likelihood(z, y)   # p(x|z); z may carry leading sample dimensions (k, B, latent)

and inherits from `LatentModel` the one pass the objectives read, `latent_groups(x, y, samples)`: its groups of
latents, each with its posterior, its prior and the draw, and p(x | z). A top-down hierarchical model overrides
that pass: group l's posterior q(z_l | z_<l, x) and prior p(z_l | z_<l) come from the same top-down state, computed
after the groups above it were drawn. The ELBO is then log p(x|z) minus the sum of the groups' KL terms, and the
importance weight log p(x, z) - log q(z|x) the sum over groups of log p - log q plus log p(x|z).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution, kl_divergence

__all__ = ["LatentModel", "LatentGroup", "ELBOTerms", "elbo", "iwae_bound", "reconstruction_loss", "group_kls",
           "bound_metrics", "batches", "balanced_kl"]


@dataclass
class LatentGroup:
    """One group of latents on a pass over x: q(z_l | z_<l, x), p(z_l | z_<l), and the reparameterized draw."""

    q: Distribution
    p: Distribution
    z: Tensor


class LatentModel(torch.nn.Module):
    """The base of every model with latents: it declares the pass the objectives read.

    A flat model defines `posterior`, `prior` and `likelihood` and inherits `latent_groups`; a hierarchical model
    overrides `latent_groups`, and its `posterior`, `prior` and `likelihood` speak of its top group (what the
    figures and the page move through)."""

    def posterior(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        raise NotImplementedError

    def prior(self, y: Tensor | None = None) -> Distribution:
        raise NotImplementedError

    def likelihood(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        raise NotImplementedError

    def latent_groups(self, x: Tensor, y: Tensor | None = None, samples: int | None = None
                      ) -> tuple[list[LatentGroup], Distribution]:
        """The groups drawn from q for x (with a leading axis of `samples` draws if given), and p(x | z)."""
        q = self.posterior(x, y)
        z = q.rsample(() if samples is None else (samples,))
        return [LatentGroup(q, self.prior(y), z)], self.likelihood(z, y)

    def posterior_shifts(self, x: Tensor, y: Tensor | None = None) -> list[Tensor]:
        """What each group's posterior mean says beyond its prior, the groups above at their posterior means: what
        active units are counted on. A flat model's is its posterior mean (Burda et al.'s criterion as it stands)."""
        return [self.posterior(x, y).mean]

    def likelihood_at_means(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """p(x | z) with every group at its posterior mean: what a reconstruction decodes."""
        return self.likelihood(self.posterior(x, y).mean, y)





@dataclass
class ELBOTerms:
    """Per-example terms of the bound, each of shape (B,), so logs and plots read them without recomputing.

    `elbo` = log_likelihood - kl is the bound itself (beta never enters it); `loss` is what training
    minimises: -(log_likelihood - beta * kl), averaged over the batch. `kl_groups` holds each group's term (one
    for a flat model); `kl` is their sum.
    """

    log_likelihood: Tensor
    kl: Tensor
    elbo: Tensor
    loss: Tensor
    z: Tensor | None = None  # the reparameterized sample the terms used (the bottom group's; auxiliary losses)
    kl_groups: tuple[Tensor, ...] = ()


def group_kls(groups: list[LatentGroup], kl: str = "analytic") -> list[Tensor]:
    """Each group's KL term on this pass: closed form given the groups above (analytic), or log q - log p at the
    draw (mc), which works for any pair of distributions."""
    if kl not in ("analytic", "mc"):
        raise ValueError(f"kl must be 'analytic' or 'mc', got {kl!r}")
    if kl == "analytic":
        return [kl_divergence(g.q, g.p) for g in groups]
    return [g.q.log_prob(g.z) - g.p.log_prob(g.z) for g in groups]


def _free_bits_charge(groups: list[LatentGroup], free_bits: float) -> Tensor:
    """The KL charged under free bits: each dimension of each group at least `free_bits` nats, averaged over the
    batch (needs diagonal Gaussian pairs)."""
    charged = []
    for g in groups:
        per_dim = kl_divergence(g.q.base_dist, g.p.base_dist)  # (..., B, D)
        charged.append(torch.clamp(per_dim.reshape(-1, per_dim.shape[-1]).mean(0), min=free_bits).sum())
    return charged[0] if len(charged) == 1 else torch.stack(charged).sum()


def balanced_kl(kls: list[Tensor], dims: list[int]) -> tuple[Tensor, Tensor]:
    """NVAE's KL balancing (Vahdat & Kautz 2020): the groups' batch-mean KLs summed with weights proportional to
    each group's KL a latent variable (plus 0.01 nats), normalised to average 1, held constant in the gradient.
    A group that carries little for its size is charged less, so the warm-up does not push it onto its prior
    while the others grow. Returns the charge and the weights."""
    per_group = torch.stack([term.mean() for term in kls])
    size = torch.tensor(dims, dtype=per_group.dtype, device=per_group.device)
    carried = torch.stack([term.detach().abs().mean() for term in kls])  # a Monte Carlo KL may dip below 0
    share = (carried + 0.01) / size
    weights = share / share.mean()
    return (weights * per_group).sum(), weights


def elbo(model: LatentModel, x: Tensor, y: Tensor | None = None, kl: str = "analytic",
         beta: float = 1.0, free_bits: float = 0.0, kl_balance: bool = False) -> ELBOTerms:
    """ELBO = E_q[log p(x|z)] - sum over groups of KL(q(z_l | z_<l, x) || p(z_l | z_<l)), one reparameterized
    sample per example.

    kl="analytic" uses the closed-form KL (lower variance); kl="mc" uses log q - log p on the same sample, which
    works for any prior and posterior. Both are unbiased for the same quantity. `free_bits` > 0 (Kingma et al.
    2016) charges each latent dimension of each group at least that many nats of KL, averaged over the batch, in
    the training loss only: a dimension below the floor feels no pull towards the prior, which keeps an
    autoregressive decoder from ignoring z. `kl_balance` charges several groups by `balanced_kl` while beta < 1
    (the KL warm-up), as NVAE does; from beta = 1 on the charge is the plain sum. The reported `kl` and `elbo` stay
    true either way.
    """
    groups, px = model.latent_groups(x, y)
    log_likelihood = px.log_prob(x)
    kls = [term.expand_as(log_likelihood) for term in group_kls(groups, kl)]
    kl_term = kls[0] if len(kls) == 1 else torch.stack(kls).sum(0)
    bound = log_likelihood - kl_term
    if kl_balance and beta < 1 and len(kls) > 1:
        charged = balanced_kl(kls, [g.z.shape[-1] for g in groups])[0]
    else:
        charged = kl_term.mean() if free_bits <= 0 else _free_bits_charge(groups, free_bits)
    loss = -log_likelihood.mean() + beta * charged
    return ELBOTerms(log_likelihood=log_likelihood, kl=kl_term, elbo=bound, loss=loss, z=groups[-1].z,
                     kl_groups=tuple(kls))


def iwae_bound(model: LatentModel, x: Tensor, k: int, chunk_size: int | None = None,
               y: Tensor | None = None) -> Tensor:
    """log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x): per-example, shape (B,).

    k=1 is the ELBO (Monte Carlo KL); it tightens monotonically in expectation as k grows and tends to
    log p(x) (Burda et al. 2015); k=5000 is the standard test log-likelihood estimate. Samples are drawn
    `chunk_size` at a time and folded into a running logsumexp, so memory is bounded whatever k is. For a
    hierarchical model z_i is the draw of every group, and p and q multiply over the groups.
    Gradients flow when called outside `torch.no_grad()` (IWAE training).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    chunk = k if chunk_size is None else chunk_size
    if chunk < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    running: Tensor | None = None
    done = 0
    while done < k:
        n = min(chunk, k - done)
        groups, px = model.latent_groups(x, y, samples=n)
        log_w = px.log_prob(x)  # (n, B)
        for g in groups:
            log_w = log_w + g.p.log_prob(g.z) - g.q.log_prob(g.z)
        part = torch.logsumexp(log_w, dim=0)
        running = part if running is None else torch.logaddexp(running, part)
        done += n
    assert running is not None
    return running - math.log(k)


def reconstruction_loss(model: LatentModel, x: Tensor, y: Tensor | None = None) -> ELBOTerms:
    """The autoencoder's objective: -log p(x|z) at the posterior mean, no KL (kl and elbo fields: 0 and ll)."""
    q = model.posterior(x, y)
    log_likelihood = model.likelihood(q.mean, y).log_prob(x)
    zeros = torch.zeros_like(log_likelihood)
    return ELBOTerms(log_likelihood=log_likelihood, kl=zeros, elbo=log_likelihood,
                     loss=-log_likelihood.mean())


@torch.no_grad()
def bound_metrics(model: LatentModel, images: Tensor, labels: Tensor | None, batch_size: int = 500,
                  device: torch.device | str = "cpu", reconstruction_only: bool = False,
                  kl: str = "analytic") -> dict[str, float]:
    """Mean ELBO, log-likelihood and KL per example (nats), the KL estimated as `kl` says, with each group's KL for
    a model of several groups; with `reconstruction_only` (an autoencoder) the log-likelihood at the posterior mean
    alone."""
    totals: dict[str, float] = {}
    n = len(images)
    for x, y in batches(images, labels, batch_size, device):
        if reconstruction_only:
            terms = reconstruction_loss(model, x, y)
            parts = {"log_likelihood": terms.log_likelihood}
        else:
            terms = elbo(model, x, y, kl=kl)
            parts = {"elbo": terms.elbo, "log_likelihood": terms.log_likelihood, "kl": terms.kl}
            if len(terms.kl_groups) > 1:
                parts.update({f"kl_group{i}": kl for i, kl in enumerate(terms.kl_groups)})
        for key, value in parts.items():
            totals[key] = totals.get(key, 0.0) + float(value.sum())
    return {key: value / n for key, value in totals.items()}


def batches(images: Tensor, labels: Tensor | None, size: int, device: torch.device | str = "cpu"
            ) -> Iterator[tuple[Tensor, Tensor | None]]:
    """(x, y) in consecutive slices of `size`, on `device`: the one loop every evaluation pass runs; y is None when
    no labels are given."""
    for start in range(0, len(images), size):
        y = None if labels is None else labels[start:start + size].to(device)
        yield images[start:start + size].to(device), y
