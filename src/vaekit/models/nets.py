"""Encoder and decoder networks: MLP, the classic two-stride conv net, and a deeper residual conv net.

Encoders map (B, C, H, W) to a flat vector of `out_dim`; decoders map (B, in_dim) to (B, C', H, W)
parameters. What the numbers mean (mean, log-variance, logits) is the model's business, not the net's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vaekit import kernels

__all__ = ["ARCHS", "build_encoder", "build_decoder"]

ARCHS = ("mlp", "conv", "resnet")


class MLPEncoder(nn.Module):
    """Flatten, then Linear-ReLU layers, then a linear output."""

    def __init__(self, in_shape: Sequence[int], out_dim: int, hidden: Sequence[int], cond_dim: int = 0):
        super().__init__()
        layers: list[nn.Module] = []
        width = math.prod(in_shape) + cond_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        x = x.flatten(1)
        return self.net(x if cond is None else torch.cat([x, cond.to(x.dtype)], dim=1))


class MLPDecoder(nn.Module):
    """Linear-ReLU layers from the code, then a linear map to every output parameter."""

    def __init__(self, in_dim: int, out_shape: Sequence[int], hidden: Sequence[int]):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, math.prod(out_shape)))
        self.net = nn.Sequential(*layers)
        self.out_shape = tuple(out_shape)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, *self.out_shape)


def _check_conv_size(h: int, w: int, factor: int) -> None:
    if h % factor or w % factor:
        raise ValueError(f"conv nets need image sides divisible by {factor}, got {h}x{w}; "
                         "choose --image-size accordingly or use --arch mlp")


class _LabelPlanes(nn.Module):
    """Conv encoders see a label as constant one-hot planes stacked on the image channels."""

    def with_planes(self, x: Tensor, cond: Tensor | None) -> Tensor:
        if cond is None:
            return x
        planes = cond.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[-2], x.shape[-1])
        return torch.cat([x, planes], dim=1)


class OutputConv2d(nn.Conv2d):
    """The 3x3 convolution to a few output channels (the pixel parameters) that ends a conv decoder.

    Evaluated on a CPU without gradients, it runs as one GEMM over the nine taps and nine shifted sums, which ran
    several times faster than oneDNN's own convolution to one channel (docs/history.md); the GEMM is oneDNN's
    (`vaekit.kernels`). Training, and other devices, use the library's own convolution.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        if (x.device.type != "cpu" or torch.is_grad_enabled() or self.out_channels > 8
                or torch.is_autocast_enabled("cpu")):  # in bf16 oneDNN's own convolution is fast
            return super().forward(x)
        n, c, h, w = x.shape
        o = self.out_channels
        # taps[n, i, j, a, b, :] = x[n, :, i, j] . weight[:, :, a, b]: what pixel (i, j) gives each neighbour
        taps = kernels.linear(x.permute(0, 2, 3, 1).reshape(-1, c), self.weight.permute(2, 3, 0, 1).reshape(9 * o, c))
        taps = taps.view(n, h, w, 3, 3, o)
        out = taps.new_zeros(n, h + 2, w + 2, o)
        for a in range(3):
            for b in range(3):  # output (i, j) reads input (i + a - 1, j + b - 1) through weight tap (a, b)
                out[:, 2 - a:h + 2 - a, 2 - b:w + 2 - b] += taps[:, :, :, a, b]
        out = out[:, 1:h + 1, 1:w + 1] + self.bias
        return out.permute(0, 3, 1, 2)


def _norm(kind: str, channels: int) -> list[nn.Module]:
    """The normalisation after a hidden convolution: none, or batch norm (see NORMS)."""
    return [nn.BatchNorm2d(channels)] if kind == "batch" else []


