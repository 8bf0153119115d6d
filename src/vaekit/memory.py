"""How many decoder passes fit at once: a memory budget over the model's measured activation bytes per sample.

Evaluation decodes k samples for each image. How many run at once decides the peak memory, never the
numbers (`iwae_bound` folds chunks into a running logsumexp), so the batch and chunk sizes are chosen
here from a budget: about 1 GB on a CPU, half the free memory of a GPU, or what `--memory` says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["DEFAULT_CPU_BUDGET", "parse_memory", "default_budget", "bytes_per_sample", "EvalPlan", "plan_passes"]

DEFAULT_CPU_BUDGET = 2**30  # 1 GiB of activations at once: a laptop's share, whatever the test set
_SAFETY = 2.0  # allocator slack and the temporaries between module outputs


def parse_memory(text: str) -> int:
    """'1GB', '512MB', '2g', '750M' -> bytes; ValueError with the accepted forms otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*", text.lower())
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"memory must be a size such as 512MB or 2GB; got {text!r}")
    scale = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[match.group(2)]
    return int(float(match.group(1)) * scale)


def default_budget(device: torch.device) -> int:
    """About 1 GB on the CPU; half of what is free on a CUDA GPU."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    return DEFAULT_CPU_BUDGET


@torch.no_grad()
def bytes_per_sample(model: torch.nn.Module, x: Tensor, y: Tensor | None = None, samples: int = 4) -> int:
    """Bytes of activations one importance sample costs: every module output of the decoder and the
    log-likelihood's elementwise temporaries, measured on `samples` draws for one image, times a safety factor."""
    sizes: list[int] = []

    def hook(_module: torch.nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, Tensor):
            sizes.append(output.numel() * output.element_size())

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        q = model.posterior(x[:1], None if y is None else y[:1])
        sizes.clear()  # only what the k decoder passes cost, not the one encoder pass
        z = q.sample((samples,))
        model.likelihood(z, None if y is None else y[:1]).log_prob(x[:1])
    finally:
        for h in handles:
            h.remove()
    elementwise = 4 * x[:1].numel() * 4  # log-sigmoid, products and sums over the pixels, float32
    return int(_SAFETY * (sum(sizes) / samples + elementwise))


@dataclass(frozen=True)
class EvalPlan:
    """Images a batch and samples a chunk: batch * chunk samples are decoded at once."""

    batch_size: int
    chunk_size: int
    bytes_per_sample: int
    budget: int

    @property
    def samples_at_once(self) -> int:
        return self.batch_size * self.chunk_size


def plan_passes(model: torch.nn.Module, x: Tensor, y: Tensor | None, k: int, budget: int,
                batch_size: int | None = None, chunk_size: int | None = None) -> EvalPlan:
    """Batch and chunk sizes that keep batch * chunk * bytes_per_sample within `budget` (given sizes are kept)."""
    per_sample = bytes_per_sample(model, x, y)
    at_once = max(1, budget // max(1, per_sample))
    chunk = chunk_size if chunk_size is not None else max(1, min(k, at_once))
    batch = batch_size if batch_size is not None else max(1, min(len(x), at_once // chunk))
    return EvalPlan(batch, chunk, per_sample, budget)
