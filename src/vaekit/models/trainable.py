"""What the Trainer asks of a model, declared once with the VAE family's defaults; a model overrides what differs.

The Trainer calls these and nothing else of a model, so it names no model: the GAN brings its own optimizers,
training step, validation metrics and health check; the autoencoder its metrics; a poem model its (no) figures.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from vaekit.objectives import bound_metrics
from vaekit.optim import Optimizer, adamw

__all__ = ["Trainable", "StepContext", "StepResult", "EpochTally"]


@dataclass
class StepContext:
    """What one training step is given by the Trainer: the optimizers, the forward pass to call (the model, or its
    DistributedDataParallel wrapper), the KL weight now, clipping and precision, and the divergence checks."""

    optimizers: list[Optimizer]
    forward: Callable[..., Any]
    beta: float
    grad_clip: float
    amp: bool
    watch: Callable[[float], None]  # stops training on a NaN, infinite or exploding loss
    diverged: Callable[[str, float], Exception]  # the sentence for a value that diverged
    grad_skip: float = 0.0  # a step whose gradient norm exceeds this is not taken (0: every step is)

    def autocast(self, device: torch.device) -> torch.autocast:
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.amp)

    @classmethod
    def standalone(cls, optimizers: list[Optimizer], forward: Callable[..., Any] | None = None, beta: float = 1.0,
                   grad_clip: float = 0.0, amp: bool = False) -> StepContext:
        """A context for stepping a model outside the Trainer (tests, notebooks): no divergence checks."""
        def diverged(what: str, value: float) -> Exception:
            return RuntimeError(f"{what} became {value}")

        return cls(optimizers, forward or (lambda *a, **k: None), beta, grad_clip, amp, lambda _loss: None, diverged)


@dataclass
class StepResult:
    """What a step reports: its loss, the sum of the batch's bound (ELBO; 0 where none), and its KL terms."""

    loss: float
    bound: float = 0.0
    kl: Tensor | None = None
    parts: dict[str, float] | None = None  # the losses a step is made of, where it has several (the GAN's two)
    skipped: bool = False  # the gradient norm passed the skip threshold: the weights did not move
    grad_norm: float | None = None  # the gradient norm before clipping, where the step measured it


@dataclass
class EpochTally:
    """An epoch's steps summed for its log line: mean loss and bound a image, steps skipped, and the gradient norm's
    median and maximum (what a --grad-skip threshold must sit above, in this loss's units)."""

    loss: float = 0.0
    bound: float = 0.0
    seen: int = 0
    skipped: int = 0
    norms: list[float] = field(default_factory=list)

    def add(self, result: StepResult, images: int) -> None:
        self.loss += result.loss * images
        self.bound += result.bound
        self.seen += images
        self.skipped += result.skipped
        if result.grad_norm is not None:
            self.norms.append(result.grad_norm)

    def metrics(self, seconds: float, world_size: int, grad_skip: float) -> dict[str, float]:
        out = {"train_loss": self.loss / max(self.seen, 1), "train_bound": self.bound / max(self.seen, 1),
               "images_per_s": self.seen * world_size / max(seconds, 1e-9), "epoch_seconds": seconds}
        if self.norms:
            out.update(grad_norm_median=statistics.median(self.norms), grad_norm_max=max(self.norms))
        if grad_skip > 0:
            out["skipped_steps"] = self.skipped
        return out


class Trainable:
    """The training protocol, with the defaults of the VAE family (a mixin of torch.nn.Module subclasses)."""

    trains_in_one_process = False  # a model whose step cannot run under DistributedDataParallel
    has_encoder = True  # whether figures may show reconstructions
    uses_labels = False  # whether the model takes the label y
    kl_estimator = "analytic"  # how its KL is estimated: analytic (closed form) or mc (a prior without one)

    def configure_optimizers(self, lr: float, weight_decay: float) -> list[Optimizer]:
        """AdamW over every parameter; the fused kernel updates every tensor in one pass (4x less optimizer time for
        a small MLP on 2 cores)."""
        return [adamw(self.parameters(), lr=lr, weight_decay=weight_decay)]  # type: ignore[attr-defined]

    def training_step(self, x: Tensor, y: Tensor | None, ctx: StepContext) -> StepResult:
        """One optimizer step on the shared objective (the model's forward: the ELBO, the k-sample bound, or the
        autoencoder's reconstruction loss), with clipping and the divergence checks."""
        with ctx.autocast(x.device):
            terms = ctx.forward(x, y, beta=ctx.beta)
        loss = terms.loss
        value = float(loss.detach())
        ctx.watch(value)
        optimizer = ctx.optimizers[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        result = StepResult(loss=value, bound=float(terms.elbo.detach().sum()), kl=terms.kl.detach())
        if ctx.grad_clip > 0 or ctx.grad_skip > 0:  # the norm before clipping decides a skip
            norm = torch.nn.utils.clip_grad_norm_(self.parameters(),  # type: ignore[attr-defined]
                                                  ctx.grad_clip if ctx.grad_clip > 0 else math.inf)
            if not torch.isfinite(norm):
                raise ctx.diverged("the gradient norm", float(norm))
            result.grad_norm = float(norm)
            if 0 < ctx.grad_skip < result.grad_norm:
                result.skipped = True
                return result
        optimizer.step()
        return result

    def validation_metrics(self, images: Tensor, labels: Tensor, device: torch.device | str) -> dict[str, float]:
        """Mean ELBO, log-likelihood and KL per example on the validation images (and each group's KL)."""
        return bound_metrics(self, images, labels if self.uses_labels else None, device=device,  # type: ignore[arg-type]
                             kl=self.kl_estimator)

    def health(self, metrics: dict[str, float]) -> tuple[str, str] | None:
        """(what went wrong, what to try) when the validation metrics say training cannot recover; None if well."""
        return None

    @torch.no_grad()
    def figures(self, images: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """Grids for TensorBoard each epoch: 16 samples, and the images over their reconstructions."""
        grids = {"samples": self.sample(16).cpu()}  # type: ignore[attr-defined]
        if self.has_encoder:
            recon = self.reconstruct(images, labels if self.uses_labels else None).cpu()  # type: ignore[attr-defined]
            grids["reconstructions"] = torch.cat([images.cpu(), recon])
        return grids
