"""Peak resident memory and speed of `vaekit evaluate` at its default settings, for every shipped architecture.

    python benchmarks/eval_memory.py [--k 1000] [--limit 200]

Each architecture gets a small run (one short epoch: the weights do not change the cost), then
`vaekit evaluate RUN --k K --limit N --samples 0` runs in a child process whose peak resident set size
(ru_maxrss) is recorded, beside its importance samples per second and the decoder's FLOP bound (the
decoder's FLOPs per sample against the machine's square-GEMM rate, the faster of the BLAS and oneDNN).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from common import forward_flops_per_image, machine, write_result
from throughput import square_gemm_rate
from vaekit.kernels import onednn_linear_available

ARCHS = {"mlp": ["--arch", "mlp"], "conv": ["--arch", "conv", "--latent-dim", "32"],
         "resnet": ["--arch", "resnet", "--latent-dim", "32"]}
TARGET_PEAK_BYTES = 1.5 * 2**30


def _peak_of(cmd: list[str]) -> tuple[int, str, float]:
    """(peak RSS in bytes, stderr+stdout, seconds) of one command run as this wrapper's only child."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            f"r = subprocess.run({cmd!r}, capture_output=True, text=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t); "
            "sys.stderr.write(r.stdout + r.stderr); sys.exit(r.returncode)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak_kb, seconds = proc.stdout.split()
    return int(peak_kb) * 1024, proc.stderr, float(seconds)


def measure(arch: str, root: Path, k: int, limit: int) -> dict[str, object]:
    import vaekit

    run = root / arch
    subprocess.run([sys.executable, "-m", "vaekit.cli", "train", "--run-dir", str(run), "--train-size", "1024",
                    "--eval-size", "100", "--epochs", "1", "--no-tensorboard", *ARCHS[arch]], check=True,
                   capture_output=True)
    peak, output, seconds = _peak_of([sys.executable, "-m", "vaekit.cli", "evaluate", str(run), "--k", str(k),
                                      "--limit", str(limit), "--samples", "0"])
    rates = [float(r.replace(",", "")) for r in re.findall(r"([\d,]+) samples/s", output)]
    plan = re.search(r"([\d,]+) at a time \((\d+) images x (\d+) samples", output)
    model = vaekit.load(run)
    x = torch.rand(1, 1, 28, 28).bernoulli()
    z = torch.randn(256, 1, model.config.latent_dim)
    flops = forward_flops_per_image(lambda: model.likelihood(z).log_prob(x), 256)
    return {"arch": arch, "k": k, "images": limit, "peak_rss_bytes": peak, "seconds": seconds,
            "samples_per_s": rates[-1] if rates else None, "decoder_flops_per_sample": flops,
            "samples_at_once": int(plan.group(1).replace(",", "")) if plan else None,
            "within_target": peak <= TARGET_PEAK_BYTES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    peak_flops = square_gemm_rate("cpu")  # the faster of the BLAS and oneDNN
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in ARCHS:
            start = time.perf_counter()
            row = measure(arch, Path(tmp), args.k, args.limit)
            row["wall_seconds"] = time.perf_counter() - start
            rows.append(row)
            print(json.dumps(row))
            peak_flops = max(peak_flops, square_gemm_rate("cpu"))  # the ceiling, measured between the runs too
    rates = {b: square_gemm_rate("cpu", backend=b) for b in ("blas", "onednn")[:1 + onednn_linear_available()]}
    peak_flops = max(peak_flops, *rates.values())
    for row in rows:
        if row["samples_per_s"]:
            row["fraction_of_flop_bound"] = row["samples_per_s"] * row["decoder_flops_per_sample"] / peak_flops
    write_result("eval-memory-cpu", {"machine": machine(), "square_gemm_flops_per_s": peak_flops,
                                     "square_gemm_by_backend": rates, "rows": rows,
                                     "target_peak_bytes": TARGET_PEAK_BYTES,
                                     "command": f"python benchmarks/eval_memory.py --k {args.k} --limit {args.limit}"})


if __name__ == "__main__":
    main()
