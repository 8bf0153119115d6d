"""The default poem recipe trained in fp32 and in bf16 for the same minutes: does bf16 autocast cost verse quality?

`--precision auto` trains in bf16 where the device multiplies it in hardware (a CPU with AMX or AVX-512 BF16, a GPU
from Ampere on). This trains `vaekit poem train --form quatrain` (the default recipe, both threads of the machine)
once in each precision for the same budget, one after the other, and measures each on the held-out poems by
`vaekit.poetry.metrics.fit` (fp32): the bound, KL, reconstruction, and the epochs the budget bought.

    python benchmarks/poem_precision.py [--minutes 8] [--measure-only]

Needs the corpus (`vaekit poem fetch`). Runs go to benchmarks/results/poem_precision/ (not committed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import vaekit
from common import RESULTS, write_result

RUNS = RESULTS / "poem_precision"
PRECISIONS = ("fp32", "bf16")


def train(precision: str, minutes: float) -> None:
    """One run of the default recipe in `precision`, for `minutes` (a finished run is left as it is)."""
    run = RUNS / precision
    if (run / "config.json").is_file():
        return
    cmd = [sys.executable, "-m", "vaekit.cli", "poem", "train", "--form", "quatrain", "--run-dir", str(run),
           "--max-minutes", str(minutes), "--device", "cpu", "--precision", precision]
    with open(RUNS / f"{precision}.log", "w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)


def measure(precision: str, iwae_poems: int, k: int) -> dict:
    """The held-out fit of one run, with the epochs and seconds its budget bought."""
    import torch

    from vaekit.poetry.metrics import fit
    from vaekit.poetry.task import split_items

    torch.manual_seed(0)
    model = vaekit.load(RUNS / precision)
    _, held = split_items(model.run_config)
    result = fit(model, model.vocab.encode([t for t, _ in held]), iwae_poems=iwae_poems, k=k)
    rows = [json.loads(line) for line in (RUNS / precision / "metrics.jsonl").read_text().splitlines()]
    return {"precision": precision, "epochs": rows[-1]["epoch"], "train_seconds": rows[-1]["train_seconds"],
            "poems_per_s": rows[-1].get("images_per_s"), **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--measure-only", action="store_true")
    parser.add_argument("--iwae-poems", type=int, default=300)
    parser.add_argument("-k", type=int, default=100)
    args = parser.parse_args()
    RUNS.mkdir(parents=True, exist_ok=True)
    if not args.measure_only:
        for precision in PRECISIONS:
            train(precision, args.minutes)
    rows = [measure(p, args.iwae_poems, args.k) for p in PRECISIONS]
    for r in rows:
        print(f"{r['precision']}: {r['epochs']} epochs, kl {r['kl_per_poem']:.2f}, recon "
              f"{r['reconstruction_accuracy']:.1%}, bound {r['perplexity_bound']:.1f}, iwae {r['perplexity_iwae']:.1f}")
    write_result("poem_precision", {"rows": rows, "minutes": args.minutes,
                                    "command": f"python benchmarks/poem_precision.py --minutes {args.minutes:g}"})


if __name__ == "__main__":
    main()
