"""Poem decoder size at the full recipe: the held-out fit of quatrain models that differ only in width and depth.

    python benchmarks/poem_width.py [--sizes 128x5,128x10,192x5,256x5,320x5-d0.25] [--train] [--threads 2]

A size WxL is the shipped quatrain model's command with `--embedding-dim W --decoder-layers L` (W is the
embedding and the convolutions' channels, L the causal layers), 12 epochs, in benchmarks/results/poem_width/WxL
(not committed); WxL-dP sets the decoder's dropout to P as well (the recipe's is 0.2). Rows measured before for
sizes not given this time are kept in the result (each row carries its own date). With --train a size not yet
trained there is trained first (on 2 CPU cores about 26 minutes for 128x5, 55 to 95 for 192 and 256, about 115
for 320), and `how.json` beside it records the threads and the wall time; a run
copied in from the package keeps its TRAINED.json instead. Each finished run is measured by
`vaekit.poetry.metrics.fit` on the same 1,650 held-out quatrains (importance-sampled perplexity on 300, k=100)
and the interpolation overlap. Needs the corpus (`vaekit poem fetch`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

import vaekit
from common import RESULTS, keep_other_rows, machine, write_result

RUNS = RESULTS / "poem_width"
COMMAND = ["vaekit", "poem", "train", "--form", "quatrain", "--posterior-bn", "0.84", "--encoder-pooling", "flatten",
           "--device", "cpu"]


def finished(run: Path) -> bool:
    """A shipped model, or a run whose metrics reached its last epoch."""
    if (run / "TRAINED.json").is_file():
        return True
    metrics, config = run / "metrics.jsonl", run / "config.json"
    if not (metrics.is_file() and config.is_file()):
        return False
    last = json.loads(metrics.read_text().strip().splitlines()[-1])
    return last["epoch"] >= json.loads(config.read_text())["optim"]["epochs"]


SIZE = re.compile(r"(\d+)x(\d+)(?:-d([0-9.]+))?")


def size_flags(size: str) -> list[str]:
    """The training flags a size names: WxL, or WxL-dP with the decoder's dropout."""
    match = SIZE.fullmatch(size)
    if match is None:
        raise SystemExit(f"poem_width: a size is WxL or WxL-dP (e.g. 256x5, 320x5-d0.25); got {size!r}")
    width, layers, dropout = match.groups()
    return ["--embedding-dim", width, "--decoder-layers", layers, *(["--dropout", dropout] if dropout else [])]


def train(size: str, run: Path, threads: int) -> None:
    """Train one size with the shipped command (resuming one cut short) and record threads and wall time."""
    cmd = [*COMMAND, *size_flags(size), "--run-dir", str(run)]
    if (run / "config.json").is_file():
        cmd.append("--resume")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vaekit.cli", *cmd[1:]], check=True,
                   env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    how = {"command": " ".join(cmd), "threads": threads, "wall_seconds": time.perf_counter() - start,
           "note": f"{threads} threads on {machine()['cpu']}"}
    (run / "how.json").write_text(json.dumps(how, indent=2) + "\n")


def how_trained(run: Path) -> dict[str, object]:
    """Command, device and wall time: from how.json (trained here) or TRAINED.json (a shipped model)."""
    for name in ("how.json", "TRAINED.json"):
        if (run / name).is_file():
            info = json.loads((run / name).read_text(encoding="utf-8"))
            return {"command": info["command"], "threads": info.get("threads"),
                    "device": info.get("device") or info.get("note"), "wall_seconds": info.get("wall_seconds")}
    return {}


def measure(size: str, run: Path) -> dict[str, object]:
    from vaekit.poetry.metrics import fit, interpolation_overlap
    from vaekit.poetry.task import split_items

    model = vaekit.load(run)
    config = model.run_config
    _, held_items = split_items(config)
    held = model.vocab.encode([t for t, _ in held_items])
    torch.manual_seed(0)
    row: dict[str, object] = {"size": size, "embedding_dim": config.poem.embedding_dim,
                              "decoder_layers": config.poem.decoder_layers, "dropout": config.poem.dropout,
                              "epochs": config.optim.epochs, "measured": machine()["date"],
                              "parameters": sum(p.numel() for p in model.parameters()),
                              **fit(model, held, iwae_poems=300, k=100),
                              "interpolation": interpolation_overlap(model, held)["nearer_end_share"],
                              **how_trained(run)}
    metrics = run / "metrics.jsonl"
    if metrics.is_file():
        row["train_seconds"] = json.loads(metrics.read_text().strip().splitlines()[-1])["train_seconds"]
    elif (run / "TRAINED.json").is_file():
        row["train_seconds"] = json.loads((run / "TRAINED.json").read_text())["train_seconds"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="128x5,128x10,192x5,256x5,320x5-d0.25")
    parser.add_argument("--train", action="store_true", help="train the sizes not yet trained in results/poem_width")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    for size in sizes:
        size_flags(size)
    rows = []
    for size in sizes:
        run = RUNS / size
        if args.train and not finished(run):
            train(size, run, args.threads)
        if not finished(run):
            print(f"{size}: not trained (pass --train)")
            continue
        rows.append(measure(size, run))
        print(json.dumps(rows[-1]))
    rows = sorted(keep_other_rows("poem_width", rows, lambda r: r["size"]),
                  key=lambda r: (r["embedding_dim"], r["decoder_layers"], r["dropout"]))
    write_result("poem_width", {"rows": rows, "command": "python benchmarks/poem_width.py --sizes "
                                + ",".join(str(r["size"]) for r in rows)})


if __name__ == "__main__":
    main()
