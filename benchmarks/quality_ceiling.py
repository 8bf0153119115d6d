"""Quality ceiling and evaluation speed: a recipe trained long, then test NLL with k=5000 on all 10,000
test images, timed against the FLOP-bound time of that evaluation.

    python benchmarks/quality_ceiling.py [--minutes 6] [--device cuda] [--recipe resnet-iwae] [--set KEY=VALUE]

`--recipe hvae-long` is the hierarchical VAE's long GPU recipe (not yet run: no GPU was lent so far); `--set`
changes one setting of a recipe, and the result records the settings it ran.

The FLOP-bound time is (decoder + prior/posterior FLOPs per sample) x k x images / the device's measured
dense matrix-multiply rate (fp32, TF32 allowed on CUDA as PyTorch does for convolutions by default). Where the
device multiplies bf16 in hardware (`vaekit.kernels.native_bf16`: sm80+ GPUs, CPUs with AMX or AVX-512 BF16) the same
evaluation runs again with `precision="bf16"` (the decoder's products in bf16, every density and the logsumexp in fp32) on
the same z, timed against the bf16 matmul rate, and its NLL minus the fp32 one is reported as its bias.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import torch

from common import add_set_option, forward_flops_per_image, timed, with_overrides, write_result
from vaekit.config import TrainConfig
from vaekit.evaluate import NLLResult, elbo_metrics, estimate_nll, eval_images, latent_statistics, protocol_name
from vaekit.kernels import native_bf16
from vaekit.train import Trainer

RECIPES = {
    "resnet-iwae": {"model": "iwae", "arch": "resnet", "width": 64, "latent_dim": 32, "k": 4, "batch_size": 128,
                    "lr": 1e-3, "kl_warmup": 0.0, "binarization": "dynamic"},
    "resnet-vae": {"model": "vae", "arch": "resnet", "width": 64, "latent_dim": 32, "batch_size": 128,
                   "lr": 1e-3, "kl_warmup": 2.0, "binarization": "dynamic"},
    "conv-vae": {"model": "vae", "arch": "conv", "latent_dim": 32, "batch_size": 128, "lr": 2e-3,
                 "kl_warmup": 1.0, "binarization": "dynamic"},
    # the top-down hierarchical VAE, untuned: width 64 at lr 2e-3 diverged in its first steps (a prior scale near
    # its floor); these settings train, a starting point for the GPU runs of the hierarchical-VAE work
    "hvae": {"model": "hvae", "width": 32, "latent_dim": 4, "groups": [2, 2], "batch_size": 128, "lr": 1e-3,
             "kl_warmup": 1.0, "binarization": "dynamic"},
    # the long GPU recipe aiming at NVAE's neighbourhood: wider cells, more groups, all 60,000 training images, a KL
    # warm-up over the first epochs with the groups balanced, the weight average evaluated; run with --minutes 60
    "hvae-long": {"model": "hvae", "width": 64, "latent_dim": 4, "groups": [4, 4], "batch_size": 128, "lr": 1e-3,
                  "kl_warmup": 20.0, "kl_balance": True, "ema": 0.999, "train_on_valid": True,
                  "binarization": "dynamic"},
}


def matmul_rate(device: str, n: int = 4096, dtype: torch.dtype = torch.float32) -> float:
    """Dense matmul FLOP/s; in fp32 on CUDA with TF32 allowed, the precision cuDNN convolutions use by default."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
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
    add_set_option(parser)
    args = parser.parse_args()
    settings = with_overrides(RECIPES[args.recipe], args.set)
    run_dir = tempfile.mkdtemp(prefix="vaekit-ceiling-")
    shutil.rmtree(run_dir)
    cfg = TrainConfig.from_flat(run_dir=run_dir, device=args.device, epochs=args.epochs, max_minutes=args.minutes,
                      tensorboard=False, **settings)
    trainer = Trainer(cfg, log=print)
    last = trainer.fit()
    model = trainer.evaluated_model.eval()  # the weight average where the recipe keeps one
    x, y = eval_images(trainer.task.data.test, cfg.data.binarization, args.images)
    z = torch.randn(args.chunk_size, cfg.model.latent_dim, device=args.device)
    per_sample = forward_flops_per_image(lambda: model.likelihood(z).log_prob(x[:1].to(args.device)), args.chunk_size)
    rate = matmul_rate(args.device)

    def timed_nll(precision: str) -> tuple[NLLResult, float]:
        """The NLL and its seconds; the same seed and passes for every precision, so the same z."""
        torch.manual_seed(0)
        if args.device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        result = estimate_nll(model, x, y, k=args.k, batch_size=args.batch_size, chunk_size=args.chunk_size,
                              protocol=protocol_name(cfg.data.binarization), device=args.device, precision=precision)
        if args.device == "cuda":
            torch.cuda.synchronize()
        return result, time.perf_counter() - t0

    nll, seconds = timed_nll("fp32")
    bound = per_sample * args.k * len(x) / rate
    bf16: dict[str, object] | None = None
    if native_bf16(torch.device(args.device)):
        half, half_seconds = timed_nll("bf16")
        half_rate = matmul_rate(args.device, dtype=torch.bfloat16)
        bf16 = {"nll": half.to_dict(), "eval_seconds": half_seconds, "matmul_flops_per_s": half_rate,
                "eval_flop_bound_seconds": per_sample * args.k * len(x) / half_rate, "bias_nats": half.nll - nll.nll}
        print(f"bf16: {half.line()}; {half_seconds:.1f}s, bias {half.nll - nll.nll:+.4f} nats")
    elbo = elbo_metrics(model, x, y, device=args.device)
    active = latent_statistics(model, x, y, device=args.device)["active_units"]
    print(nll.line())
    print(f"evaluation {seconds:.1f}s, FLOP-bound {bound:.1f}s ({bound / seconds:.0%} of bound)")
    write_result(f"quality-ceiling-{args.device}", {
        "recipe": args.recipe, "settings": settings, "train_minutes": last["train_seconds"] / 60,
        "epochs": last["epoch"], "images_per_s": last["images_per_s"], "nll": nll.to_dict(), "test_elbo": elbo,
        "active_units": active, "eval_seconds": seconds, "eval_flops_per_sample": per_sample,
        "matmul_flops_per_s": rate, "matmul_tf32": args.device == "cuda" and torch.backends.cudnn.allow_tf32,
        "eval_flop_bound_seconds": bound, "device": args.device, "k": args.k, "images": len(x),
        "training_precision": trainer.precision, "bf16_eval": bf16})


if __name__ == "__main__":
    main()
