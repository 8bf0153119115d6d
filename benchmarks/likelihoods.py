"""Which likelihood models grey levels and colour best? Bits/dim on held-out images, the figure papers report.

    python benchmarks/likelihoods.py [--minutes 3] [--k 100] [--limit 1000]

The same conv VAE (latent 16) is trained for the same CPU budget (one thread each, two runs at a time) with each
likelihood, on Fashion-MNIST and on a generated folder of 32x32 colour shapes, and scored by `estimate_nll` with
k importance samples: a discrete likelihood (discretized logistic) as it stands, a density (Gaussian) on
uniformly dequantized images plus log 256 nats a pixel, so both are code lengths on one scale. For colour the
channel spread of the reconstructions against the inputs' says whether colour survives.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from common import write_result

VARIANTS = [  # (name, likelihood, scale shared over)
    ("gaussian, one scale", "gaussian", "image"),
    ("gaussian, a scale per pixel", "gaussian", "pixel"),
    ("discretized logistic, one scale", "discretized_logistic", "image"),
    ("discretized logistic, a scale per pixel", "discretized_logistic", "pixel"),
]

ONE = """
import json, torch
torch.set_num_threads(1)
from vaekit.config import TrainConfig
from vaekit.data import load_dataset
from vaekit.evaluate import estimate_nll
from vaekit.train import Trainer
extra = {extra}
cfg = TrainConfig.from_flat(run_dir={run!r}, dataset={dataset!r}, likelihood={likelihood!r}, learn_scale=True,
                            scale_per={scale_per!r}, epochs=1000, max_minutes={minutes}, device="cpu",
                            tensorboard=False, **extra)
trainer = Trainer(cfg, log=lambda m: None)
last = trainer.fit()
model = trainer.model.eval()
data = load_dataset({dataset!r}, extra.get("data_dir"), extra.get("image_size", 28), extra.get("channels", 1), 0)
x, y = data.test.images[:{limit}], data.test.labels[:{limit}]
torch.manual_seed(0)
nll = estimate_nll(model, x, y, k={k}, pixel_levels=256)
recon = model.reconstruct(x)
spread = float(recon.std(dim=1).mean() / x.std(dim=1).mean()) if x.shape[1] > 1 else None
print(json.dumps({{"bits_per_dim": nll.bits_per_dim, "nll": nll.nll, "standard_error": nll.standard_error,
                  "dequantized": nll.dequantized, "epochs": last["epoch"], "valid_elbo": last["valid_elbo"],
                  "valid_kl": last["valid_kl"], "recon_squared_error": float((recon - x).pow(2).flatten(1).sum(1).mean()),
                  "channel_spread_vs_inputs": spread}}))
"""


def shapes_folder(root: Path, per_class: int = 700, size: int = 32, seed: int = 0) -> Path:
    """Discs, squares and triangles in random colours on random light or dark backgrounds: 3 classes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for name in ("disc", "square", "triangle"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            bg = rng.integers(0, 256, 3) // 4 + (0 if rng.random() < 0.5 else 192)
            img = np.broadcast_to(bg, (size, size, 3)).astype(np.uint8).copy()
            r = rng.integers(5, 11)
            cy, cx = rng.integers(r, size - r, 2)
            if name == "disc":
                mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            elif name == "square":
                mask = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
            else:
                mask = (yy >= cy - r) & (yy <= cy + r) & (abs(xx - cx) <= (yy - (cy - r)) / 2)
            img[mask] = rng.integers(0, 256, 3)
            Image.fromarray(img).save(root / name / f"{i}.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--limit", type=int, default=1000)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        shapes = shapes_folder(Path(tmp) / "shapes")
        datasets = {"fashion-mnist": {}, "colour shapes (folder, 32x32 RGB)":
                    {"data_dir": str(shapes), "image_size": 32, "channels": 3}}
        cases = [(d, v) for d in datasets for v in VARIANTS]
        for i in range(0, len(cases), 2):
            procs = []
            for j, (d, (name, likelihood, scale_per)) in enumerate(cases[i:i + 2]):
                extra = datasets[d]
                dataset = "folder" if extra else d
                code = ONE.format(extra=repr(extra), run=str(Path(tmp) / f"run{i + j}"), dataset=dataset,
                                  likelihood=likelihood, scale_per=scale_per, minutes=args.minutes, k=args.k,
                                  limit=args.limit)
                procs.append(((d, name, likelihood, scale_per),
                              subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)))
            for (d, name, likelihood, scale_per), proc in procs:
                out, _ = proc.communicate()
                row = {"data": d, "variant": name, "likelihood": likelihood, "scale_per": scale_per,
                       **json.loads(out.strip().splitlines()[-1])}
                rows.append(row)
                print(json.dumps(row), flush=True)
    write_result("likelihoods-cpu", {"minutes": args.minutes, "k": args.k, "images": args.limit, "rows": rows,
                                     "command": f"python benchmarks/likelihoods.py --minutes {args.minutes:g} "
                                                f"--k {args.k} --limit {args.limit}"})


if __name__ == "__main__":
    main()
