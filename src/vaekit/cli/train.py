"""`vaekit train` and `vaekit demo`: the options in groups, each a few lines over vaekit.train.Trainer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vaekit.cli.options import HelpFormatter, count, int_list, positive_number

__all__ = ["TRAIN_HELP", "GROUPS", "add_train_commands", "preload_embedded_mnist", "cmd_train", "cmd_demo", "run_title"]

# option -> (group, help). Flags and TOML keys are these names; the defaults come from TrainConfig.
TRAIN_HELP = {
    "dataset": ("data", "mnist (embedded), fashion-mnist, or folder (with --data-dir)"),
    "data_dir": ("data", "folder with IDX files (MNIST/Fashion-MNIST) or images (folder); also $VAEKIT_DATA"),
    "image_size": ("data", "side of the square images for --dataset folder"),
    "channels": ("data", "1 (grey) or 3 (RGB) for --dataset folder"),
    "binarization": ("data", "dynamic (fresh draw each epoch), static (one draw), none (grey levels); default: "
                             "dynamic for MNIST, none for Fashion-MNIST, folders and the GAN"),
    "train_size": ("data", "train on the first N training images only (quick runs)"),
    "eval_size": ("data", "evaluate each epoch on the first N validation images (default all)"),
    "train_on_valid": ("data", "train on the validation images too, as IWAE and NVAE train on all 60,000 MNIST "
                               "training images; validation figures are then not held out (the test set stays so)"),
    "model": ("model", "ae, vae (beta-VAE with --beta), iwae (trains on iwae_bound with --k), cvae, gan (DCGAN), "
                       "hvae (top-down hierarchical VAE: --groups, --width, --latent-dim channels a group)"),
    "arch": ("model", "mlp, conv (two stride-2 convs), resnet (deeper residual conv net)"),
    "latent_dim": ("model", "dimensions of z"),
    "hidden": ("model", "MLP layer widths, comma-separated, e.g. 400 or 512,256"),
    "width": ("model", "channels of the resnet arch, and of the hvae's residual cells"),
    "groups": ("model", "hvae: latent groups at each resolution, coarsest first: 2,2 puts two at 1/4 of the image's side "
                        "and two at 1/2; 1,2,2 adds one at 1/8 (sides divisible by 8)"),
    "prior": ("model", "standard (N(0, I)) or vamp (the VampPrior: a mixture of the encoder's posteriors at learned "
                       "pseudo-inputs; vae, iwae, and the top group of an hvae, with the Monte Carlo KL)"),
    "pseudo_inputs": ("model", "the VampPrior's number of pseudo-inputs"),
    "norm": ("model", "conv arch: none or batch (batch norm after each hidden convolution); default: none for MNIST, "
                      "batch for grey levels and colour"),
    "conditioning": ("model", "cvae: input (label to encoder and decoder), prior (learned class means, Su's) "
                              "or both (label to encoder, decoder and prior)"),
    "conditional": ("model", "gan: condition generator and discriminator on the label (a conditional GAN)"),
    "likelihood": ("objective", "bernoulli (binary pixels), discretized_logistic (8-bit levels), gaussian, "
                                "continuous_bernoulli; default: bernoulli for binarized data, discretized_logistic "
                                "with a learned scale otherwise"),
    "gaussian_scale": ("objective", "scale of the gaussian or discretized_logistic likelihood (its start when "
                                    "learned)"),
    "learn_scale": ("objective", "learn the likelihood's scale (see --scale-per); on by default for "
                                 "discretized_logistic"),
    "scale_per": ("objective", "what one learned scale covers: image (one scalar), channel, pixel; default: pixel "
                               "for discretized_logistic, image otherwise"),
    "beta": ("objective", "KL weight; > 1 makes a beta-VAE (default 1; 3 for a cvae with --conditioning input)"),
    "kl": ("objective", "analytic (closed form) or mc (Monte Carlo on the sample)"),
    "k": ("objective", "importance samples for --model iwae"),
    "kl_warmup": ("objective", "epochs over which the KL weight ramps from 0 to --beta"),
    "kl_balance": ("objective", "hvae: during the KL warm-up, charge each group's KL in proportion to what it carries "
                                "for its size (NVAE's KL balancing), so no group is pushed onto its prior early"),
    "epochs": ("optimisation", "passes over the training set"),
    "batch_size": ("optimisation", "global batch size (split over processes under torchrun)"),
    "lr": ("optimisation", "AdamW learning rate (default 1e-3; 2e-4 for gan)"),
    "weight_decay": ("optimisation", "AdamW weight decay (0 gives Adam)"),
    "grad_clip": ("optimisation", "clip the gradient norm at this value (0: off)"),
    "grad_skip": ("optimisation", "skip a step whose gradient norm (before clipping) exceeds this, as VDVAE does "
                                  "against rare outlier batches (0: off); each epoch logs how many were skipped"),
    "ema": ("optimisation", "decay of a moving average of the weights, which validation scores and model.safetensors "
                            "holds (e.g. 0.999; 0: off, the raw weights)"),
    "schedule": ("optimisation", "learning-rate schedule: cosine or constant"),
    "max_minutes": ("optimisation", "stop after this many minutes of training, saving the model"),
    "run_dir": ("run", "where the run is written (config.json, model.safetensors, metrics.jsonl, figures/)"),
    "seed": ("run", "seed for shuffling, binarization and initialisation"),
    "device": ("run", "auto (CUDA, then MPS, then CPU), cpu, cuda, mps"),
    "precision": ("run", "of a training step's products: bf16 (bfloat16 autocast; losses and densities stay fp32), "
                         "fp32, or auto: bf16 where the device multiplies it in hardware (a GPU from Ampere on, a CPU "
                         "with AMX or AVX-512 BF16), fp32 elsewhere"),
    "tensorboard": ("run", "also write TensorBoard logs to RUN/tensorboard (if tensorboard is installed)"),
    "mlflow": ("run", "also log parameters and per-epoch metrics to MLflow (if mlflow is installed)"),
    "keep_checkpoints": ("run", "how many epoch checkpoints to keep"),
}
GROUPS = {"data": "data", "model": "model", "objective": "objective (what is optimised)",
          "optimisation": "optimisation", "run": "run (where, how, resume)"}
TRAIN_EXAMPLES = """examples:
  vaekit train --model vae --arch conv --latent-dim 16 --epochs 20 --run-dir runs/vae
  vaekit train --model cvae --run-dir runs/cvae                          then: vaekit sample runs/cvae --label 3
  vaekit train --dataset fashion-mnist --run-dir runs/fashion            (grey levels: a discretized logistic)
  vaekit train --dataset folder --data-dir photos --image-size 32 --channels 3 --run-dir runs/photos
  vaekit train --config vae.toml --run-dir runs/vae16                    (TOML keys are these option names)
  vaekit train --resume --run-dir runs/vae --epochs 30                   (continue, or extend a finished run)

