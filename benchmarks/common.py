"""Shared helpers for the benchmark scripts: machine description, JSON results, FLOP counts, GEMM rates."""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def training_precisions(device: str, given: str | None) -> list[str]:
    """The training precisions to measure: those given (comma-separated), else fp32, and bf16 too where the
    device multiplies it in hardware (where `--precision auto` would train in it)."""
    from vaekit import kernels

    return (given or ("fp32,bf16" if kernels.native_bf16(torch.device(device)) else "fp32")).split(",")


def with_overrides(recipe: dict[str, Any], items: list[str]) -> dict[str, Any]:
    """A recipe with `--set KEY=VALUE` items applied (VALUE read as JSON where it parses, else as a string)."""
    chosen = dict(recipe)
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item}: write KEY=VALUE, e.g. --set kl_warmup=20")
        try:
            chosen[key] = json.loads(value)
        except json.JSONDecodeError:
            chosen[key] = value
    return chosen


def add_set_option(parser: Any) -> None:
    """The `--set KEY=VALUE` option of the benchmarks that train a recipe."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change one setting of the recipe, e.g. --set kl_warmup=20 (repeatable)")


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write results/NAME.json with the machine description attached."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def keep_other_rows(name: str, rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any],
                    same_cpu: bool = False) -> list[dict[str, Any]]:
    """The rows just measured in place of results/NAME.json's rows with the same key (a form, a size); rows of
    other keys stay, each dated from its file where it has no date of its own, so a rerun for one form keeps the rest.
    `same_cpu`: keep them only from a file measured on this CPU (for tables that name one machine)."""
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        return rows
    old = json.loads(path.read_text(encoding="utf-8"))
    if same_cpu and old["machine"]["cpu"] != machine()["cpu"]:
        return rows
    fresh = {key(r) for r in rows}
    out: list[dict[str, Any]] = []
    placed: set[Any] = set()
    for r in old["rows"]:
        k = key(r)
        if k not in fresh:
            out.append({"measured": old["machine"]["date"], **r})
        elif k not in placed:
            out += [x for x in rows if key(x) == k]
            placed.add(k)
    return out + [x for x in rows if key(x) not in placed]


def training_flops_per_image(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """FLOPs of one forward + backward pass per image, counted by torch's FlopCounterMode (matmuls/convs)."""
    counter = FlopCounterMode(display=False)
    with counter:
        model(x, y).loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(x)


def forward_flops_per_image(fn, batch: int) -> float:  # noqa: ANN001
    """FLOPs of calling fn() once, divided by batch: counted on torch's own ops, as FlopCounterMode knows no
    oneDNN fused linear (`vaekit.kernels`), which the count turns off while it runs."""
    from unittest import mock

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter, mock.patch("vaekit.kernels.onednn_linear_available", return_value=False):
        fn()
    return counter.get_total_flops() / batch


def timed(fn, repeat: int, warmup: int = 3, sync: bool = False) -> float:  # noqa: ANN001
    """Median seconds of fn() over `repeat` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if sync:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def linear_gemm_rate(model: torch.nn.Module, batch: int, device: str = "cpu", repeat: int = 50) -> dict[str, float]:
    """FLOP/s of the model's own Linear-layer GEMMs alone at this batch (forward, grad-input, grad-weight).

    This is the ceiling for an MLP's training step on this machine: the same matrix products with none of
    the framework around them.
    """
    mats = []
    for layer in model.modules():
        if isinstance(layer, torch.nn.Linear):
            i, o = layer.in_features, layer.out_features
            mats.append((torch.randn(batch, i, device=device), torch.randn(i, o, device=device),
                         torch.randn(batch, o, device=device)))

    def run() -> None:
        for x, w, g in mats:
            x @ w
            g @ w.T
            x.T @ g

    flops = sum(3 * 2 * batch * w.shape[0] * w.shape[1] for _, w, _ in mats)
    # the best of five medians: interference only slows a round, so the fastest is the closest to the ceiling
    seconds = min(timed(run, repeat, sync=device == "cuda") for _ in range(5))
    return {"gemm_flops_per_step": flops, "gemm_seconds_per_step": seconds, "gemm_flops_per_s": flops / seconds}
