"""The plain autoencoder: the VAE's networks with a point-mass posterior and a reconstruction-only loss."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution

from vaekit.distributions import PointMass
from vaekit.models.vae import VAE
from vaekit.objectives import ELBOTerms, bound_metrics, reconstruction_loss

__all__ = ["Autoencoder"]


class Autoencoder(VAE):
    """z = encoder(x) exactly; trains on -log p(x|z). Its 'samples' from N(0, I) are not meaningful."""

    posterior_params = 1

    def posterior(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        return PointMass(self.encode(x, y))

    def forward(self, x: Tensor, y: Tensor | None = None, beta: float | None = None) -> ELBOTerms:
        return reconstruction_loss(self, x, y)

    def validation_metrics(self, images: Tensor, labels: Tensor, device: torch.device | str) -> dict[str, float]:
        """The reconstruction log-likelihood alone: an autoencoder has no prior it was trained towards, so no ELBO."""
        return bound_metrics(self, images, labels if self.uses_labels else None, device=device,
                             reconstruction_only=True)
