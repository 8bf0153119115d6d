"""Refitting a trained poem model's encoder to the true ELBO with its decoder frozen (the amortization gap), or
with the decoder fine-tuned alongside at a low rate.

Training shapes the posterior to feed the decoder (BN-VAE's floor keeps the KL up); once the decoder is trained,
an encoder fitted to the ELBO alone, under a lower floor, gives a tighter bound on the same decoder (Cremer et al.
2018, He et al. 2019). `scripts/refit_poem_encoder.py` applies it to a shipped model. `optimise_posteriors` fits a
Gaussian to each poem's true posterior by itself (no encoder): what any Gaussian encoder could reach at best on a
decoder, so the rest of the gap to log p(x) is the decoder's or the Gaussian family's, not the encoder's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Distribution, MultivariateNormal, kl_divergence

from vaekit.distributions import diagonal_gaussian
from vaekit.objectives import elbo
from vaekit.poetry.model import PoemVAE

__all__ = ["refit_encoder", "fit_prior", "optimise_posteriors", "posterior_elbo"]

COVARIANCES = ("diagonal", "full")


def refit_encoder(model: PoemVAE, train: Tensor, steps: int, lr: float = 1e-3, batch_size: int = 128, seed: int = 0,
                  log: Callable[[str], None] | None = None, labels: Tensor | None = None,
                  kl_weight: float = 1.0, decoder_lr: float = 0.0, word_dropout: float | None = None) -> None:
    """Fit the encoder side (encoder, posterior head, BN statistics) to the true ELBO on `train` (with its themes
    `labels`, for a themed model), the decoder, the shared embedding and the prior frozen: Adam on a cosine schedule,
    the decoder in eval mode (no dropout), the BN in training mode. `kl_weight` < 1 weighs the KL less while
    fitting (a softer way than the BN floor to hold the KL up; the ELBO logged is the true one). `decoder_lr` > 0
    fine-tunes every other parameter too (decoder, shared embedding, a themed prior's means), at that rate with
    the training recipe's dropout on: the decoder then learns from the refitted posteriors, not the training-time
    ones. `word_dropout` hides the decoder's input characters at that rate during this fine-tuning only (Bowman et
    al.: a decoder that cannot read every character before must lean on z); the model's own rate is restored."""
    if bool(getattr(model, "themes", 0)) != (labels is not None):
        raise ValueError("a themed model is refitted with the themes of its poems (labels), a plain one without")
    if decoder_lr < 0:
        raise ValueError(f"decoder_lr must be 0 (decoder frozen) or positive, got {decoder_lr}")
    if word_dropout is not None and not (decoder_lr > 0 and 0 <= word_dropout < 1):
        raise ValueError(f"word_dropout is a rate in [0, 1) for a decoder fine-tuned alongside (decoder_lr > 0), "
                         f"got {word_dropout} with decoder_lr {decoder_lr}")
    if word_dropout and model.decoder_kind == "parallel":
        raise ValueError("word dropout hides the characters an autoregressive decoder reads; the parallel decoder "
                         "reads none")
    encoder = [model.encoder, model.to_posterior] + ([model.mean_norm] if model.posterior_bn > 0 else [])
    params = [p for m in encoder for p in m.parameters()] + ([model.mean_shift] if model.posterior_bn > 0 else [])
    ours = {id(p) for p in params}
    rest = [p for p in model.parameters() if id(p) not in ours] if decoder_lr > 0 else []
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params + rest:
        p.requires_grad_(True)
    opt = torch.optim.Adam([{"params": params}] + ([{"params": rest, "lr": decoder_lr}] if rest else []), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    generator = torch.Generator().manual_seed(seed)
    model.train(bool(rest))
    trained_word_dropout = model.word_dropout
    if word_dropout is not None:
        model.word_dropout = word_dropout
    for m in encoder:
        m.train()
    start = time.perf_counter()
    for step in range(steps):
        rows = torch.randint(len(train), (batch_size,), generator=generator)
        terms = elbo(model, train[rows], None if labels is None else labels[rows], beta=kl_weight)
        loss = terms.loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        if log is not None and (step % 100 == 0 or step == steps - 1):
            log(f"step {step}: -ELBO {-terms.elbo.mean().item():.2f}, KL {terms.kl.mean().item():.2f} "
                f"({time.perf_counter() - start:.0f} s)")
    for p in model.parameters():
        p.requires_grad_(True)
    model.word_dropout = trained_word_dropout
    model.eval()


@torch.no_grad()
def fit_prior(model: PoemVAE, train: Tensor, batch_size: int = 2000) -> dict[str, float]:
    """Set a `prior="fitted"` model's N(m, L L^T) to the aggregate posterior's mean and covariance on `train`.

    E_x KL(q(z|x) || p) = const + cross-entropy of the aggregate posterior under p, so among Gaussians the moment
    match is the minimiser: m = E[mu], S = Cov(mu) + E[diag s^2] (Hoffman & Johnson's "ELBO surgery": the KL pays
    for the aggregate's distance from the prior as well as for what z says). Returns the KL it saves on `train`.
    """
    if getattr(model, "prior_kind", "standard") != "fitted":
        raise ValueError("fit_prior needs a model built with prior='fitted'")
    was_training = model.training
    model.eval()
    posteriors = [model.posterior(train[i:i + batch_size]) for i in range(0, len(train), batch_size)]
    model.train(was_training)
    mu = torch.cat([q.mean for q in posteriors]).double()
    var = torch.cat([q.variance for q in posteriors]).double()
    kl_before = float(sum(kl_divergence(q, model.prior()).sum() for q in posteriors)) / len(mu)
    loc = mu.mean(0)
    covariance = torch.cov(mu.T, correction=0) + torch.diag(var.mean(0))
    model.prior_loc.copy_(loc.to(model.prior_loc))
    model.prior_scale_tril.copy_(torch.linalg.cholesky(covariance).to(model.prior_scale_tril))
    kl_after = float(sum(kl_divergence(q, model.prior()).sum() for q in posteriors)) / len(mu)
    return {"kl_before": kl_before, "kl_after": kl_after}


def _as_full(p: Distribution) -> MultivariateNormal:
    """A diagonal Gaussian (the prior) as a MultivariateNormal, for the closed-form KL of a full-covariance q."""
    return MultivariateNormal(p.mean, scale_tril=torch.diag_embed(p.stddev))


def posterior_elbo(model: PoemVAE, x: Tensor, q: Distribution, labels: Tensor | None = None,
                   samples: int = 1) -> tuple[Tensor, Tensor]:
    """Per-poem (ELBO, KL) under a given q(z | poem): the likelihood term averaged over `samples` reparameterized
    draws, the KL against the model's prior in closed form (diagonal or full-covariance q)."""
    p = model.prior(labels)
    if isinstance(q, MultivariateNormal) and not isinstance(p, MultivariateNormal):
        p = _as_full(p)
    log_likelihood = sum(model.likelihood(q.rsample(), labels).log_prob(x) for _ in range(samples)) / samples
    kl = kl_divergence(q, p).expand_as(log_likelihood)
    return log_likelihood - kl, kl


def optimise_posteriors(model: PoemVAE, x: Tensor, steps: int = 100, lr: float = 0.02, covariance: str = "diagonal",
                        labels: Tensor | None = None, off_diagonal_lr: float = 0.002, kl_weight: float = 1.0,
                        seed: int = 0, log: Callable[[str], None] | None = None) -> Distribution:
    """A Gaussian q for each poem of `x`, fitted to that poem's true ELBO by Adam with the model frozen (Hoffman et
    al.'s stochastic variational inference, started at the encoder's answer as in Kim et al. 2018's SA-VAE).

    `covariance` "full" adds a lower-triangular factor (started at zero, on its own smaller learning rate: at the
    means' rate its noisy steps alone took the bound from 189 to 290). `kl_weight` below 1 fits likelihood -
    kl_weight * KL instead (the Lagrangian of the true ELBO under a floor on the KL: the best bound at a given KL).
    The model's parameters are left as they were; the result is detached, for `posterior_elbo` and `greedy(q.mean)`.
    """
    if covariance not in COVARIANCES:
        raise ValueError(f"covariance must be one of {', '.join(COVARIANCES)}; got {covariance!r}")
    was_training = model.training
    model.eval()
    with torch.no_grad():
        start = model.posterior(x, labels)
    mu = start.mean.detach().clone().requires_grad_(True)
    logvar = (2 * start.stddev.log()).detach().clone().requires_grad_(True)
    d = mu.shape[-1]
    rows, cols = torch.tril_indices(d, d, -1, device=mu.device)
    off = torch.zeros(len(x), len(rows), device=mu.device, requires_grad=True)

    def gaussian(mu: Tensor, logvar: Tensor, off: Tensor) -> Distribution:
        if covariance == "diagonal":
            return diagonal_gaussian(mu, logvar)
        factor = torch.diag_embed((0.5 * logvar).exp())
        factor = factor.index_put((torch.arange(len(x), device=mu.device)[:, None], rows, cols), off)
        return MultivariateNormal(mu, scale_tril=factor)

    groups: list[dict] = [{"params": [mu, logvar]}]
    if covariance == "full":
        groups.append({"params": [off], "lr": off_diagonal_lr})
    opt = torch.optim.Adam(groups, lr=lr)
    needed = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    devices = [mu.device] if mu.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):  # the draws follow `seed`; the caller's generator is left alone
            torch.manual_seed(seed)
            for step in range(steps):
                bound, kl = posterior_elbo(model, x, gaussian(mu, logvar, off), labels)
                opt.zero_grad()
                (-(bound + (1 - kl_weight) * kl).sum()).backward()
                opt.step()
                if log is not None and (step % 25 == 0 or step == steps - 1):
                    log(f"step {step}: ELBO {bound.mean().item():.2f}, KL {kl.mean().item():.2f}")
    finally:
        for p, need in zip(model.parameters(), needed, strict=True):
            p.requires_grad_(need)
        model.train(was_training)
    return gaussian(mu.detach(), logvar.detach(), off.detach())
