"""A DCGAN baseline (optionally label-conditioned) scored on the same data and yardsticks as the VAEs.

The generator maps z ~ N(0, I) to an image; the discriminator scores images as real or generated. Trained
with the non-saturating loss (Goodfellow et al. 2014): D minimises BCE(D(x), 1) + BCE(D(G(z)), 0), and G
minimises BCE(D(G(z)), 1). A GAN has a prior and a decoder but no encoder and no likelihood: there is no
ELBO, no NLL, no reconstruction, which the commands that need one say plainly.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution

from vaekit.distributions import standard_normal
from vaekit.models.config import ModelConfig
from vaekit.models.trainable import StepContext, StepResult, Trainable
from vaekit.optim import Optimizer, adamw

__all__ = ["GAN", "NoEncoderError"]


COLLAPSE_DIVERSITY = 0.05  # samples varying less than 5% as much as real images: mode collapse


class NoEncoderError(ValueError):
    """Raised when a command needs q(z|x) or p(x|z) and the model is a GAN."""


class Generator(nn.Module):
    """z (+ one-hot y) -> Linear -> (128, H/4, W/4) -> two stride-2 transposed convs -> sigmoid image."""

    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int], cond_dim: int = 0, width: int = 64):
        super().__init__()
        c, h, w = image_shape
        self.start = (2 * width, h // 4, w // 4)
        self.fc = nn.Sequential(nn.Linear(latent_dim + cond_dim, math.prod(self.start)),
                                nn.BatchNorm1d(math.prod(self.start)), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, c, 4, stride=2, padding=1), nn.Sigmoid())

    def forward(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        if cond is not None:
            z = torch.cat([z, cond.to(z.dtype)], dim=1)
        return self.net(self.fc(z).view(-1, *self.start))


class Discriminator(nn.Module):
    """Image (+ label planes) -> two stride-2 convs with LeakyReLU -> one logit."""

    def __init__(self, image_shape: tuple[int, int, int], cond_dim: int = 0, width: int = 64):
        super().__init__()
        c, h, w = image_shape
        self.net = nn.Sequential(
            nn.Conv2d(c + cond_dim, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * width * (h // 4) * (w // 4), 1))

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        if cond is not None:
            planes = cond.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[-2], x.shape[-1])
            x = torch.cat([x, planes], dim=1)
        return self.net(x).squeeze(-1)


class GAN(nn.Module, Trainable):
    """Generator and discriminator; conditional (a cGAN) when config.conditional is set."""

    trains_in_one_process = True  # two optimizers, alternating steps: DDP under torchrun covers the VAE family
    has_encoder = False

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        c, h, w = config.image_shape
        if h % 4 or w % 4:
            raise ValueError(f"the GAN needs image sides divisible by 4, got {h}x{w}; choose --image-size accordingly")
        self.conditional = config.conditional_gan
        cond = config.num_classes if self.conditional else 0
        self.generator = Generator(config.latent_dim, config.image_shape, cond, config.width)
        self.discriminator = Discriminator(config.image_shape, cond, config.width)
        self.register_buffer("_device_probe", torch.zeros(()), persistent=False)

    @property
    def uses_labels(self) -> bool:  # type: ignore[override]
        return bool(self.config.uses_labels)

    def _onehot(self, y: Tensor | None) -> Tensor | None:
        if not self.conditional:
            return None
        if y is None:
            raise ValueError("a conditional GAN needs labels y")
        return F.one_hot(y, self.config.num_classes).float()

    def prior(self, y: Tensor | None = None) -> Distribution:
        return standard_normal(self.latent_dim, device=self._device_probe.device)

    def posterior(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        raise NoEncoderError("a GAN has no encoder q(z|x): reconstruction, latent codes and NLL need a vae, iwae "
                             "or cvae run")

    def likelihood(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        raise NoEncoderError("a GAN has no likelihood p(x|z): it defines no ELBO or NLL; compare it by the "
                             "Frechet distance of `vaekit evaluate`")

    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        raise NoEncoderError("a GAN has no encoder: it cannot reconstruct images; use a vae, iwae or cvae run")

    @torch.no_grad()
    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        lead = z.shape[:-1]
        out = self.generator(z.reshape(-1, self.latent_dim), self._onehot(y))
        return out.reshape(*lead, *out.shape[1:]).float()

    @torch.no_grad()
    def sample(self, n: int, label: int | None = None) -> Tensor:
        self.config.check_label(label)
        was_training = self.training
        self.eval()
        y = None
        if self.conditional:
            device = self._device_probe.device
            y = torch.full((n,), label, dtype=torch.long, device=device) if label is not None \
                else torch.arange(n, device=device) % self.config.num_classes
        images = self.decode(self.prior().sample((n,)), y)
        self.train(was_training)
        return images

    # -- training through the shared Trainer: two optimizers, alternating steps --------------------------

    def configure_optimizers(self, lr: float, weight_decay: float) -> list[Optimizer]:
        """Adam with beta1 = 0.5 for each network (Radford et al. 2015)."""
        return [adamw(net.parameters(), lr=lr, betas=(0.5, 0.999), weight_decay=weight_decay)
                for net in (self.discriminator, self.generator)]

    def training_step(self, x: Tensor, y: Tensor | None, ctx: StepContext) -> StepResult:
        """One discriminator step, then one generator step. With `ctx.amp` the forward passes run under bfloat16
        autocast (the Trainer's `--precision bf16`); the losses are fp32 either way."""
        opt_d, opt_g = ctx.optimizers
        cond = self._onehot(y)
        with ctx.autocast(x.device):
            z = torch.randn(len(x), self.latent_dim, device=x.device)
            fake = self.generator(z, cond)
            real_logits = self.discriminator(x, cond).float()
            fake_logits = self.discriminator(fake.detach(), cond).float()
        loss_d = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + \
            F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self._clip(self.discriminator, ctx.grad_clip)
        opt_d.step()
        with ctx.autocast(x.device):
            gen_logits = self.discriminator(fake, cond).float()
        loss_g = F.binary_cross_entropy_with_logits(gen_logits, torch.ones_like(gen_logits))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self._clip(self.generator, ctx.grad_clip)
        opt_g.step()
        loss = float(loss_d.detach() + loss_g.detach())
        ctx.watch(loss)
        return StepResult(loss=loss, parts={"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach())})

    @staticmethod
    def _clip(net: nn.Module, grad_clip: float) -> None:
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)

    @torch.no_grad()
    def validation_metrics(self, images: Tensor, labels: Tensor, device: torch.device | str) -> dict[str, Any]:
        """Discriminator accuracy on real vs generated validation-sized batches, and sample diversity.

        Diversity is the mean per-pixel standard deviation across 500 samples, divided by the same for
        real images: near 0 means every sample looks alike (mode collapse); about 1 matches the data.
        """
        self.eval()
        n = min(500, len(images))
        x = images[:n].to(device)
        y = labels[:n].to(device) if self.conditional else None
        cond = self._onehot(y)
        fake = self.generator(torch.randn(n, self.latent_dim, device=device), cond)
        real_logits, fake_logits = self.discriminator(x, cond), self.discriminator(fake, cond)
        real_std = float(x.flatten(1).std(0).mean())
        diversity = float(fake.flatten(1).std(0).mean()) / max(real_std, 1e-8)
        accuracy = float(((real_logits > 0).float().mean() + (fake_logits < 0).float().mean()) / 2)
        self.train()
        return {"discriminator_accuracy": accuracy, "sample_diversity": diversity,
                "real_logit": float(real_logits.mean()), "fake_logit": float(fake_logits.mean())}

    def health(self, metrics: dict[str, float]) -> tuple[str, str] | None:
        """Mode collapse (samples vary less than COLLAPSE_DIVERSITY as much as real images), or a discriminator that
        has won (the generator then gets no gradient): training cannot recover from either."""
        if metrics["sample_diversity"] < COLLAPSE_DIVERSITY:
            return ("mode collapse", f"samples vary {metrics['sample_diversity']:.3f}x as much as real images; try a "
                                     "lower --lr, a larger --latent-dim, or another --seed")
        if metrics["discriminator_accuracy"] > 0.999 and metrics["fake_logit"] < -15:
            return ("the discriminator won", f"accuracy {metrics['discriminator_accuracy']:.3f}: the generator gets "
                                             "no gradient; try a lower --lr or --grad-clip 1")
        return None