Every option can come from the TOML file of --config; flags given on the command line win."""


def _default_text(default: Any) -> str:
    if default is None:
        return ""
    if isinstance(default, list):
        default = ",".join(map(str, default))
    return f" (default: {default})" if not isinstance(default, bool) else f" (default: {'on' if default else 'off'})"


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """Every image-run setting as a flag, in groups, with its default shown (flags are the flat setting keys)."""
    from vaekit.config import FLAT_KEYS, flat_fields

    groups = {key: parser.add_argument_group(title) for key, title in GROUPS.items()}
    groups["run"].add_argument("--config", help="TOML file whose keys are these options; flags given here win")
    groups["run"].add_argument("--resume", action="store_true",
                               help="continue the run in --run-dir from its last checkpoint; with a larger --epochs, "
                                    "extend a finished run (its learning rate restarts a shorter cosine)")
    groups["data"].add_argument("--download", action="store_true",
                                help="fashion-mnist: fetch the four IDX files into --data-dir when they are missing "
                                     "(sizes and MD5 checked)")
    defaults = flat_fields()
    for name, (group, text) in TRAIN_HELP.items():
        flag = "--" + name.replace("_", "-")
        kind = FLAT_KEYS[name][1]
        help_text = text + ("" if "default" in text else _default_text(defaults[name][1]))
        if kind.startswith("bool"):
            groups[group].add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            continue
        convert = int_list if "list" in kind else int if "int" in kind else float if "float" in kind else str
        groups[group].add_argument(flag, type=convert, default=None, help=help_text)


def train_config(args: argparse.Namespace) -> Any:
    """Defaults, then the config file, then the flags given on the command line."""
    from vaekit.config import TrainConfig, load_config_file

    values = load_config_file(args.config) if args.config else {}
    values.update({k: v for k, v in vars(args).items() if k in TRAIN_HELP and v is not None})
    return TrainConfig.from_dict(values, source=args.config or "command line")


def run_title(run_dir: str | Path, epoch: int | None = None) -> str:
    """'NAME, epoch N': the caption every figure of a run starts with."""
    from vaekit.runs import latest_checkpoint

    if epoch is None:
        try:
            ckpt = latest_checkpoint(Path(run_dir))
        except (OSError, ValueError):
            ckpt = None
        epoch = int(ckpt.name.split("-")[1]) if ckpt is not None else None
    name = Path(run_dir).resolve().name
    return f"{name}, epoch {epoch}" if epoch is not None else name


def preload_embedded_mnist(argv: list[str]) -> None:
    """Inflate the embedded MNIST in the background while torch imports, when the command will read it: `train`
    or `demo` whose line names no other data (no --config or --data-dir, no --dataset but mnist), or `train
    --resume` whose run's config.json says embedded MNIST. Called before the parser, which imports torch; a wrong
    guess only wastes the thread. `evaluate` streams the file instead: the whole inflated pickle in memory at once
    would raise its peak by about 240 MB, which matters more there than half a second."""
    import os

    from vaekit.preload import start_embedded_mnist

    if not argv or argv[0] not in ("train", "demo") or os.environ.get("VAEKIT_DATA"):
        return
    resume, run_dir = False, "runs/vae"
    for i, arg in enumerate(argv[1:], start=1):
        flag, has_value, value = arg.partition("=")
        if len(flag) < 3 or not flag.startswith("--"):
            continue
        if not has_value:
            value = argv[i + 1] if i + 1 < len(argv) else ""
        if "--resume".startswith(flag):  # abbreviations too
            resume = True
        elif "--run-dir".startswith(flag):
            run_dir = value
        elif any(name.startswith(flag) for name in ("--config", "--data-dir")) or (
                "--dataset".startswith(flag) and value != "mnist"):  # other data than the embedded MNIST
            return
    if not resume or _run_reads_embedded_mnist(run_dir):
        start_embedded_mnist()


def _run_reads_embedded_mnist(run_dir: str) -> bool:
    """Whether a run directory's config.json names the embedded MNIST (an image run, no data folder)."""
    import json

    try:
        config = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))
        data = config.get("data") or {}
        return config.get("task") == "images" and data.get("dataset") == "mnist" and not data.get("data_dir")
    except (OSError, ValueError, AttributeError):
        return False


