"""The conditional VAE, with the two conditioning schemes of the literature.

- "input" (Sohn et al. 2015): the one-hot label enters encoder and decoder; p(z) = N(0, I).
- "prior" (Su Jianlin's post): the label enters only the prior, p(z|y) = N(mu_y, I) with a learned mean
  per class, so KL = 1/2 sum((mu - mu_y)^2 + sigma^2 - log sigma^2 - 1); a class is drawn around mu_y.
- "both" (the default): the label enters encoder, decoder and prior (Sohn et al.'s conditional prior p(z|y), here
  a learned mean per class): the decoder reads y, and z drawn for y also lies in y's region. It drew the class
  asked for most often of the three (docs/benchmarks.md, "Conditional VAE").
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal

from vaekit.models.config import ModelConfig, label_in_networks, label_in_prior
from vaekit.models.vae import VAE

__all__ = ["CVAE", "CLASS_MEAN_SPREAD", "INPUT_CONDITIONING_BETA"]

CLASS_MEAN_SPREAD = 3.0
INPUT_CONDITIONING_BETA = 3.0  # the default KL weight of a label-input CVAE: see TrainConfig._model_defaults


class CVAE(VAE):
    """A VAE whose prior or networks see the label y; `sample(n, label=3)` draws threes."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        if label_in_prior(config.conditioning):
            self.class_means = nn.Embedding(config.num_classes, config.latent_dim)
            # the means start far apart: started close (std 0.1) they stay within one unit of each other, so
            # z ~ N(mu_y, I) lands in another class's region (22% conditional accuracy after 2 epochs; 99.6% so)
            nn.init.normal_(self.class_means.weight, std=CLASS_MEAN_SPREAD)

    def _label_inputs(self) -> int:
        return self.config.num_classes if label_in_networks(self.config.conditioning) else 0

    def prior(self, y: Tensor | None = None) -> Distribution:
        if not label_in_prior(self.config.conditioning):
            return super().prior(y)
        if y is None:
            raise ValueError(f"a CVAE with conditioning={self.config.conditioning!r} needs labels y for its prior p(z|y)")
        mu_y = self.class_means(y)
        return Independent(Normal(mu_y, torch.ones_like(mu_y), validate_args=False), 1)
