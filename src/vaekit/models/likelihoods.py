"""Decoder heads: turn the decoder's raw output into p(x|z) as a torch.distributions object."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from vaekit.distributions import bernoulli_likelihood, continuous_bernoulli_likelihood, gaussian_likelihood

__all__ = ["IMAGE_LIKELIHOODS", "ImageLikelihood"]

IMAGE_LIKELIHOODS = ("bernoulli", "gaussian", "continuous_bernoulli")


class ImageLikelihood(nn.Module):
    """p(x|z) over (C, H, W) pixels from one parameter map per channel.

    bernoulli: logits (binarized images; sigmoid cross-entropy). continuous_bernoulli: logits, a proper
    density on [0, 1]. gaussian: mean = sigmoid(output), scale fixed (`scale`) or one learned scalar
    (`learn_scale`, as in the sigma-VAE), so that with a fixed scale -log p is a scaled squared error.
    """

    def __init__(self, kind: str = "bernoulli", scale: float = 0.1, learn_scale: bool = False):
        super().__init__()
        if kind not in IMAGE_LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {IMAGE_LIKELIHOODS}, got {kind!r}")
        if scale <= 0:
            raise ValueError(f"gaussian scale must be positive, got {scale}")
        self.kind = kind
        log_scale = torch.tensor(math.log(scale))
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
        return gaussian_likelihood(torch.sigmoid(params), self.log_scale.expand_as(params))
