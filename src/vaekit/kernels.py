"""Inference kernels for the CPU: oneDNN's matmul, where torch's BLAS is slow for the shapes VAEs use.

torch's CPU wheel multiplies fp32 matrices with MKL; on some CPUs (the AMD EPYC of docs/history.md) oneDNN's matmul
(`torch.ops.mkldnn._linear_pointwise`, the kernel torch's own compiler calls for linear layers) runs square and
thin products several times faster; benchmarks/throughput.py and eval_memory.py measure both.
No autograd: callers use it without gradients and fall back to the library's own op otherwise. Used by image
evaluation (every nn.Linear while the NLL is estimated, the output convolution's tap GEMM) and by the poem model
(its output projection when decoding and in the fused log-probability's forward, the stepping decoder's taps).
"""

from __future__ import annotations

from functools import cache

import torch
from torch import Tensor

__all__ = ["onednn_linear_available", "usable", "linear", "native_bf16"]


@cache
def onednn_linear_available() -> bool:
    """Whether this torch has oneDNN's fused linear op on the CPU, and it agrees with torch's own linear on a small
    product: the op is private, so a torch that changed or dropped it gets the library's linear instead of an error."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return False
    generator = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(*shape, generator=generator) for shape in ((5, 7), (3, 7), (3,)))
    try:
        with torch.no_grad():
            got = torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")
    except (RuntimeError, TypeError):
        return False
    return got.shape == (5, 3) and bool(torch.allclose(got, torch.nn.functional.linear(x, w, b), atol=1e-4))


def usable(x: Tensor, weight: Tensor) -> bool:
    """Whether `linear` takes oneDNN for these operands: fp32 CPU tensors, gradients and autocast off, the op present
    (under autocast torch's own linear runs in the lower precision, which this private op would bypass)."""
    return (not torch.is_grad_enabled() and x.device.type == "cpu" and x.dtype == torch.float32
            and weight.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
            and onednn_linear_available())


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, by oneDNN where `usable`, else by torch's own linear."""
    if not usable(x, weight):
        return torch.nn.functional.linear(x, weight, bias)
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def native_bf16(device: torch.device, tiles_only: bool = False) -> bool:
    """Whether this device multiplies bfloat16 matrices in hardware: a CUDA GPU from Ampere on, or a CPU with AMX
    tiles (Intel Sapphire Rapids and later) or AVX-512 BF16 dot products (Intel Cooper Lake, AMD Zen 4 and later);
    docs/benchmarks.md gives the measured rates. Elsewhere bf16 is emulated and no faster, so it is only suggested.
    `tiles_only` counts AMX alone on a CPU: AVX-512 BF16 trains the image models faster but evaluated the NLL no
    faster than fp32 (docs/history.md, 2026-12-07), so evaluation suggests bf16 on AMX only."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type != "cpu":
        return False
    names = ("_is_amx_tile_supported",) if tiles_only else ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    checks = [getattr(torch.cpu, name, None) for name in names]
    return any(bool(check()) for check in checks if callable(check))  # private: a torch without them suggests none
