"""`make bench`: rerun the benchmarks this machine can run, then regenerate docs/benchmarks.md.

On a CPU-only machine this reruns throughput (about 12 minutes: each recipe in fp32, and in bf16 where the CPU
multiplies it in hardware), the family tables (about 12 minutes each), time-to-quality training (10 minutes in
each precision; its conv-decoder NLL evaluation takes ~2.5 minutes a snapshot on 2 cores), evaluation memory
(a few minutes), the CVAE label check (about 21 minutes) and, when the corpus has been fetched, the poem metrics
and repetition settings (a few minutes), the poem ablation and the per-poem posterior fits (about 25 minutes
each), the default poem recipe in both precisions (about 20 minutes). Results measured on a GPU (files ending in
-cuda.json) are kept as they are unless a GPU is here.
Pass --quick to rerun only throughput.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).parent


def run(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], check=True, cwd=HERE)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    run("throughput.py", "--device", "cpu", "--recipes", "mlp,conv,resnet", "--epochs", "3")
    if not quick:
        run("family.py", "--dataset", "mnist")
        run("family.py", "--dataset", "fashion-mnist")
        run("time_to_quality.py")
        run("eval_memory.py")
        run("peers.py")  # installs pytorch/examples' and Pythae's needs into benchmarks/.peers-venv first
        run("serve_latency.py")
        run("likelihoods.py", "--minutes", "3")  # 8 runs of 3 minutes, two at a time
        run("own_images.py")  # a folder of colour shapes at the default flags: about a minute
        run("cvae.py", "--minutes", "10")
        if (Path.home() / ".cache" / "vaekit" / "chinese-poetry").is_dir():
            run("poems.py", "-n", "1000")
            run("poem_repeats.py")  # 19 settings of 1,000 poems: about 2 minutes
            run("ngram.py")  # the n-gram baseline on the same split: seconds
            run("parallelism.py")  # the regulated models at five bonus weights: a few minutes
            run("ci.py")  # 20 ci a tune each way: a few minutes
            run("sampling_defaults.py")  # 30 settings of 500 quatrains: several minutes
            run("poem_ablation.py")  # 8 runs of 6 minutes, two at a time: about 25 minutes
            run("poem_posterior.py")  # a Gaussian fitted to each of 1,650 poems, twice: about 25 minutes
            run("poem_precision.py")  # the default recipe for 8 minutes in fp32 and in bf16: about 20 minutes
        if torch.cuda.is_available():
            run("throughput.py", "--device", "cuda", "--train-size", "50000", "--epochs", "3")
            run("quality_ceiling.py", "--minutes", "5")
    run("report.py")