class ConvEncoder(_LabelPlanes):
    """The classic encoder: two stride-2 3x3 convolutions (32, 64 channels), then a linear output.

    `norm="batch"` puts batch norm after each convolution: on colour shapes an autoencoder so built fitted colour
    within 1,000 steps, where without it reconstructions were still grey (docs/history.md).
    """

    def __init__(self, in_shape: Sequence[int], out_dim: int, channels: Sequence[int] = (32, 64), cond_dim: int = 0,
                 norm: str = "none"):
        super().__init__()
        c, h, w = in_shape
        c += cond_dim
        _check_conv_size(h, w, 2 ** len(channels))
        layers: list[nn.Module] = []
        for ch in channels:
            layers += [nn.Conv2d(c, ch, 3, stride=2, padding=1), *_norm(norm, ch), nn.ReLU()]
            c = ch
        scale = 2 ** len(channels)
        layers += [nn.Flatten(), nn.Linear(c * (h // scale) * (w // scale), out_dim)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.net(self.with_planes(x, cond))


class ConvDecoder(nn.Module):
    """The mirror: a linear map to a (64, H/4, W/4) map, then stride-2 transposed convolutions."""

    def __init__(self, in_dim: int, out_shape: Sequence[int], channels: Sequence[int] = (64, 32), norm: str = "none"):
        super().__init__()
        c_out, h, w = out_shape
        scale = 2 ** len(channels)
        _check_conv_size(h, w, scale)
        self.start = (channels[0], h // scale, w // scale)
        self.fc = nn.Sequential(nn.Linear(in_dim, math.prod(self.start)), nn.ReLU())
        layers: list[nn.Module] = []
        widths = list(channels) + [channels[-1]]
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1), *_norm(norm, b), nn.ReLU()]
        layers.append(OutputConv2d(widths[-1], c_out))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.fc(z).view(-1, *self.start))


class ResBlock(nn.Module):
    """x + conv(relu(conv(relu(x)))): a pre-activation residual block at constant width."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(), nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResNetEncoder(_LabelPlanes):
    """Stem conv, then (residual block, stride-2 conv) twice, a residual block, and a linear output."""

    def __init__(self, in_shape: Sequence[int], out_dim: int, width: int = 64, cond_dim: int = 0):
        super().__init__()
        c, h, w = in_shape
        c += cond_dim
        _check_conv_size(h, w, 4)
        self.net = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1), ResBlock(width),
            nn.Conv2d(width, width, 4, stride=2, padding=1), ResBlock(width),
            nn.Conv2d(width, width, 4, stride=2, padding=1), ResBlock(width),
            nn.ReLU(), nn.Flatten(), nn.Linear(width * (h // 4) * (w // 4), out_dim),
        )

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.net(self.with_planes(x, cond))


class ResNetDecoder(nn.Module):
    """The mirror of ResNetEncoder, upsampling with stride-2 transposed convolutions."""

    def __init__(self, in_dim: int, out_shape: Sequence[int], width: int = 64):
        super().__init__()
        c_out, h, w = out_shape
        _check_conv_size(h, w, 4)
        self.start = (width, h // 4, w // 4)
        self.fc = nn.Linear(in_dim, math.prod(self.start))
        self.net = nn.Sequential(
            ResBlock(width), nn.ConvTranspose2d(width, width, 4, stride=2, padding=1),
            ResBlock(width), nn.ConvTranspose2d(width, width, 4, stride=2, padding=1),
            ResBlock(width), nn.ReLU(), OutputConv2d(width, c_out),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.fc(z).view(-1, *self.start))


def build_encoder(arch: str, in_shape: Sequence[int], out_dim: int, hidden: Sequence[int], width: int = 64,
                  cond_dim: int = 0, norm: str = "none") -> nn.Module:
    """An encoder `forward(x, cond=None)`; `hidden` sizes the MLP, `width` the ResNet, `cond_dim` the label input,
    `norm` the conv net's normalisation."""
    if arch == "mlp":
        return MLPEncoder(in_shape, out_dim, hidden, cond_dim)
    if arch == "conv":
        return ConvEncoder(in_shape, out_dim, cond_dim=cond_dim, norm=norm)
    if arch == "resnet":
        return ResNetEncoder(in_shape, out_dim, width=width, cond_dim=cond_dim)
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")


def build_decoder(arch: str, in_dim: int, out_shape: Sequence[int], hidden: Sequence[int], width: int = 64,
                  norm: str = "none") -> nn.Module:
    """The decoder that mirrors `build_encoder(arch, ...)` (MLP hidden sizes reversed)."""
    if arch == "mlp":
        return MLPDecoder(in_dim, out_shape, list(reversed(hidden)))
    if arch == "conv":
        return ConvDecoder(in_dim, out_shape, norm=norm)
    if arch == "resnet":
        return ResNetDecoder(in_dim, out_shape, width=width)
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")

