"""Own colour images at the default flags: how long `vaekit train` takes on a folder, and whether colour survives.

    python benchmarks/own_images.py [--per-class 500]

A folder of 32x32 colour shapes (3 classes, benchmarks/likelihoods.py's generator) is trained exactly as a newcomer
would: `vaekit train --dataset folder --data-dir shapes --image-size 32 --channels 3 --run-dir r`, no other flag.
The wall time of the whole command, the epochs and optimizer steps the data chose, and the channel spread of the
held-out reconstructions against the inputs' (grey images have none) are written to results/own-images-cpu.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from common import write_result
from likelihoods import shapes_folder


def colour_spread(run: Path, folder: Path) -> float:
    """Mean spread across channels of the test reconstructions, as a share of the inputs' own."""
    import vaekit
    from vaekit.data import load_dataset

    model = vaekit.load(run)
    x = load_dataset("folder", str(folder), 32, 3, 0).test.images
    with torch.no_grad():
        recon = model.reconstruct(x)
    return float(recon.std(dim=1).mean() / x.std(dim=1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=500, help="images a class (3 classes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = shapes_folder(Path(tmp) / "shapes", per_class=args.per_class)
        run = Path(tmp) / "run"
        command = [sys.executable, "-m", "vaekit.cli", "train", "--dataset", "folder", "--data-dir", str(folder),
                   "--image-size", "32", "--channels", "3", "--run-dir", str(run), "--no-tensorboard"]
        start = time.perf_counter()
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        seconds = time.perf_counter() - start
        config = json.loads((run / "config.json").read_text())
        last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        row = {"images": 3 * args.per_class, "epochs": config["optim"]["epochs"], "steps": last["step"],
               "seconds": round(seconds, 1), "precision": out.split("precision: ")[1].split()[0],
               "colour_spread_vs_inputs": round(colour_spread(run, folder), 3),
               "chosen_epochs": config["chosen"].get("epochs")}
    print(json.dumps(row, indent=2))
    write_result("own-images-cpu", {"rows": [row],
                                    "command": "vaekit train --dataset folder --data-dir shapes --image-size 32 "
                                               "--channels 3 --run-dir r"})


if __name__ == "__main__":
    main()