def cmd_train(args: argparse.Namespace) -> None:
    from vaekit.train import Trainer, resume_config

    if args.resume:
        given = {k: v for k, v in vars(args).items() if k in TRAIN_HELP and v is not None and k != "run_dir"}
        config = resume_config(args.run_dir or "runs/vae", given)
    else:
        config = train_config(args)
    if args.download:
        from vaekit.data.download import download_fashion_mnist

        if config.data.dataset != "fashion-mnist" or config.data.data_dir is None:
            raise ValueError("--download fetches Fashion-MNIST: use it with --dataset fashion-mnist --data-dir DIR")
        download_fashion_mnist(config.data.data_dir)
    trainer = Trainer(config, resume=args.resume)
    trainer.fit()
    if not trainer.dist.is_main:
        _leave_rank()
    if trainer.dist.is_main:
        from vaekit.plots import save_reconstructions, save_samples

        figures = Path(config.run.run_dir) / "figures"
        x, y = trainer.valid_images[:32], trainer.valid_labels[:32]
        model = trainer.evaluated_model.eval()  # what model.safetensors holds
        title = run_title(config.run.run_dir, trainer.epoch)
        print(save_samples(model, figures / "samples.png", 64, label=0 if config.uses_labels else None,
                           title=title, class_names=config.class_names))
        if config.model.model != "gan":
            print(save_reconstructions(model, x, y, figures / "reconstructions.png", title=title))


