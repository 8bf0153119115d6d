"""The family side by side at equal training time: AE, VAE, IWAE, VAE with the VampPrior, the hierarchical VAE,
CVAE, GAN and conditional GAN.

    python benchmarks/family.py --dataset mnist [--minutes 1.5] [--device cpu]
    python benchmarks/family.py --dataset mnist --minutes 10 --models VAE,HVAE   # a longer budget for some of them

Each model trains for the same wall-clock budget on the same data, then is scored by the same code:
test NLL where the model defines one (k importance samples), the classifier Frechet distance, sample
diversity and conditional accuracy. One figure puts a sample grid per model side by side.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from common import write_result
from vaekit.config import TrainConfig
from vaekit.evaluate import estimate_nll, eval_images, protocol_name, sample_quality
from vaekit.plots import image_grid
from vaekit.train import Trainer

MODELS = {
    "AE": {"model": "ae"},
    "VAE": {"model": "vae", "kl_warmup": 1.0},
    "IWAE (k=5)": {"model": "iwae", "k": 5},
    "VAE + VampPrior": {"model": "vae", "prior": "vamp", "kl_warmup": 1.0},
    "HVAE": {"model": "hvae", "width": 32, "latent_dim": 4, "groups": [2, 2], "kl_warmup": 1.0},  # time_to_quality's
    "CVAE": {"model": "cvae"},  # the default conditioning: label into encoder, decoder and prior (both)
    "GAN": {"model": "gan"},
    "conditional GAN": {"model": "gan", "conditional": True},
}
DOCS = Path(__file__).parent.parent / "docs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    parser.add_argument("--minutes", type=float, default=1.5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated names of MODELS; a subset writes its own result, named by its budget")
    args = parser.parse_args()
    chosen = [m.strip() for m in args.models.split(",")]
    unknown = [m for m in chosen if m not in MODELS]
    if unknown:
        parser.error(f"--models: {', '.join(unknown)} not among {', '.join(MODELS)}")
    result = f"family-{args.dataset}" + ("" if chosen == list(MODELS) else f"-{args.minutes:g}min")
    rows, grids = [], []
    for model_name, settings in ((m, MODELS[m]) for m in chosen):
        run_dir = tempfile.mkdtemp(prefix="vaekit-family-")
        shutil.rmtree(run_dir)
        shared = {"arch": "conv", "latent_dim": 16}  # the flat models' networks; the HVAE's settings replace them
        cfg = TrainConfig.from_flat(run_dir=run_dir, dataset=args.dataset, epochs=1000, max_minutes=args.minutes,
                                    device=args.device, tensorboard=False, seed=0, **{**shared, **settings})
        start = time.perf_counter()
        trainer = Trainer(cfg, log=print)
        last = trainer.fit()
        wall = time.perf_counter() - start
        model = trainer.model.eval()
        torch.manual_seed(0)
        quality = sample_quality(model, args.dataset, trainer.task.data.test.images, n=args.samples, device=args.device)
        row = {"model": model_name, "settings": settings, "precision": trainer.precision, "epochs": last["epoch"],
               "train_seconds": last["train_seconds"],
               "wall_seconds": wall, **quality, "nll": None}
        if cfg.model.model not in ("ae", "gan"):
            x, y = eval_images(trainer.task.data.test, cfg.data.binarization, args.images)
            row["nll"] = estimate_nll(model, x, y, k=args.k, chunk_size=100, device=args.device,
                                      protocol=protocol_name(cfg.data.binarization)).nll
        rows.append(row)
        print(f"{model_name}: {row}")
        grids.append((model_name, image_grid(model.sample(36, label=None).cpu(), nrow=6, scale=2)))
        shutil.rmtree(run_dir, ignore_errors=True)
    figure = DOCS / f"{result}.png"
    _side_by_side(grids, figure)
    write_result(result, {"dataset": args.dataset, "minutes": args.minutes, "device": args.device, "k": args.k,
                          "images": args.images, "samples": args.samples, "figure": figure.name, "rows": rows})


def _side_by_side(grids: list[tuple[str, Image.Image]], path: Path) -> None:
    """One row of labelled sample grids."""
    w, h = grids[0][1].size
    canvas = Image.new("RGB", (len(grids) * (w + 10) + 10, h + 30), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (name, grid) in enumerate(grids):
        canvas.paste(grid.convert("RGB"), (10 + i * (w + 10), 25))
        draw.text((10 + i * (w + 10), 6), name, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


if __name__ == "__main__":
    main()
