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

__all__ = ["DEFAULT_CPU_BUDGET", "CPU_TENSOR_CAP", "CPU_PASS_CAP", "parse_memory", "default_budget", "bytes_per_sample",
           "largest_activation", "EvalPlan", "plan_passes"]

DEFAULT_CPU_BUDGET = 2**30  # 1 GiB of activations at once: a laptop's share, whatever the test set
_SAFETY = 2.0  # allocator slack and the temporaries between module outputs
# On a CPU no one activation of a pass grows past this: glibc serves blocks over 32 MB with fresh mmap pages that
# fault in on every pass, and smaller ones stay in cache; too small a pass pays per-call overhead instead
# (benchmarks/eval_memory.py measures the rates, docs/history.md how the caps were chosen).
CPU_TENSOR_CAP = 16 * 2**20
# ... and a pass's activations together (bytes_per_sample, slack included) stay under this, so that they stay in
# the caches.
CPU_PASS_CAP = 96 * 2**20


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


def bytes_per_sample(model: torch.nn.Module, x: Tensor, y: Tensor | None = None, samples: int = 4) -> int:
    """Bytes of activations one importance sample costs: every module output of the decoder and the
    log-likelihood's elementwise temporaries, measured on `samples` draws for one image, times a safety factor."""
    return _with_slack(_decoder_output_sizes(model, x, y, samples), x, samples)


def largest_activation(model: torch.nn.Module, x: Tensor, y: Tensor | None = None, samples: int = 4) -> int:
    """Bytes of the largest single module output of the decoder for one importance sample."""
    return _largest(_decoder_output_sizes(model, x, y, samples), samples)


def _largest(sizes: list[int], samples: int) -> int:
    """Bytes a sample of the largest measured output."""
    return int(max(sizes, default=0) / samples)


def _with_slack(sizes: list[int], x: Tensor, samples: int) -> int:
    """Bytes a sample from the measured output sizes, the likelihood's temporaries and the safety factor."""
    elementwise = 4 * x[:1].numel() * 4  # log-sigmoid, products and sums over the pixels, float32
    return int(_SAFETY * (sum(sizes) / samples + elementwise))


@torch.no_grad()
def _decoder_output_sizes(model: torch.nn.Module, x: Tensor, y: Tensor | None, samples: int) -> list[int]:
    """Bytes of each leaf module's output while `samples` codes for one image are decoded and scored."""
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
    return sizes


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
                batch_size: int | None = None, chunk_size: int | None = None, images: int | None = None) -> EvalPlan:
    """Batch and chunk sizes that keep batch * chunk * bytes_per_sample within `budget`, and on a CPU every single
    activation within CPU_TENSOR_CAP and a whole pass within CPU_PASS_CAP (given sizes are kept).

    The model is measured on x's first image; `images` (default len(x)) is how many will be scored, so that a small
    k decodes several images' samples in one pass instead of one image at a time."""
    samples = 4
    sizes = _decoder_output_sizes(model, x, y, samples)
    per_sample = _with_slack(sizes, x, samples)
    at_once = max(1, budget // max(1, per_sample))
    if x.device.type == "cpu":
        at_once = min(at_once, max(1, CPU_TENSOR_CAP // max(1, _largest(sizes, samples))),
                      max(1, CPU_PASS_CAP // max(1, per_sample)))
    chunk = chunk_size if chunk_size is not None else max(1, min(k, at_once))
    batch = batch_size if batch_size is not None else max(1, min(len(x) if images is None else images, at_once // chunk))
    return EvalPlan(batch, chunk, per_sample, budget)
