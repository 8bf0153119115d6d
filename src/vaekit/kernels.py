"""Inference kernels for the CPU: oneDNN's matmul, where torch's BLAS is slow for the shapes VAEs use.

torch's CPU wheel multiplies fp32 matrices with MKL; on the AMD EPYC this project measures on, MKL ran a square
1024 product at ~190 GFLOP/s and oneDNN's matmul (`torch.ops.mkldnn._linear_pointwise`, the kernel torch's own
compiler calls for linear layers) at ~400, and a thin (131,000 x 32) @ (32 x 9) product four times faster.
No autograd: callers use it without gradients and fall back to the library's own op otherwise.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["onednn_linear_available", "linear"]


def onednn_linear_available() -> bool:
    """Whether this torch has oneDNN's fused linear op on the CPU."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, by oneDNN for fp32 CPU tensors without gradients, else by torch's own linear."""
    if (torch.is_grad_enabled() or x.device.type != "cpu" or x.dtype != torch.float32
            or weight.dtype != torch.float32 or not onednn_linear_available()):
        return torch.nn.functional.linear(x, weight, bias)
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