def _leave_rank() -> None:
    """End a torchrun rank other than 0 once its run has finished (checkpoints written, the process group left):
    its output flushed, then out without the interpreter's teardown, in which torch's C++ threads of that launch
    still abort a rank now and then ("terminate called without an active exception", SIGABRT) after all its work
    was done, failing a run that had succeeded."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def cmd_demo(args: argparse.Namespace) -> None:
    from vaekit.config import TrainConfig
    from vaekit.evaluate import elbo_metrics, eval_images, protocol_name
    from vaekit.plots import save_manifold, save_reconstructions, save_samples
    from vaekit.train import Trainer

    base = Path(args.run_dir)
    run_dir, i = base, 1
    while (run_dir / "config.json").exists():
        i += 1
        run_dir = base.with_name(f"{base.name}-{i}")
    print(f"training the flagship: conv VAE, Bernoulli likelihood, dynamic binarization, MNIST, "
          f"{args.minutes:g} minutes -> {run_dir}")
    config = TrainConfig.from_flat("demo", run_dir=str(run_dir), model="vae", arch="conv", latent_dim=16,
                                   epochs=args.epochs, max_minutes=args.minutes, device=args.device)
    trainer = Trainer(config)
    trainer.fit()
    model = trainer.model.eval()
    figures = run_dir / "figures"
    title = run_title(run_dir, trainer.epoch)
    print(save_samples(model, figures / "samples.png", 64, title=title))
    print(save_reconstructions(model, trainer.valid_images[:32], trainer.valid_labels[:32],
                               figures / "reconstructions.png", title=title))
    x, y = eval_images(trainer.task.data.test, config.data.binarization)
    print(save_manifold(model, figures / "manifold.png", images=x[:2000], labels=y[:2000], title=title)[0])
    m = elbo_metrics(model, x, y, device=trainer.device)
    print(f"test elbo: {m['elbo']:.2f} nats (log-likelihood {m['log_likelihood']:.2f}, kl {m['kl']:.2f}; "
          f"{len(x)} test images, {protocol_name(config.data.binarization)})")
    print(f"next: vaekit evaluate {run_dir} --k 1000 --limit 1000   (test NLL by importance sampling)")
    print(f"      vaekit serve {run_dir}                          (explore it in the browser)")


def add_train_commands(sub: Any) -> None:
    """The `train` and `demo` subcommands."""
    p = sub.add_parser("train", help="train a model", description="Train a model of the VAE family.",
                       epilog=TRAIN_EXAMPLES, formatter_class=HelpFormatter)
    add_train_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("demo", help="train the flagship conv VAE on MNIST for a few minutes and draw it",
                       description="What `make demo` runs: the flagship conv VAE on MNIST, its figures and test ELBO.",
                       epilog="example: vaekit demo --minutes 2 --run-dir runs/quick", formatter_class=HelpFormatter)
    p.add_argument("--run-dir", default="runs/demo", help="where the run goes (a new -2, -3... if it exists)")
    p.add_argument("--minutes", type=positive_number, default=4.0, help="training time budget")
    p.add_argument("--epochs", type=count(1), default=30, help="at most this many epochs")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.set_defaults(func=cmd_demo)
