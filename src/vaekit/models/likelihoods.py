"""Decoder heads: turn the decoder's raw output into p(x|z) as a torch.distributions object."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from vaekit.distributions import (
    bernoulli_likelihood,
    continuous_bernoulli_likelihood,
    discretized_logistic_likelihood,
    gaussian_likelihood,
)

__all__ = ["IMAGE_LIKELIHOODS", "DISCRETE_LIKELIHOODS", "SCALE_SHAPES", "ImageLikelihood"]

IMAGE_LIKELIHOODS = ("bernoulli", "gaussian", "discretized_logistic", "continuous_bernoulli")
DISCRETE_LIKELIHOODS = ("bernoulli", "discretized_logistic")  # log_prob is a probability, not a density
SCALE_SHAPES = ("image", "channel", "pixel")  # what a learned gaussian scale is shared over


class ImageLikelihood(nn.Module):
    """p(x|z) over (C, H, W) pixels from one parameter map per channel.

    bernoulli: logits (binarized images; sigmoid cross-entropy). continuous_bernoulli: logits, a proper
    density on [0, 1]. gaussian: mean = sigmoid(output), scale fixed (`scale`, so -log p is a scaled squared
    error) or learned (`learn_scale`, as in the sigma-VAE): one scalar for the image, one per channel (each
    colour finds its own noise level), or one per pixel (`scale_per`). discretized_logistic: the same mean and
    scale, binned into 256 levels (PixelCNN++), so -log p(x|z) is a code length for 8-bit images.
    """

    def __init__(self, kind: str = "bernoulli", scale: float = 0.1, learn_scale: bool = False,
                 scale_per: str = "image", image_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        if kind not in IMAGE_LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {IMAGE_LIKELIHOODS}, got {kind!r}")
        if scale <= 0:
            raise ValueError(f"gaussian scale must be positive, got {scale}")
        self.kind = kind
        c, h, w = image_shape  # a learned scale is one scalar, one per channel (colour), or one per pixel
        shape = {"image": (), "channel": (c, 1, 1), "pixel": (c, h, w)}[scale_per if learn_scale else "image"]
        log_scale = torch.full(shape, math.log(scale))
        if learn_scale:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    def forward(self, params: Tensor) -> Distribution:
        params = params.float()  # log-densities in fp32 even under bf16 autocast
        if self.kind == "bernoulli":
            return bernoulli_likelihood(params)
        if self.kind == "continuous_bernoulli":
            return continuous_bernoulli_likelihood(params)
        if self.kind == "discretized_logistic":
            return discretized_logistic_likelihood(torch.sigmoid(params), self.log_scale.expand_as(params))
        return gaussian_likelihood(torch.sigmoid(params), self.log_scale.expand_as(params))
