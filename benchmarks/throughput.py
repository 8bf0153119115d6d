"""Training throughput (images/s) through the real Trainer, against the machine's measured GEMM rate.

    python benchmarks/throughput.py [--device cpu|cuda] [--train-size N] [--precisions fp32,bf16]

The MLP row is the exact configuration of pytorch/examples' `vae` (784-400-20, ReLU, batch 128, Adam 1e-3,
grey levels as Bernoulli targets); the same run from the command line is:
    vaekit train --arch mlp --hidden 400 --latent-dim 20 --binarization none --likelihood bernoulli \
        --batch-size 128 --lr 1e-3 --weight-decay 0 --schedule constant --grad-clip 0
(the likelihood is named: grey levels otherwise default to the discretized logistic, a heavier step).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import statistics
import tempfile

import torch
import torch.nn.functional as F

from common import (
    RESULTS,
    keep_other_rows,
    linear_gemm_rate,
    timed,
    training_flops_per_image,
    training_precisions,
    write_result,
)
from vaekit import kernels
from vaekit.config import TrainConfig
from vaekit.optim import FusedAdamW
from vaekit.train import Trainer

RECIPES = {
    "mlp": {"arch": "mlp", "hidden": [400], "latent_dim": 20, "binarization": "none", "likelihood": "bernoulli",
            "weight_decay": 0.0, "schedule": "constant", "grad_clip": 0.0, "batch_size": 128, "lr": 1e-3},
    "conv": {"arch": "conv", "latent_dim": 16, "batch_size": 128},
    "resnet": {"arch": "resnet", "latent_dim": 32, "batch_size": 128},
    "hvae": {"model": "hvae", "width": 32, "latent_dim": 4, "groups": [2, 2], "batch_size": 128},  # time_to_quality's
}


def square_gemm_rate(device: str, n: int = 1024, rounds: int = 5, backend: str = "best",
                     dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of one large square matrix product (fp32 unless `dtype`): the machine's matrix-multiply ceiling.

    The best of `rounds` medians: on a shared machine interference only ever slows a measurement down, so the
    fastest round is the closest to the ceiling (one median alone read 262 GFLOP/s where the ceiling is ~330).
    `backend` "blas" times `a @ b` (MKL on a CPU), "onednn" oneDNN's matmul (CPU only; on the AMD EPYC it ran at
    twice MKL's rate), "best" the faster of the two: the ceiling is what the fastest kernel at hand reaches.
    A bf16 `a @ b` on a CPU is oneDNN's already (AMX where the CPU has it), so bf16 takes that alone.
    """
    if backend == "best":
        rates = [square_gemm_rate(device, n, rounds, "blas", dtype)]
        if device == "cpu" and dtype == torch.float32 and kernels.onednn_linear_available():
            rates.append(square_gemm_rate(device, n, rounds, "onednn"))
        return max(rates)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    def product() -> torch.Tensor:  # a @ b.T by oneDNN (under no_grad, which kernels.linear needs), or a @ b
        return kernels.linear(a, b) if backend == "onednn" else a @ b

    with torch.no_grad():
        return max(2 * n**3 / timed(product, repeat=20, sync=device == "cuda") for _ in range(rounds))


