"""Priors, posteriors and likelihoods as `torch.distributions` objects: the three pieces of every VAE.

Every objective in `vaekit.objectives` is a few lines over these, whatever the model.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import (
    Bernoulli,
    Categorical,
    ContinuousBernoulli,
    Distribution,
    Independent,
    Normal,
    constraints,
)
from torch.distributions.kl import register_kl

__all__ = [
    "diagonal_gaussian",
    "standard_normal",
    "bernoulli_likelihood",
    "gaussian_likelihood",
    "continuous_bernoulli_likelihood",
    "categorical_likelihood",
    "PointMass",
]

def diagonal_gaussian(mu: Tensor, logvar: Tensor) -> Independent:
    """q(z|x) = N(mu, diag(exp(logvar))), one event per row: `log_prob` sums over the latent axis."""
    return Independent(Normal(mu, torch.exp(0.5 * logvar), validate_args=False), 1)


def standard_normal(latent_dim: int, device: torch.device | str | None = None,
                    dtype: torch.dtype = torch.float32) -> Independent:
    """p(z) = N(0, I) over `latent_dim` coordinates; broadcasts against any batch of z."""
    zeros = torch.zeros(latent_dim, device=device, dtype=dtype)
    return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=False), 1)


def bernoulli_likelihood(logits: Tensor, event_dims: int = 3) -> Independent:
    """p(x|z) = prod Bernoulli(sigmoid(logits)): the sigmoid cross-entropy loss of binarized images.

    Validation is off so that grey-level targets in [0, 1] are also accepted (the pytorch/examples VAE
    trains that way); for those the value is a cross-entropy, not a normalised log-density.
    """
    return Independent(Bernoulli(logits=logits, validate_args=False), event_dims)


def continuous_bernoulli_likelihood(logits: Tensor, event_dims: int = 3) -> Independent:
    """The continuous Bernoulli (Loaiza-Ganem & Cunningham 2019): a normalised density on [0, 1]."""
    return Independent(ContinuousBernoulli(logits=logits, validate_args=False), event_dims)


def gaussian_likelihood(mean: Tensor, log_scale: Tensor, event_dims: int = 3) -> Independent:
    """p(x|z) = N(mean, scale^2): with a fixed scale its log-density is a scaled squared error."""
    return Independent(Normal(mean, torch.exp(log_scale), validate_args=False), event_dims)


def categorical_likelihood(logits: Tensor, event_dims: int = 1) -> Independent:
    """p(tokens|z) = prod_t Categorical(softmax(logits_t)): for fixed-length token sequences."""
    return Independent(Categorical(logits=logits, validate_args=False), event_dims)


class PointMass(Distribution):
    """A deterministic 'posterior' at `loc` (the autoencoder's code): rsample returns loc, entropy 0.

    log_prob is 0 at loc by convention so that reconstruction-only objectives need no special case.
    """

    arg_constraints = {"loc": constraints.real}
    has_rsample = True

    def __init__(self, loc: Tensor, event_dims: int = 1):
        self.loc = loc
        cut = loc.ndim - event_dims
        super().__init__(loc.shape[:cut], loc.shape[cut:], validate_args=False)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return torch.zeros_like(self.loc)

    def rsample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> Tensor:
        shape = torch.Size(sample_shape) + self.loc.shape
        return self.loc.expand(shape)

    def log_prob(self, value: Tensor) -> Tensor:
        n = len(self.event_shape)
        return torch.zeros(value.shape[: value.ndim - n], device=value.device, dtype=value.dtype)

    def entropy(self) -> Tensor:
        return torch.zeros(self.batch_shape, device=self.loc.device, dtype=self.loc.dtype)


@register_kl(PointMass, Distribution)
def _kl_pointmass_any(p: PointMass, q: Distribution) -> Tensor:
    # KL of a point mass is -log q(loc) up to the (infinite) negative entropy; autoencoders carry no KL.
    return torch.zeros(p.batch_shape, device=p.loc.device, dtype=p.loc.dtype)
