"""Refitting a trained poem model's encoder to the true ELBO with its decoder frozen (the amortization gap).

Training shapes the posterior to feed the decoder (BN-VAE's floor keeps the KL up); once the decoder is trained,
an encoder fitted to the ELBO alone, under a lower floor, gives a tighter bound on the same decoder (Cremer et al.
2018, He et al. 2019). `scripts/refit_poem_encoder.py` applies it to a shipped model.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor

from vaekit.objectives import elbo
from vaekit.poetry.model import PoemVAE

__all__ = ["refit_encoder"]


def refit_encoder(model: PoemVAE, train: Tensor, steps: int, lr: float = 1e-3, batch_size: int = 128, seed: int = 0,
                  log: Callable[[str], None] | None = None, labels: Tensor | None = None) -> None:
    """Fit the encoder side (encoder, posterior head, BN statistics) to the true ELBO on `train` (with its themes
    `labels`, for a themed model), the decoder, the shared embedding and the prior frozen: Adam on a cosine schedule,
    the decoder in eval mode (no dropout), the BN in training mode."""
    if bool(getattr(model, "themes", 0)) != (labels is not None):
        raise ValueError("a themed model is refitted with the themes of its poems (labels), a plain one without")
    encoder = [model.encoder, model.to_posterior] + ([model.mean_norm] if model.posterior_bn > 0 else [])
    params = [p for m in encoder for p in m.parameters()] + ([model.mean_shift] if model.posterior_bn > 0 else [])
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    generator = torch.Generator().manual_seed(seed)
    model.eval()
    for m in encoder:
        m.train()
    start = time.perf_counter()
    for step in range(steps):
        rows = torch.randint(len(train), (batch_size,), generator=generator)
        terms = elbo(model, train[rows], None if labels is None else labels[rows])
        loss = -terms.elbo.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        if log is not None and (step % 100 == 0 or step == steps - 1):
            log(f"step {step}: -ELBO {loss.item():.2f}, KL {terms.kl.mean().item():.2f} "
                f"({time.perf_counter() - start:.0f} s)")
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
