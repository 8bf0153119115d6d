"""Priors, posteriors and likelihoods as `torch.distributions` objects: the three pieces of every VAE.

Every objective in `vaekit.objectives` is a few lines over these, whatever the model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import (
    Bernoulli,
    Categorical,
    ContinuousBernoulli,
    Distribution,
    Independent,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
    constraints,
)
from torch.distributions.kl import register_kl

__all__ = [
    "diagonal_gaussian",
    "draw_at_temperature",
    "standard_normal",
    "bernoulli_likelihood",
    "gaussian_likelihood",
    "continuous_bernoulli_likelihood",
    "categorical_likelihood",
    "discretized_logistic_likelihood",
    "DiscretizedLogistic",
    "LogitBernoulli",
    "PointMass",
    "full_gaussian",
]

def diagonal_gaussian(mu: Tensor, logvar: Tensor) -> Independent:
    """q(z|x) = N(mu, diag(exp(logvar))), one event per row: `log_prob` sums over the latent axis."""
    return Independent(Normal(mu, torch.exp(0.5 * logvar), validate_args=False), 1)


def standard_normal(latent_dim: int, device: torch.device | str | None = None,
                    dtype: torch.dtype = torch.float32) -> Independent:
    """p(z) = N(0, I) over `latent_dim` coordinates; broadcasts against any batch of z."""
    zeros = torch.zeros(latent_dim, device=device, dtype=dtype)
    return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=False), 1)


def draw_at_temperature(prior: Distribution, n: int, temperature: float,
                        generator: torch.Generator | None = None) -> Tensor:
    """n draws of z from `prior` (one a row of a prior already batched n), its spread scaled by `temperature`
    (0: the mean; a mixture's: a component each, then a draw from that component at the temperature); the noise
    from `generator` if given."""
    if temperature == 1.0 and generator is None:
        return prior.sample() if prior.batch_shape == torch.Size([n]) else prior.sample((n,))
    if isinstance(prior, MixtureSameFamily):
        weights = prior.mixture_distribution.probs
        pick = torch.multinomial(weights.cpu(), n, replacement=True, generator=generator).to(weights.device)
        mean, std = prior.component_distribution.mean[pick], prior.component_distribution.stddev[pick]
    else:
        mean, std = prior.mean.expand(n, -1), prior.stddev.expand(n, -1)
    if temperature == 0:
        return mean
    noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device) if generator is not None \
        else torch.randn_like(mean)
    return mean + temperature * std * noise


def full_gaussian(loc: Tensor, scale_tril: Tensor) -> MultivariateNormal:
    """N(loc, L L^T) from its lower-triangular factor: a prior with correlated coordinates (a fitted poem prior)."""
    return MultivariateNormal(loc, scale_tril=scale_tril, validate_args=False)


class LogitBernoulli(Bernoulli):
    """torch's Bernoulli, its log_prob written as x * logits - softplus(logits) in two passes.

    The same value to within 2e-9 nats a pixel (softplus is the identity past 20); torch's version broadcasts x to
    the logits' shape and makes five passes, which over the k importance samples of one image took a quarter of
    an MLP decoder's evaluation.
    """

    def log_prob(self, value: Tensor) -> Tensor:
        """log p(value) = value * logits - log(1 + exp(logits)), elementwise."""
        logits = self.logits  # no cast of value: bf16 logits must not round grey-level targets (promotion does)
        return torch.addcmul(F.softplus(logits).neg_(), value, logits)


class _PixelBernoulli(Independent):
    """Independent LogitBernoulli pixels whose summed log_prob writes one buffer of the logits' size, not three.

    softplus(l) - x * l is formed in place in softplus's output and summed, where Independent's sum over the
    elementwise log_prob writes the softplus, the product and a negation. Other dtypes and shapes take that path.
    """

    def log_prob(self, value: Tensor) -> Tensor:
        """sum over the event of value * logits - softplus(logits)."""
        logits = self.base_dist.logits
        if value.dtype != logits.dtype or torch.broadcast_shapes(value.shape, logits.shape) != logits.shape:
            return super().log_prob(value)
        nll = F.softplus(logits).addcmul_(value, logits, value=-1)  # softplus's backward reads its input only
        return nll.sum(tuple(range(-self.reinterpreted_batch_ndims, 0))).neg_()


def bernoulli_likelihood(logits: Tensor, event_dims: int = 3) -> Independent:
    """p(x|z) = prod Bernoulli(sigmoid(logits)): the sigmoid cross-entropy loss of binarized images.

    Validation is off so that grey-level targets in [0, 1] are also accepted (the pytorch/examples VAE
    trains that way); for those the value is a cross-entropy, not a normalised log-density.
    """
    return _PixelBernoulli(LogitBernoulli(logits=logits, validate_args=False), event_dims, validate_args=False)


def continuous_bernoulli_likelihood(logits: Tensor, event_dims: int = 3) -> Independent:
    """The continuous Bernoulli (Loaiza-Ganem & Cunningham 2019): a normalised density on [0, 1]."""
    return Independent(ContinuousBernoulli(logits=logits, validate_args=False), event_dims)


def gaussian_likelihood(mean: Tensor, log_scale: Tensor, event_dims: int = 3) -> Independent:
    """p(x|z) = N(mean, scale^2): with a fixed scale its log-density is a scaled squared error."""
    return Independent(Normal(mean, torch.exp(log_scale), validate_args=False), event_dims)


def categorical_likelihood(logits: Tensor, event_dims: int = 1) -> Independent:
    """p(tokens|z) = prod_t Categorical(softmax(logits_t)): for fixed-length token sequences."""
    return Independent(Categorical(logits=logits, validate_args=False), event_dims)


class DiscretizedLogistic(Distribution):
    """A logistic(loc, scale) on [0, 1] binned into `levels` intensities (PixelCNN++, Salimans et al. 2017).

    The probability of level k/(levels-1) is the logistic mass of its bin; the end bins take the tails, so the
    probabilities sum to one and -log_prob is a code length: bits/dim with no dequantization, and exact black
    or white pixels cost little. `loc` is the mode, shown as the image.
    """

    arg_constraints = {"loc": constraints.real, "log_scale": constraints.real}
    support = constraints.unit_interval
    has_rsample = False

    def __init__(self, loc: Tensor, log_scale: Tensor, levels: int = 256):
        self.loc, self.log_scale = torch.broadcast_tensors(loc, log_scale)
        self.levels = levels
        super().__init__(self.loc.shape, validate_args=False)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    def log_prob(self, value: Tensor) -> Tensor:
        half = 0.5 / (self.levels - 1)  # half a bin: levels sit at k/(levels-1)
        inv = torch.exp(-self.log_scale)
        upper = inv * (value - self.loc + half)
        lower = inv * (value - self.loc - half)
        # log(sigmoid(u) - sigmoid(l)) = logsigmoid(u) + logsigmoid(-l) + log(1 - exp(l - u)): stable for any bin
        width = (upper - lower).clamp(min=1e-12)
        inner = F.logsigmoid(upper) + F.logsigmoid(-lower) + torch.log(-torch.expm1(-width))
        first = F.logsigmoid(upper)  # level 0 takes the whole left tail
        last = F.logsigmoid(-lower)  # the top level takes the right tail
        return torch.where(value < half, first, torch.where(value > 1.0 - half, last, inner))

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> Tensor:
        shape = torch.Size(sample_shape) + self.loc.shape
        u = torch.rand(shape, device=self.loc.device, dtype=self.loc.dtype).clamp(1e-6, 1 - 1e-6)
        x = self.loc + torch.exp(self.log_scale) * (torch.log(u) - torch.log1p(-u))
        steps = self.levels - 1
        return (x.clamp(0.0, 1.0) * steps).round() / steps


def discretized_logistic_likelihood(loc: Tensor, log_scale: Tensor, levels: int = 256,
                                    event_dims: int = 3) -> Independent:
    """p(x|z) over 8-bit intensities: a discretized logistic per pixel (a normalised probability, not a density)."""
    return Independent(DiscretizedLogistic(loc, log_scale, levels), event_dims)


def dequantization_offset(dims: int, levels: int = 256) -> float:
    """Nats to add to a density's -log p(x) on [0, 1] to bound the code length of `levels`-level data.

    With x~ = (k + u) / levels, u ~ U(0, 1), P(k) >= exp(E_u log p(x~)) / levels^dims (Jensen): the uniform
    dequantization bound that lets a continuous density be compared in bits/dim with a discrete likelihood.
    """
    return dims * math.log(levels)


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


@register_kl(Independent, MultivariateNormal)
def _kl_diagonal_full(q: Independent, p: MultivariateNormal) -> Tensor:
    """KL(N(mu, diag s^2) || N(m, L L^T)) in closed form: a diagonal posterior against a full-covariance prior.

    0.5 * [tr(S_p^-1 diag s^2) + |L^-1 (mu - m)|^2 - D + log det S_p - sum log s^2]; torch registers this pair only
    for two MultivariateNormals, which would build a D x D factor for every posterior.
    """
    base = q.base_dist
    if not isinstance(base, Normal) or q.reinterpreted_batch_ndims != 1:
        raise NotImplementedError("the closed-form KL against a MultivariateNormal needs a diagonal Gaussian q")
    factor = p.scale_tril
    d = factor.shape[-1]
    inverse = torch.linalg.solve_triangular(factor, torch.eye(d, dtype=factor.dtype, device=factor.device),
                                            upper=False)  # L^-1: (..., D, D)
    trace = (base.scale.pow(2) * inverse.pow(2).sum(-2)).sum(-1)  # diag(S_p^-1) = column norms of L^-1, squared
    maha = ((base.loc - p.loc).unsqueeze(-2) @ inverse.transpose(-1, -2)).squeeze(-2).pow(2).sum(-1)
    log_det = 2 * factor.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return 0.5 * (trace + maha - d + log_det) - base.scale.log().sum(-1)
