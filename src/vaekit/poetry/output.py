"""The decoder's output layer fused with its log-likelihood: log softmax(h W^T + b)[target], in row chunks.

Written plainly, a batch of 64 quatrains makes (64, 20, 6487) logits, a log-softmax of that size, and in backward
a zero tensor of that size for `gather` to scatter into plus the log-softmax's gradient: four 33 MB buffers a
step. On a CPU each is just past glibc's 32 MB ceiling for reusing freed blocks, so every one is fresh pages
that fault in, and together they took a large share of a training step (docs/history.md). Here the logits are
formed a chunk of rows at a time (none past `CHUNK_BYTES`), only each row's log-sum-exp and target logit leave
the chunk, and backward turns the kept logits into their own gradient in place: softmax minus one-hot.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vaekit import kernels

__all__ = ["CHUNK_BYTES", "linear_log_prob"]

CHUNK_BYTES = 16 * 2**20  # as memory.CPU_TENSOR_CAP: under glibc's mmap ceiling, so freed chunks are reused


def _rows_per_chunk(rows: int, classes: int, device: torch.device) -> int:
    """Rows whose float32 logits fit CHUNK_BYTES on a CPU; every row at once elsewhere (a GPU has no page faults)."""
    if device.type != "cpu":
        return max(1, rows)
    return max(1, min(rows, CHUNK_BYTES // (4 * classes)))


class _LinearLogProb(torch.autograd.Function):
    """Forward: log p(target) under softmax(h W^T + b), one chunk of rows at a time; backward from the kept logits."""

    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor, bias: Tensor, target: Tensor) -> Tensor:  # type: ignore[override]
        dtype, acc = h.dtype, torch.promote_types(h.dtype, torch.float32)  # bf16 states, float32 softmax
        w, b = weight.to(dtype), bias.to(dtype)
        rows = _rows_per_chunk(len(h), len(weight), h.device)
        keep = any(ctx.needs_input_grad[:3])
        out = torch.empty(len(h), dtype=acc, device=h.device)
        chunks: list[tuple[Tensor, Tensor]] = []
        for start in range(0, len(h), rows):
            logits = kernels.linear(h[start:start + rows], w, b).to(acc)  # grad is off in here: oneDNN on a CPU
            lse = torch.logsumexp(logits, dim=1)
            out[start:start + rows] = logits.gather(1, target[start:start + rows, None]).squeeze(1) - lse
            if keep:
                chunks.append((logits, lse))
        ctx.rows, ctx.chunks = rows, chunks
        ctx.save_for_backward(h, weight, target)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        h, weight, target = ctx.saved_tensors
        dtype, acc, rows = h.dtype, grad_out.dtype, ctx.rows
        w = weight.to(dtype)
        grad_h = torch.empty_like(h) if ctx.needs_input_grad[0] else None
        grad_w = torch.zeros(weight.shape, dtype=acc, device=h.device) if ctx.needs_input_grad[1] else None
        grad_b = torch.zeros(len(weight), dtype=acc, device=h.device) if ctx.needs_input_grad[2] else None
        for i, (logits, lse) in enumerate(ctx.chunks):
            start = i * rows
            g = grad_out[start:start + rows]
            # d/d logits of (logit[t] - lse) is onehot(t) - softmax: formed in the logits' own buffer
            grad = logits.sub_(lse[:, None]).exp_().mul_(-g[:, None])
            grad.scatter_add_(1, target[start:start + rows, None], g[:, None])
            if grad_b is not None:
                grad_b += grad.sum(0)
            if grad_w is not None:
                grad_w.addmm_(grad.t(), h[start:start + rows].to(acc))
            if grad_h is not None:
                torch.mm(grad.to(dtype), w, out=grad_h[start:start + rows])
        ctx.chunks = []
        return (grad_h, None if grad_w is None else grad_w.to(weight.dtype),
                None if grad_b is None else grad_b.to(weight.dtype), None)


def linear_log_prob(h: Tensor, weight: Tensor, bias: Tensor, target: Tensor) -> Tensor:
    """log softmax(h @ weight.T + bias)[target] for each row: h (N, d), weight (V, d), bias (V,), target (N,).

    The same value as `log_softmax(F.linear(h, weight, bias), -1).gather(...)` (float32 logits), with gradients
    for h, weight and bias. The logits are the only (N, V) tensor, kept for backward in chunks of at most
    CHUNK_BYTES on a CPU, and not kept at all without gradients.
    """
    if h.ndim != 2 or target.shape != h.shape[:1]:
        raise ValueError(f"h must be (N, d) and target (N,); got {tuple(h.shape)} and {tuple(target.shape)}")
    return _LinearLogProb.apply(h, weight, bias, target)
