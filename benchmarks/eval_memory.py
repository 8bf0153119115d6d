"""Peak resident memory and speed of `vaekit evaluate` at its default settings, for every shipped architecture,
and with the decoder in bf16 (`--precision bf16`) beside the bias that adds on the same model and z.

    python benchmarks/eval_memory.py [--k 1000] [--limit 200] [--train-minutes 1] [--bias-images 50]

Each architecture gets a run trained for `--train-minutes` (the weights do not change the cost, but the bias of
bf16 is only meaningful on a model that has learned sharp pixels), then `vaekit evaluate RUN --k K --limit N
--samples 0 [--precision bf16]` runs in a child process whose peak resident set size (ru_maxrss) is recorded,
beside its importance samples per second (over the whole run, and after its first pass) and the decoder's FLOP
bound (the decoder's FLOPs per sample against the machine's square-GEMM rate in that precision; for fp32 the faster
of the BLAS and oneDNN). The bias is the NLL with the decoder in bf16 minus the fp32 one, both from the same z
(same seed, same passes) on `--bias-images`.
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


def steady_rate(progress: list[tuple[int, float]]) -> float | None:
    """Samples/s after the first pass, from `vaekit evaluate`'s progress lines (samples done, mean rate since the
    start): what a long evaluation runs at, without the one-off costs the first pass carries (planning, oneDNN's
    kernel set-up), so a short run's share of the FLOP bound can be told from start-up."""
    if len(progress) < 2:
        return None
    (first, first_rate), (last, last_rate) = progress[0], progress[-1]
    return (last - first) / (last / last_rate - first / first_rate)


def train(arch: str, root: Path, minutes: float) -> Path:
    """A run of `arch` on MNIST trained for about `minutes`."""
    run = root / arch
    subprocess.run([sys.executable, "-m", "vaekit.cli", "train", "--run-dir", str(run), "--max-minutes", str(minutes),
                    "--epochs", "1000", "--eval-size", "100", "--no-tensorboard", *ARCHS[arch]], check=True,
                   capture_output=True)
    return run


def measure(arch: str, run: Path, k: int, limit: int, precision: str) -> dict[str, object]:
    """`vaekit evaluate` at its defaults in a child process: peak memory, samples/s, the plan it chose."""
    import vaekit

    peak, output, seconds = _peak_of([sys.executable, "-m", "vaekit.cli", "evaluate", str(run), "--k", str(k),
                                      "--limit", str(limit), "--samples", "0", "--precision", precision])
    progress = [(int(d.replace(",", "")), float(r.replace(",", "")))
                for d, r in re.findall(r"nll: ([\d,]+)/[\d,]+ samples, ([\d,]+) samples/s", output)]
    plan = re.search(r"([\d,]+) at a time \((\d+) images x (\d+) samples", output)
    nll = re.search(r"nll: ([\d.]+) ±", output)
    model = vaekit.load(run)
    x = torch.rand(1, 1, 28, 28).bernoulli()
    z = torch.randn(256, 1, model.config.latent_dim)
    flops = forward_flops_per_image(lambda: model.likelihood(z).log_prob(x), 256)
    return {"arch": arch, "precision": precision, "k": k, "images": limit, "peak_rss_bytes": peak,
            "seconds": seconds, "samples_per_s": progress[-1][1] if progress else None,
            "steady_samples_per_s": steady_rate(progress), "decoder_flops_per_sample": flops,
            "samples_at_once": int(plan.group(1).replace(",", "")) if plan else None,
            "nll": float(nll.group(1)) if nll else None, "within_target": peak <= TARGET_PEAK_BYTES}


def bf16_bias(run: Path, k: int, images: int) -> dict[str, float]:
    """NLL with the decoder in bf16 minus the fp32 NLL, on the same model, images and z (same seed, same passes)."""
    import vaekit
    from vaekit.data import load_dataset
    from vaekit.evaluate import estimate_nll, eval_images

    model = vaekit.load(run)
    x, y = eval_images(load_dataset("mnist").test, "dynamic", images)
    nll = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        nll[precision] = estimate_nll(model, x, y, k=k, batch_size=1, chunk_size=min(k, 250), precision=precision).nll
    return {"bias_nats": nll["bf16"] - nll["fp32"], "bias_reference_nll": nll["fp32"], "bias_images": images,
            "bias_k": k}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--train-minutes", type=float, default=1.0)
    parser.add_argument("--bias-images", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    ceiling = {p: square_gemm_rate("cpu", dtype=d) for p, d in dtypes.items()}  # fp32: the faster of BLAS and oneDNN
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in ARCHS:
            run = train(arch, Path(tmp), args.train_minutes)
            for precision in dtypes:
                start = time.perf_counter()
                row = measure(arch, run, args.k, args.limit, precision)
                row["wall_seconds"] = time.perf_counter() - start
                if precision == "bf16":
                    row.update(bf16_bias(run, args.k, args.bias_images))
                rows.append(row)
                print(json.dumps(row))
                for p, d in dtypes.items():  # the ceiling, measured between the runs too
                    ceiling[p] = max(ceiling[p], square_gemm_rate("cpu", dtype=d))
    rates = {b: square_gemm_rate("cpu", backend=b) for b in ("blas", "onednn")[:1 + onednn_linear_available()]}
    ceiling["fp32"] = max(ceiling["fp32"], *rates.values())
    for row in rows:
        for rate, share in (("samples_per_s", "fraction_of_flop_bound"),
                            ("steady_samples_per_s", "steady_fraction_of_flop_bound")):
            if row[rate]:
                row[share] = row[rate] * row["decoder_flops_per_sample"] / ceiling[str(row["precision"])]
    write_result("eval-memory-cpu", {"machine": machine(), "square_gemm_flops_per_s": ceiling["fp32"],
                                     "square_gemm_bf16_flops_per_s": ceiling["bf16"],
                                     "square_gemm_by_backend": rates, "rows": rows,
                                     "target_peak_bytes": TARGET_PEAK_BYTES,
                                     "command": f"python benchmarks/eval_memory.py --k {args.k} --limit {args.limit} "
                                                f"--train-minutes {args.train_minutes:g} "
                                                f"--bias-images {args.bias_images}"})


if __name__ == "__main__":
    main()