def eager_floor_seconds(model: torch.nn.Module, x: torch.Tensor, lr: float) -> float:
    """Seconds of the MLP VAE's training step written by hand in the fewest eager ops (the best of five medians of 200
    steps: interference only slows a round down): the same four Linear
    layers (copies), F.linear and ReLU, the closed-form KL, BCE-with-logits and the fused AdamW.

    What eager PyTorch alone leaves of a step beyond its GEMMs (autograd, elementwise kernels, the optimizer), so
    the batch-GEMM share the real step could reach without a compiler or hand-written kernels.
    """
    layers = [copy.deepcopy(m) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    enc_in, enc_out, dec_in, dec_out = layers
    opt = FusedAdamW([p for m in layers for p in m.parameters()], lr=lr, weight_decay=0.0)
    x = x.flatten(1)

    def step() -> None:
        mu, logvar = enc_out(F.relu(enc_in(x))).chunk(2, dim=-1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = dec_out(F.relu(dec_in(z)))
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu * mu - logvar.exp())
        loss = (nll + kl) / len(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return min(timed(step, 200) for _ in range(5))


def measure(name: str, device: str, train_size: int, epochs: int, precision: str = "fp32") -> dict[str, object]:
    run_dir = tempfile.mkdtemp(prefix=f"vaekit-bench-{name}-")
    shutil.rmtree(run_dir)
    cfg = TrainConfig.from_flat(run_dir=run_dir, device=device, train_size=train_size, eval_size=200, epochs=epochs,
                                tensorboard=False, precision=precision, **RECIPES[name])
    trainer = Trainer(cfg, log=lambda _m: None)
    rates = []
    trainer.fit(on_epoch_end=lambda _t, m: rates.append(m["images_per_s"]))
    shutil.rmtree(run_dir, ignore_errors=True)
    x = trainer.train_images[: cfg.optim.batch_size].clone()
    with torch.autocast(trainer.device.type, dtype=torch.bfloat16, enabled=trainer.precision == "bf16"):
        flops = training_flops_per_image(trainer.model, x)
    rate = statistics.median(rates[1:]) if len(rates) > 1 else rates[0]
    row: dict[str, object] = {"recipe": name, "settings": RECIPES[name], "precision": trainer.precision,
                              "images_per_s": rate,
                              "epoch_rates": rates, "train_flops_per_image": flops,
                              "achieved_flops_per_s": rate * flops, "parameters": sum(
                                  p.numel() for p in trainer.model.parameters())}
    if name == "mlp" and precision == "fp32":  # the layer-GEMM and eager-floor comparisons are fp32's
        gemm = linear_gemm_rate(trainer.model, cfg.optim.batch_size, device=device)
        row.update(gemm)
        row["fraction_of_batch_gemm_rate"] = rate * flops / gemm["gemm_flops_per_s"]
        floor = eager_floor_seconds(trainer.model, x, cfg.optim.lr)
        row["eager_floor_step_seconds"] = floor
        row["eager_floor_fraction_of_batch_gemm_rate"] = cfg.optim.batch_size * flops / floor / gemm["gemm_flops_per_s"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--train-size", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--recipes", default="mlp,conv,resnet,hvae")
    parser.add_argument("--precisions", default=None,
                        help="comma-separated fp32,bf16 (default: both where the device multiplies bf16 in "
                             "hardware, else fp32)")
    args = parser.parse_args()
    precisions = training_precisions(args.device, args.precisions)
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    peaks = {p: square_gemm_rate(args.device, dtype=dtypes[p]) for p in precisions}
    rows = []
    for name in args.recipes.split(","):
        for precision in precisions:
            row = measure(name, args.device, args.train_size, args.epochs, precision)
            row["fraction_of_square_gemm_rate"] = row["achieved_flops_per_s"] / peaks[precision]
            print(f"{name} {precision}: {row['images_per_s']:,.0f} img/s, "
                  f"{row['achieved_flops_per_s'] / 1e9:.1f} GFLOP/s")
            rows.append(row)
    name = f"throughput-{args.device}"
    rows = keep_other_rows(name, rows, key=lambda r: (r["recipe"], r["precision"]), same_cpu=True)  # a rerun of one
    for kept in {r["precision"] for r in rows} - set(peaks):  # precision keeps the other's rows, and their ceiling
        peaks[kept] = json.loads((RESULTS / f"{name}.json").read_text())["square_gemm_flops_per_s_by_precision"][kept]
    write_result(name, {"square_gemm_flops_per_s": peaks.get("fp32"),
                        "square_gemm_flops_per_s_by_precision": peaks,
                        "device": args.device, "train_size": args.train_size, "rows": rows})


if __name__ == "__main__":
    main()
