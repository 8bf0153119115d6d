"""Quality ceiling and evaluation speed: a recipe trained long, then test NLL with k=5000 on all 10,000
test images, timed against the FLOP-bound time of that evaluation.

    python benchmarks/quality_ceiling.py [--minutes 6] [--device cuda] [--recipe resnet-iwae]

The FLOP-bound time is (decoder + prior/posterior FLOPs per sample) x k x images / the device's measured
dense matrix-multiply rate (fp32, TF32 allowed on CUDA as PyTorch does for convolutions by default).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import torch

from common import forward_flops_per_image, timed, write_result
from vaekit.config import TrainConfig
from vaekit.evaluate import elbo_metrics, estimate_nll, eval_images, latent_statistics, protocol_name
from vaekit.train import Trainer

RECIPES = {
    "resnet-iwae": {"model": "iwae", "arch": "resnet", "width": 64, "latent_dim": 32, "k": 4, "batch_size": 128,
                    "lr": 1e-3, "kl_warmup": 0.0, "binarization": "dynamic"},
    "resnet-vae": {"model": "vae", "arch": "resnet", "width": 64, "latent_dim": 32, "batch_size": 128,
                   "lr": 1e-3, "kl_warmup": 2.0, "binarization": "dynamic"},
    "conv-vae": {"model": "vae", "arch": "conv", "latent_dim": 32, "batch_size": 128, "lr": 2e-3,
                 "kl_warmup": 1.0, "binarization": "dynamic"},
}


def matmul_rate(device: str, n: int = 4096) -> float:
    """Dense matmul FLOP/s; on CUDA with TF32 allowed, the precision cuDNN convolutions use by default."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = device == "cuda" and torch.backends.cudnn.allow_tf32
    try:
        return 2 * n**3 / timed(lambda: a @ b, repeat=10, sync=device == "cuda")
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="resnet-iwae", choices=sorted(RECIPES))
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--images", type=int, default=None, help="test images (default all 10,000)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--chunk-size", type=int, default=1000)
    args = parser.parse_args()
    run_dir = tempfile.mkdtemp(prefix="vaekit-ceiling-")
    shutil.rmtree(run_dir)
    cfg = TrainConfig.from_flat(run_dir=run_dir, device=args.device, epochs=args.epochs, max_minutes=args.minutes,
                      tensorboard=False, **RECIPES[args.recipe])
    trainer = Trainer(cfg, log=print)
    last = trainer.fit()
    model = trainer.model.eval()
    x, y = eval_images(trainer.data.test, cfg.data.binarization, args.images)
    z = torch.randn(args.chunk_size, cfg.model.latent_dim, device=args.device)
    per_sample = forward_flops_per_image(lambda: model.likelihood(z).log_prob(x[:1].to(args.device)), args.chunk_size)
    rate = matmul_rate(args.device)
    torch.manual_seed(0)
    if args.device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    nll = estimate_nll(model, x, y, k=args.k, batch_size=args.batch_size, chunk_size=args.chunk_size,
                       protocol=protocol_name(cfg.data.binarization), device=args.device)
    if args.device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    bound = per_sample * args.k * len(x) / rate
    elbo = elbo_metrics(model, x, y, device=args.device)
    active = latent_statistics(model, x, y, device=args.device)["active_units"]
    print(nll.line())
    print(f"evaluation {seconds:.1f}s, FLOP-bound {bound:.1f}s ({bound / seconds:.0%} of bound)")
    write_result(f"quality-ceiling-{args.device}", {
        "recipe": args.recipe, "settings": RECIPES[args.recipe], "train_minutes": last["train_seconds"] / 60,
        "epochs": last["epoch"], "images_per_s": last["images_per_s"], "nll": nll.to_dict(), "test_elbo": elbo,
        "active_units": active, "eval_seconds": seconds, "eval_flops_per_sample": per_sample,
        "matmul_flops_per_s": rate, "matmul_tf32": args.device == "cuda" and torch.backends.cudnn.allow_tf32,
        "eval_flop_bound_seconds": bound, "device": args.device, "k": args.k, "images": len(x)})


if __name__ == "__main__":
    main()
