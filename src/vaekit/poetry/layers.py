"""The gated convolution of Su's poem model, which both its encoder and its parallel decoder stack."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["GatedConv"]


class GatedConv(nn.Module):
    """x + a * sigmoid(b), [a, b] = conv1d(x): the residual gated convolution of Su's model (kernel 3), centred, its
    taps `dilation` characters apart."""

    def __init__(self, channels: int, kernel: int = 3, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(channels, 2 * channels, kernel, padding=dilation * (kernel // 2), dilation=dilation)

    def forward(self, x: Tensor) -> Tensor:  # x: (B, d, L)
        a, b = self.conv(x).chunk(2, dim=1)
        return x + a * torch.sigmoid(b)
