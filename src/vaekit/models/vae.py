"""The VAE (and beta-VAE, and IWAE, which differs only in the objective it trains on).

A model is its three distributions, q(z|x), p(z) and p(x|z); `forward` hands them to the shared
objective in `vaekit.objectives` and returns the per-example terms. Subclasses change only what differs:
the autoencoder's posterior is a point, the CVAE conditions on a label.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, MixtureSameFamily

from vaekit.distributions import diagonal_gaussian, draw_at_temperature, standard_normal
from vaekit.models.config import ModelConfig
from vaekit.models.likelihoods import ImageLikelihood
from vaekit.models.nets import build_decoder, build_encoder
from vaekit.models.trainable import Trainable
from vaekit.objectives import ELBOTerms, LatentModel, elbo, iwae_bound

__all__ = ["VAE"]


class VAE(LatentModel, Trainable):
    """q(z|x) = N(mu(x), diag sigma^2(x)), p(z) = N(0, I), p(x|z) from `config.likelihood`."""

    posterior_params = 2  # the encoder emits mu and log-variance

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c, h, w = config.image_shape
        self.latent_dim = config.latent_dim
        self.label_inputs = self._label_inputs()
        self.encoder = build_encoder(config.arch, (c, h, w), self.posterior_params * config.latent_dim, config.hidden,
                                     config.width, cond_dim=self.label_inputs, norm=config.norm)
        self.decoder = build_decoder(config.arch, config.latent_dim + self.label_inputs, (c, h, w), config.hidden,
                                     config.width, norm=config.norm)
        self.head = ImageLikelihood(config.likelihood, config.gaussian_scale, config.learn_scale, config.scale_per,
                                    (c, h, w))
        if config.prior == "vamp":  # pseudo-inputs in logit space, starting near grey (Tomczak & Welling 2018)
            self.pseudo_inputs = nn.Parameter(0.01 * torch.randn(config.pseudo_inputs, c, h, w))

    @property
    def uses_labels(self) -> bool:  # type: ignore[override]
        return bool(self.config.uses_labels)

    @property
    def kl_estimator(self) -> str:  # type: ignore[override]
        return self.config.kl

    def _label_inputs(self) -> int:
        """How many one-hot label inputs encoder and decoder take (0 for unconditional models)."""
        return 0

    def _onehot(self, y: Tensor | None) -> Tensor:
        if y is None:
            raise ValueError(f"{type(self).__name__} with label inputs needs labels y")
        return F.one_hot(y, self.config.num_classes).float()

    def encode(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The encoder's raw output for x (and the label planes when the model takes labels)."""
        return self.encoder(x, self._onehot(y) if self.label_inputs else None).float()

    def posterior(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        mu, logvar = self.encode(x, y).chunk(2, dim=-1)
        return diagonal_gaussian(mu, logvar.clamp(-30.0, 20.0))

    def prior(self, y: Tensor | None = None) -> Distribution:
        if self.config.prior == "vamp":
            return self.vamp_prior()
        return standard_normal(self.latent_dim, device=self.head.log_scale.device)

    def vamp_prior(self) -> Distribution:
        """p(z) = (1/K) sum_k q(z | u_k): the mixture of the encoder's posteriors at K learned pseudo-inputs. Its
        KL against q(z|x) has no closed form, so such a run takes the Monte Carlo KL."""
        q = self.posterior(torch.sigmoid(self.pseudo_inputs))
        mixture = Categorical(logits=torch.zeros(len(self.pseudo_inputs), device=self.pseudo_inputs.device))
        return MixtureSameFamily(mixture, q)

    def likelihood(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        lead = z.shape[:-1]
        flat = z.reshape(-1, z.shape[-1])
        if self.label_inputs:
            onehot = self._onehot(y).expand(*lead, -1).reshape(-1, self.config.num_classes)
            flat = torch.cat([flat, onehot.to(flat.dtype)], dim=-1)
        params = self.decoder(flat)
        return self.head(params.reshape(*lead, *params.shape[1:]))

    def forward(self, x: Tensor, y: Tensor | None = None, beta: float | None = None) -> ELBOTerms:
        """The training terms under this model's objective (DDP calls this, so gradients synchronise)."""
        cfg = self.config
        if cfg.model == "iwae":
            bound = iwae_bound(self, x, cfg.k, y=y)
            nan = torch.full_like(bound, math.nan)
            return ELBOTerms(log_likelihood=nan, kl=nan, elbo=bound, loss=-bound.mean())
        return elbo(self, x, y, kl=cfg.kl, beta=cfg.beta if beta is None else beta)

    @torch.no_grad()
    def sample(self, n: int, label: int | None = None, temperature: float = 1.0) -> Tensor:
        """n images drawn from the model: z ~ p(z) (p(z|y) for a label), shown as the mean of p(x|z); a
        `temperature` below 1 draws z nearer the prior's mean (of a mixture's component), trading variety for clarity.

        A conditional model asked for no label draws the classes in turn (0, 1, ..., K-1, 0, ...).
        """
        self.config.check_label(label)
        y = None
        if self.config.uses_labels:
            device = self.head.log_scale.device
            if label is None:
                y = torch.arange(n, device=device) % self.config.num_classes
            else:
                y = torch.full((n,), label, dtype=torch.long, device=device)
        return self.decode(draw_at_temperature(self.prior(y), n, temperature), y)

    @torch.no_grad()
    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """The mean of p(x|z): images in [0, 1] for display."""
        return self.likelihood(z, y).mean.clamp(0.0, 1.0)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Decode the posterior mean of each input."""
        return self.decode(self.posterior(x, y).mean, y)
