"""Time to quality: test NLL after 2, 5 and 10 minutes of training, on this machine, for vaekit's best recipe
(or another: --recipe hvae).

    python benchmarks/time_to_quality.py [--recipe conv-vae] [--minutes 10] [--snapshots 2,5] [--k 1000] \
        [--images 2000] [--precisions fp32,bf16] [--set kl_warmup=20 --set ema=0.999]

One run of --minutes with the learning rate annealed over that budget; the weights at the first epoch end
after each snapshot time are saved (--save-dir) and evaluated after training stops, so evaluation never
eats into the training clock. Evaluation can run elsewhere: `--evaluate-only DIR --eval-device cuda`
scores saved snapshots on a GPU (a conv decoder's k=1000 NLL took ~2.5 min a snapshot on 2 Intel Xeon cores).
NLL uses k importance samples on the first N test images (k=1000 on 2,000 images by
default: the table says so), binarized once with seed 0, always in fp32. Each training precision is its own run
of --minutes (by default fp32, and bf16 too where the device multiplies bf16 in hardware), one after the other.
`--set KEY=VALUE` changes one setting of the recipe (a JSON value); the result records the recipe it ran. Under
`ema` the snapshots hold the weight average, and the last raw weights are kept beside it (final-raw.safetensors).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from common import RESULTS, add_set_option, keep_other_rows, machine, training_precisions, with_overrides, write_result
from vaekit.config import TrainConfig
from vaekit.data import load_dataset
from vaekit.evaluate import elbo_metrics, estimate_nll, eval_images, latent_statistics, protocol_name
from vaekit.models import build_model
from vaekit.runs import atomic_save_weights, load_weights
from vaekit.train import Trainer

BEST_RECIPE = {"model": "vae", "arch": "conv", "latent_dim": 32, "batch_size": 128, "lr": 2e-3,
               "binarization": "dynamic", "kl_warmup": 1.0}
RECIPES = {"conv-vae": BEST_RECIPE,  # the flat flagship; the hierarchical VAE beside it (untuned so far)
           "hvae": {"model": "hvae", "width": 32, "latent_dim": 4, "groups": [2, 2], "batch_size": 128, "lr": 1e-3,
                    "binarization": "dynamic", "kl_warmup": 1.0}}


def recipe(args: argparse.Namespace) -> dict:
    """The named recipe with the --set overrides applied."""
    return with_overrides(RECIPES[args.recipe], args.set)


def train(args: argparse.Namespace, save_dir: Path, precision: str) -> None:
    marks = sorted(float(m) for m in args.snapshots.split(",") if m)
    run_dir = tempfile.mkdtemp(prefix="vaekit-ttq-")
    shutil.rmtree(run_dir)
    cfg = TrainConfig.from_flat(run_dir=run_dir, device=args.device, epochs=1000, max_minutes=args.minutes,
                                tensorboard=False, precision=precision, **recipe(args))
    trainer = Trainer(cfg, log=print)
    taken: list[dict] = []

    def keep(t: Trainer, metrics: dict) -> None:
        minutes = metrics["train_seconds"] / 60
        if len(taken) < len(marks) and minutes >= marks[len(taken)]:
            name = f"snapshot-{len(taken)}.safetensors"
            atomic_save_weights(t.evaluated_model, save_dir / name)
            taken.append({"minutes": minutes, "epoch": metrics["epoch"], "file": name})

    last = trainer.fit(on_epoch_end=keep)
    atomic_save_weights(trainer.evaluated_model, save_dir / "final.safetensors")
    if trainer.evaluated_model is not trainer.model:  # under --set ema: the raw weights, to measure the average alone
        atomic_save_weights(trainer.model, save_dir / "final-raw.safetensors")
    taken.append({"minutes": last["train_seconds"] / 60, "epoch": last["epoch"], "file": "final.safetensors"})
    (save_dir / "snapshots.json").write_text(json.dumps({"config": cfg.to_dict(), "snapshots": taken,
                                                         "train_machine": machine()}, indent=2))
    shutil.rmtree(run_dir, ignore_errors=True)


def evaluate(args: argparse.Namespace, save_dir: Path, precision: str) -> list[dict]:
    """The snapshots of one training run scored; rows carry the precision they were trained in."""
    info = json.loads((save_dir / "snapshots.json").read_text())
    cfg = TrainConfig.from_dict(info["config"])
    model = build_model(cfg.model_config()).to(args.eval_device).eval()
    data = load_dataset(cfg.data.dataset)
    rows = []
    for i, snap in enumerate(info["snapshots"]):
        last = i == len(info["snapshots"]) - 1
        x, y = eval_images(data.test, cfg.data.binarization, args.images if last else args.snapshot_images or args.images)
        load_weights(model, save_dir / snap["file"])
        model.to(args.eval_device)
        torch.manual_seed(0)
        t0 = time.perf_counter()
        nll = estimate_nll(model, x, y, k=args.k, protocol=protocol_name(cfg.data.binarization),
                           device=args.eval_device)  # passes planned by the memory budget, as `vaekit evaluate`
        metrics = elbo_metrics(model, x, y, device=args.eval_device)
        latent = latent_statistics(model, x, y, device=args.eval_device)
        groups = {"kl_groups": [metrics[f"kl_group{g}"] for g in range(len(latent["active_units_per_group"]))],
                  "active_units_per_group": latent["active_units_per_group"], "group_dims": latent["group_dims"]} \
            if "active_units_per_group" in latent else {}
        rows.append({**snap, "precision": precision, "nll": nll.nll, "standard_error": nll.standard_error,
                     "elbo": metrics["elbo"], "kl": metrics["kl"], **groups,
                     "eval_seconds": time.perf_counter() - t0, "train_machine": info["train_machine"],
                     "budget_minutes": cfg.optim.max_minutes, "images": len(x),
                     "protocol": protocol_name(cfg.data.binarization)})
        print(f"{precision} {snap['minutes']:5.1f} min (epoch {snap['epoch']}): {nll.line()}; elbo {metrics['elbo']:.2f}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--snapshots", default="2,5")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="conv-vae",
                        help="what to train: e.g. --recipe hvae --minutes 120 --snapshots 10,30,60 "
                             "--name time-to-quality-hvae-cpu for the hierarchical VAE's curve")
    add_set_option(parser)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--snapshot-images", type=int, default=None,
                        help="test images for the snapshots before the last (default --images; fewer where time is "
                             "short: each row says how many)")
    parser.add_argument("--device", default="cpu", help="training device (the table is for 2 CPU cores)")
    parser.add_argument("--eval-device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--save-dir", default=str(RESULTS / "ttq-snapshots"))
    parser.add_argument("--train-only", action="store_true", help="save snapshots, evaluate later")
    parser.add_argument("--evaluate-only", action="store_true", help="score the snapshots in --save-dir")
    parser.add_argument("--name", default="time-to-quality-cpu")
    parser.add_argument("--precisions", default=None,
                        help="training precisions, one run each (default: fp32, and bf16 where the training device "
                             "multiplies it in hardware)")
    args = parser.parse_args()
    precisions = training_precisions(args.device, args.precisions)
    for precision in precisions:
        (Path(args.save_dir) / precision).mkdir(parents=True, exist_ok=True)
        if not args.evaluate_only:
            train(args, Path(args.save_dir) / precision, precision)
    if args.train_only:
        return
    rows = [row for p in precisions for row in evaluate(args, Path(args.save_dir) / p, p)]
    rows = keep_other_rows(args.name, rows, key=lambda r: r["precision"], same_cpu=True)  # a rerun keeps other precisions
    write_result(args.name, {"recipe": recipe(args), "recipe_name": args.recipe, "overrides": args.set,
                             "train_machine": rows[0]["train_machine"],
                             "eval_device": args.eval_device, "k": args.k, "images": rows[-1]["images"],
                             "budget_minutes": rows[0]["budget_minutes"], "protocol": rows[0]["protocol"],
                             "rows": rows})


if __name__ == "__main__":
    main()
