"""The `vaekit` command. Each subcommand is a few lines over the library; bad input exits 2 with one sentence."""

from __future__ import annotations

import argparse
import errno
import json
import math
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from vaekit import __version__

TRAIN_HELP = {
    "run_dir": "where the run is written (config.json, model.safetensors, metrics.jsonl, figures/)",
    "dataset": "mnist (embedded), fashion-mnist, or folder (with --data-dir)",
    "data_dir": "folder with IDX files (MNIST/Fashion-MNIST) or images (folder); also $VAEKIT_DATA",
    "image_size": "side of the square images for --dataset folder",
    "channels": "1 (grey) or 3 (RGB) for --dataset folder",
    "binarization": "dynamic (fresh draw each epoch), static (one draw), none (grey levels)",
    "train_size": "train on the first N training images only (quick runs)",
    "eval_size": "evaluate each epoch on the first N validation images (default all)",
    "model": "ae, vae (beta-VAE with --beta), iwae (trains on iwae_bound with --k), cvae, gan (DCGAN baseline)",
    "arch": "mlp, conv (two stride-2 convs), resnet (deeper residual conv net)",
    "latent_dim": "dimensions of z",
    "hidden": "MLP layer widths, comma-separated, e.g. 400 or 512,256",
    "width": "channels of the resnet arch",
    "likelihood": "bernoulli (binary pixels), gaussian (squared error), continuous_bernoulli",
    "gaussian_scale": "standard deviation of the gaussian likelihood (its starting value with --learn-scale)",
    "learn_scale": "learn the gaussian likelihood's scale (one scalar)",
    "conditioning": "cvae: input (label to encoder and decoder) or prior (learned class means, Su's scheme)",
    "conditional": "gan: condition generator and discriminator on the label (a conditional GAN)",
    "beta": "KL weight; > 1 makes a beta-VAE",
    "kl": "analytic (closed form) or mc (Monte Carlo on the sample)",
    "k": "importance samples for --model iwae",
    "epochs": "passes over the training set",
    "batch_size": "global batch size (split over processes under torchrun)",
    "lr": "AdamW learning rate (default 1e-3; 2e-4 for gan)",
    "weight_decay": "AdamW weight decay (0 gives Adam)",
    "grad_clip": "clip the gradient norm at this value (0: off)",
    "schedule": "learning-rate schedule: cosine or constant",
    "kl_warmup": "epochs over which the KL weight ramps from 0 to --beta",
    "max_minutes": "stop after this many minutes of training, saving the model",
    "seed": "seed for shuffling, binarization and initialisation",
    "device": "auto (CUDA, then MPS, then CPU), cpu, cuda, mps",
    "tensorboard": "also write TensorBoard logs (if tensorboard is installed)",
    "keep_checkpoints": "how many epoch checkpoints to keep",
}


def count(low: int, high: int | None = None, zero: bool = False) -> Any:
    """An argparse type: an integer in [low, high] (or 0 when `zero`), refused with one sentence otherwise."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if (zero and value == 0) or (value >= low and (high is None or value <= high)):
            return value
        span = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise argparse.ArgumentTypeError(f"must be {span}{' (or 0)' if zero else ''}, got {value}")
    return parse


def temperature(text: str) -> float:
    """An argparse type: a finite sampling temperature >= 0 (0 decodes by argmax)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0 (0 decodes by argmax), got {text}")
    return value


def memory_size(text: str) -> int:
    """An argparse type: a size such as 512MB or 2GB."""
    from vaekit.memory import parse_memory

    try:
        return parse_memory(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def probability(text: str) -> float:
    """An argparse type: a number in (0, 1]."""
    value = temperature(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def positive_number(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = temperature(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 512,256, got {text!r}") from None


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    from vaekit.config import TrainConfig

    parser.add_argument("--config", help="TOML file whose keys are these options; flags given here win")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    for f in fields(TrainConfig):
        if f.name not in TRAIN_HELP:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = str(f.type)
        if kind == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=TRAIN_HELP[f.name])
            continue
        convert = _int_list if "list" in kind else int if "int" in kind else float if "float" in kind else str
        parser.add_argument(flag, type=convert, default=None, help=TRAIN_HELP[f.name])


def _train_config(args: argparse.Namespace) -> Any:
    """Defaults, then the config file, then the flags given on the command line."""
    from vaekit.config import TrainConfig, load_config_file

    values = load_config_file(args.config) if args.config else {}
    values.update({k: v for k, v in vars(args).items() if k in TRAIN_HELP and v is not None})
    return TrainConfig.from_dict(values, source=args.config or "command line")


def cmd_train(args: argparse.Namespace) -> None:
    from vaekit.train import Trainer, resume_config

    if args.resume:
        given = {k: v for k, v in vars(args).items() if k in TRAIN_HELP and v is not None and k != "run_dir"}
        config = resume_config(args.run_dir or "runs/vae", given)
    else:
        config = _train_config(args)
    trainer = Trainer(config, resume=args.resume)
    trainer.fit()
    if trainer.dist.is_main:
        from vaekit.plots import save_reconstructions, save_samples

        figures = Path(config.run_dir) / "figures"
        x, y = trainer.valid_images[:32], trainer.valid_labels[:32]
        trainer.model.eval()
        print(save_samples(trainer.model, figures / "samples.png", 64, label=0 if config.uses_labels else None))
        if config.model != "gan":
            print(save_reconstructions(trainer.model, x, y, figures / "reconstructions.png"))


def _open_run(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The model of RUN, its settings, and its dataset."""
    import torch

    from vaekit.data import load_dataset
    from vaekit.runs import RunError, load, read_run_config
    from vaekit.train import select_device

    config = read_run_config(Path(args.run))
    if config.get("task") == "poem":
        raise RunError(f"{args.run} is a poem run; use `vaekit poem write --run {args.run}` (or poem evaluate, "
                       "poem interpolate) instead")
    device = select_device(getattr(args, "device", "cpu") or "cpu")
    model = load(args.run, device=device)
    if getattr(args, "seed", None) is not None:
        torch.manual_seed(args.seed)
    data = load_dataset(config["dataset"], config.get("data_dir"), config["image_size"], config["channels"],
                        config["seed"])
    return model, config, data


def _test_images(config: dict[str, Any], data: Any, n: int | None) -> tuple[Any, Any]:
    from vaekit.evaluate import eval_images

    return eval_images(data.test, config["binarization"], n)


def _figure_path(args: argparse.Namespace, name: str) -> Path:
    return Path(args.out) if args.out else Path(args.run) / "figures" / name


def cmd_evaluate(args: argparse.Namespace) -> None:

    from vaekit.evaluate import (
        elbo_metrics,
        latent_statistics,
        protocol_name,
        reconstruction_error,
        sample_quality,
    )
    from vaekit.runs import atomic_write_text

    model, config, data = _open_run(args)
    x, y = _test_images(config, data, args.limit)
    device = next(model.parameters()).device
    protocol = protocol_name(config["binarization"])
    result: dict[str, Any] = {"run": str(args.run), "split": "test", "images": len(x), "protocol": protocol,
                              "seed": args.seed, "k": args.k, "samples": args.samples}
    is_gan = config["model"] == "gan"
    metrics = {} if is_gan else elbo_metrics(model, x, y, device=device)
    result.update(metrics)
    if is_gan:
        print("a GAN has no encoder or likelihood: no ELBO, NLL or reconstruction; scoring its samples")
    elif "elbo" in metrics:
        print(f"elbo: {metrics['elbo']:.2f} nats (log-likelihood {metrics['log_likelihood']:.2f}, "
              f"kl {metrics['kl']:.2f}; {len(x)} test images)")
    else:
        print(f"reconstruction log-likelihood: {metrics['log_likelihood']:.2f} nats ({len(x)} test images); "
              "an autoencoder has no ELBO or NLL")
    if not is_gan:
        result["reconstruction"] = reconstruction_error(model, x, y, device=device)
        result["latent"] = latent_statistics(model, x, y, device=device)
        print(f"reconstruction: {result['reconstruction']['squared_error']:.2f} squared error per image; "
              f"active units: {result['latent']['active_units']} of {result['latent']['latent_dim']}")
    if args.samples > 0 and config["dataset"] in ("mnist", "fashion-mnist"):
        quality = sample_quality(model, config["dataset"], data.test.images, n=args.samples, device=device)
        result["sample_quality"] = quality
        extra = (f"; conditional accuracy {quality['conditional_accuracy']:.3f}"
                 if "conditional_accuracy" in quality else "")
        print(f"frechet distance (vaekit classifier features): {quality['frechet_distance']:.2f} "
              f"({quality['samples']} samples vs real test images); sample diversity {quality['diversity']:.3f}{extra}")
    if config["model"] not in ("ae", "gan") and args.k > 0:
        result["nll"] = _estimate_nll_with_progress(args, model, x, y, config, protocol, device).to_dict()
    out = Path(args.run) / "eval.json"
    atomic_write_text(out, json.dumps(result, indent=2))
    print(out)


def _estimate_nll_with_progress(args: argparse.Namespace, model: Any, x: Any, y: Any, config: dict[str, Any],
                                protocol: str, device: Any) -> Any:
    """The NLL, saying first how long it will take here, then samples/s and the time left as it runs."""
    from vaekit.evaluate import estimate_nll

    total = len(x) * args.k
    state = {"start": time.perf_counter(), "done": 0, "said": 0.0}

    def on_plan(plan: Any) -> None:
        print(f"nll: k={args.k} on {len(x):,} images = {total:,} decoder passes, {plan.samples_at_once:,} at a time "
              f"({plan.batch_size} images x {plan.chunk_size} samples, ~{plan.bytes_per_sample / 1024:.0f} kB each, "
              f"budget {plan.budget / 2**20:,.0f} MB)", file=sys.stderr)

    def progress(images: int) -> None:
        first = state["done"] == 0
        state["done"] += images * args.k
        elapsed = time.perf_counter() - state["start"]
        rate = state["done"] / max(elapsed, 1e-9)
        left = (total - state["done"]) / rate
        if first or elapsed - state["said"] > 30 or state["done"] == total:
            state["said"] = elapsed
            hint = "; use --limit or a GPU to go faster" if first and left > 600 else ""
            print(f"nll: {state['done']:,}/{total:,} samples, {rate:,.0f} samples/s, about {left / 60:.1f} minutes "
                  f"left{hint}", file=sys.stderr)

    nll = estimate_nll(model, x, y, k=args.k, batch_size=args.batch_size, chunk_size=args.chunk_size,
                       protocol=protocol, continuous=config["binarization"] == "none", device=device,
                       progress=progress, memory=args.memory, on_plan=on_plan)
    print(nll.line())
    return nll


def cmd_sample(args: argparse.Namespace) -> None:
    from vaekit.plots import save_samples

    model, _, _ = _open_run(args)
    name = "samples.png" if args.label is None else f"samples-label{args.label}.png"
    print(save_samples(model, _figure_path(args, name), args.n, label=args.label))


def cmd_reconstruct(args: argparse.Namespace) -> None:
    from vaekit.plots import save_reconstructions

    model, config, data = _open_run(args)
    x, y = _test_images(config, data, args.n)
    print(save_reconstructions(model, x, y, _figure_path(args, "reconstructions.png")))


def cmd_interpolate(args: argparse.Namespace) -> None:
    from vaekit.plots import save_interpolation

    model, config, data = _open_run(args)
    x, y = _test_images(config, data, 2 * args.rows)
    print(save_interpolation(model, x, y, _figure_path(args, "interpolation.png"), steps=args.steps))


def cmd_manifold(args: argparse.Namespace) -> None:
    from vaekit.plots import save_manifold

    model, config, data = _open_run(args)
    x, y = _test_images(config, data, 2000)
    path, axes = save_manifold(model, _figure_path(args, "manifold.png"), n=args.n, images=x, labels=y)
    print(f"grid over {axes}", file=sys.stderr)
    print(path)


def cmd_latent(args: argparse.Namespace) -> None:
    from vaekit.plots import save_latent_scatter

    model, config, data = _open_run(args)
    x, y = _test_images(config, data, args.n)
    print(save_latent_scatter(model, x, y, _figure_path(args, "latent.png"), data.class_names))


def cmd_serve(args: argparse.Namespace) -> None:
    from vaekit.serve import serve

    serve(args.runs, host=args.host, port=args.port)


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
    config = TrainConfig(run_dir=str(run_dir), model="vae", arch="conv", latent_dim=16, epochs=args.epochs,
                         max_minutes=args.minutes, device=args.device)
    trainer = Trainer(config)
    trainer.fit()
    model = trainer.model.eval()
    figures = run_dir / "figures"
    print(save_samples(model, figures / "samples.png", 64))
    print(save_reconstructions(model, trainer.valid_images[:32], trainer.valid_labels[:32], figures / "reconstructions.png"))
    x, y = eval_images(trainer.data.test, config.binarization)
    print(save_manifold(model, figures / "manifold.png", images=x[:2000], labels=y[:2000])[0])
    m = elbo_metrics(model, x, y, device=trainer.device)
    print(f"test elbo: {m['elbo']:.2f} nats (log-likelihood {m['log_likelihood']:.2f}, kl {m['kl']:.2f}; "
          f"{len(x)} test images, {protocol_name(config.binarization)})")
    print(f"next: vaekit evaluate {run_dir} --k 1000 --limit 1000   (test NLL by importance sampling)")


# epochs per form (the shipped models were trained with these)
POEM_EPOCHS = {"couplet": 12, "quatrain": 40, "regulated": 40, "quatrain7": 40, "regulated7": 40}


def cmd_poem_fetch(args: argparse.Namespace) -> None:
    from vaekit.data.poetry import fetch_corpus

    print(fetch_corpus(args.dest))


def cmd_poem_train(args: argparse.Namespace) -> None:
    from vaekit.config import TrainConfig
    from vaekit.poetry import format_poem, write
    from vaekit.train import Trainer, resume_config

    if args.resume:
        config = resume_config(args.run_dir, {"device": args.device} if args.device else {})
    else:
        config = TrainConfig(task="poem", model="vae", run_dir=args.run_dir, form=args.form, corpus_dir=args.corpus,
                             epochs=args.epochs or POEM_EPOCHS[args.form], batch_size=args.batch_size, lr=args.lr,
                             latent_dim=args.latent_dim, embedding_dim=args.embedding_dim, min_count=args.min_count,
                             simplified=args.simplified, kl_warmup=args.kl_warmup, seed=args.seed,
                             device=args.device or "auto", train_size=args.train_size, max_minutes=args.max_minutes,
                             decoder_layers=args.decoder_layers, grad_clip=5.0,
                             regulated_halves=not args.quatrains_only)
    trainer = Trainer(config, resume=args.resume)
    trainer.fit()
    if trainer.dist.is_main:
        trainer.model.eval()
        trainer.model.vocab = trainer.task.vocab
        for text in write(trainer.model, 3, seed=0):
            print(format_poem(text) + "\n")


def _verse_rules(args: argparse.Namespace, model: Any) -> Any:
    """The rules `poem write` asks the decoder to keep (None with --free)."""
    from vaekit.poetry import VerseRules

    if args.free:
        return None
    none = {"none", "off"}
    return VerseRules(form=model.run_config.form,
                      template=None if args.template in none else args.template,
                      rhyme=None if args.rhyme in none else args.rhyme,
                      acrostic=args.acrostic, first_line=args.first_line,
                      keywords=tuple(k.strip() for k in (args.keywords or "").replace("，", ",").split(",") if k.strip()))


def cmd_poem_write(args: argparse.Namespace) -> None:
    from vaekit.data.poetry import to_simplified
    from vaekit.poetry import format_poem, load_poem_model, write

    model = load_poem_model(args.form, args.run)
    texts = write(model, args.n, seed=args.seed, temperature=args.temperature, rules=_verse_rules(args, model),
                  top_p=args.top_p, beam=args.beam, best_of=args.best_of)
    if args.simplified:  # the rules were kept on the traditional text; conversion changes only the glyphs
        texts = to_simplified(texts)
    for text in texts:
        print(format_poem(text) + "\n")


def cmd_poem_interpolate(args: argparse.Namespace) -> None:
    from vaekit.poetry import format_poem, interpolate, load_poem_model

    model = load_poem_model(args.form, args.run)
    for i, text in enumerate(interpolate(model, args.first, args.second, steps=args.steps)):
        print(f"[{i}]\n{format_poem(text)}\n")


def cmd_poem_evaluate(args: argparse.Namespace) -> None:
    from vaekit.poetry import load_poem_model
    from vaekit.poetry.evaluate import evaluate_poems
    from vaekit.runs import atomic_write_text

    model = load_poem_model(args.form, args.run)
    r = evaluate_poems(model, args.corpus, n=args.n, seed=args.seed, temperature=args.temperature)
    print(f"{r['form']}: {r['poems']} poems each way (temperature {r['temperature']:g}, top-p {r['top_p']:g}, "
          f"seed {r['seed']}), beside {min(r['poems'], r['held_out_poems'])} held-out Tang poems")
    print(f"  {'':24}{'rules kept':>12}{'free':>10}{'Tang poems':>12}")
    for key, label in (("rhyme", "rhyme (Pingshui)"), ("template_fit", "fits a template"),
                       ("alternating_2_4", "2nd/4th tones alternate"), ("doubled_character", "character doubled"),
                       ("copied_lines", "lines copied"), ("distinct_1", "distinct-1"), ("distinct_2", "distinct-2")):
        cells = [r[w][key] for w in ("constrained", "unconstrained", "corpus")]
        if cells[0] is None:
            continue
        fmt = "{:>10.3f}" if key.startswith("distinct") else "{:>10.1%}"
        print(f"  {label:24}" + "".join("  " + fmt.format(c) for c in cells))
    print(f"  acrostic heads placed: {r['acrostic_heads_placed']:.1%}")
    f = r["fit"]
    print(f"  fit (held-out {r['held_out_poems']}): reconstruction accuracy {f['reconstruction_accuracy']:.1%}, "
          f"elbo {f['elbo_per_char']:.3f} nats/char, kl {f['kl_per_poem']:.2f} nats/poem")
    if args.out is None and args.run is None:  # a shipped model: the installed package is never written to
        print("(metrics not saved: pass --out FILE to keep them as JSON)")
        return
    out = Path(args.out) if args.out else Path(args.run) / "metrics.json"
    atomic_write_text(out, json.dumps(r, indent=2, ensure_ascii=False))
    print(out)


def _add_poem_commands(sub: Any) -> None:
    from vaekit.data.poetry import FORMS

    poem = sub.add_parser("poem", help="the CNN + VAE poem generator (five- and seven-character Tang verse)")
    psub = poem.add_subparsers(dest="poem_command", required=True)
    p = psub.add_parser("fetch", help="download the chinese-poetry corpus with npm")
    p.add_argument("--dest", help="where to keep it (default ~/.cache/vaekit/chinese-poetry or $VAEKIT_POETRY)")
    p.set_defaults(func=cmd_poem_fetch)

    p = psub.add_parser("train", help="train a poem model through the shared Trainer")
    p.add_argument("--form", choices=FORMS, default="quatrain")
    p.add_argument("--corpus", help="folder or clone of the corpus (default: where `vaekit poem fetch` put it)")
    p.add_argument("--run-dir", default="runs/poem")
    p.add_argument("--epochs", type=int, default=None, help=f"default per form: {POEM_EPOCHS}")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--latent-dim", type=int, default=64)
    p.add_argument("--embedding-dim", type=int, default=64)
    p.add_argument("--decoder-layers", type=int, default=1)
    p.add_argument("--min-count", type=int, default=2, help="rarer characters become □")
    p.add_argument("--simplified", action="store_true", help="convert to simplified characters (OpenCC)")
    p.add_argument("--kl-warmup", type=float, default=0.0, help="epochs over which the KL weight ramps to 1")
    p.add_argument("--quatrains-only", action="store_true",
                   help="quatrain form: only the 3,956 true quatrains (default adds both halves of regulated poems)")
    p.add_argument("--train-size", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--resume", action="store_true")
    p.set_defaults(func=cmd_poem_train)

    for name, fn, text in (("write", cmd_poem_write, "write new poems from random z"),
                           ("interpolate", cmd_poem_interpolate, "walk the latent line between two poems"),
                           ("evaluate", cmd_poem_evaluate, "form, novelty, diversity, fit, rhyme and tone metrics")):
        p = psub.add_parser(name, help=text)
        p.add_argument("--form", choices=FORMS, default=None, help="use the shipped model of this form")
        p.add_argument("--run", help="a run directory from `vaekit poem train` (instead of a shipped model)")
        p.add_argument("--seed", type=int, default=None if name == "write" else 0,
                       help="seed for the random draws (same seed, same poems)")
        p.set_defaults(func=fn)
        if name == "write":
            p.add_argument("-n", type=count(1, 10_000), default=5, help="number of poems")
            p.add_argument("--temperature", type=temperature, default=0.7,
                           help="sampling temperature; 0 decodes by argmax (Su's setup: repetitive poems)")
            p.add_argument("--top-p", type=probability, default=0.9,
                           help="sample from the smallest set of characters holding this much probability")
            p.add_argument("--beam", type=count(2, 64, zero=True), default=0,
                           help="beam search of this width instead of sampling (0: sample)")
            p.add_argument("--best-of", type=count(1, 100), default=1,
                           help="write N candidates a poem and keep the one the model scores highest")
            p.add_argument("--template", default="auto",
                           help="tonal template, e.g. 仄起首句不入韵 (or 仄起); auto draws one as often as Tang "
                                "poets used it; none: no tone rules")
            p.add_argument("--rhyme", default="auto",
                           help="Pingshui rhyme group, e.g. 七陽, or one character of it, e.g. 光; auto: the "
                                "model's first rhyme fixes the group; none: no rhyme rule")
            p.add_argument("--acrostic", help="characters to head the lines, one a line (藏头诗), e.g. 春夏秋冬")
            p.add_argument("--first-line", help="a first line for the model to continue, e.g. 白日依山盡")
            p.add_argument("--keywords", help="characters that must appear, comma-separated, e.g. 月,山")
            p.add_argument("--simplified", action="store_true",
                           help="print simplified characters (OpenCC; the rules are kept on the traditional text)")
            p.add_argument("--free", action="store_true",
                           help="no rules at all: decode each position freely, as Su's model did")
        elif name == "interpolate":
            p.add_argument("first")
            p.add_argument("second")
            p.add_argument("--steps", type=count(2, 100), default=6, help="poems along the line, ends included")
        else:
            p.add_argument("-n", type=count(2, 100_000), default=1000, help="poems to generate and score")
            p.add_argument("--temperature", type=temperature, default=0.7, help="as for write (0: argmax)")
            p.add_argument("--corpus", help="folder or clone of the corpus")
            p.add_argument("--out", help="where to write the metrics JSON")


def _run_parser(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("run", help="run directory written by `vaekit train`")
    p.add_argument("--out", help="where to write the PNG (default RUN/figures/...)")
    p.add_argument("--seed", type=int, default=0, help="seed for the random draws")
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    return p


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `vaekit` command."""
    parser = argparse.ArgumentParser(prog="vaekit", description="Train, evaluate and explore the VAE family.",
                                     epilog="--debug anywhere on the line shows a traceback instead of one sentence")
    parser.add_argument("--version", action="version", version=f"vaekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model", description="Train a model of the VAE family.")
    _add_train_options(p)
    p.set_defaults(func=cmd_train)

    p = _run_parser(sub, "evaluate", "test ELBO, and test NLL in nats by importance sampling")
    p.add_argument("--k", type=count(1, 100_000, zero=True), default=5000,
                   help="importance samples per image (5000: the standard; 0: skip NLL)")
    p.add_argument("--limit", type=count(1), default=None, help="evaluate the first N test images (default all)")
    p.add_argument("--batch-size", type=count(1, 100_000), default=None,
                   help="images a batch (default: from --memory)")
    p.add_argument("--chunk-size", type=count(1, 1_000_000), default=None,
                   help="samples a chunk (default: from --memory)")
    p.add_argument("--memory", type=memory_size, default=None,
                   help="activation memory for the NLL passes, e.g. 512MB or 4GB (default ~1GB on CPU, half the "
                        "free memory on a GPU); changes speed, never the estimate")
    p.add_argument("--samples", type=count(2, 100_000, zero=True), default=5000,
                   help="samples scored by the shipped classifier (Frechet distance; 0: skip)")
    p.set_defaults(func=cmd_evaluate)

    p = _run_parser(sub, "sample", "a grid of samples from the model")
    p.add_argument("-n", type=count(1, 10_000), default=64, help="number of samples")
    p.add_argument("--label", type=int, default=None, help="class to draw (cvae runs)")
    p.set_defaults(func=cmd_sample)

    p = _run_parser(sub, "reconstruct", "test images and their reconstructions")
    p.add_argument("-n", type=count(1, 10_000), default=32, help="number of test images")
    p.set_defaults(func=cmd_reconstruct)

    p = _run_parser(sub, "interpolate", "decoded straight lines between pairs of test images' codes")
    p.add_argument("--rows", type=count(1, 100), default=8, help="number of pairs")
    p.add_argument("--steps", type=count(2, 100), default=10, help="images per line, ends included")
    p.set_defaults(func=cmd_interpolate)

    p = _run_parser(sub, "manifold", "the 2-D latent grid decoded (principal plane for larger latents)")
    p.add_argument("-n", type=count(2, 100), default=20, help="grid side")
    p.set_defaults(func=cmd_manifold)

    p = _run_parser(sub, "latent", "test codes scattered and coloured by label (PCA above 2-D)")
    p.add_argument("-n", type=count(2, 100_000), default=5000, help="number of test images")
    p.set_defaults(func=cmd_latent)

    p = sub.add_parser("demo", help="train the flagship conv VAE on MNIST for a few minutes and draw it")
    p.add_argument("--run-dir", default="runs/demo", help="where the run goes (a new -2, -3... if it exists)")
    p.add_argument("--minutes", type=positive_number, default=4.0, help="training time budget")
    p.add_argument("--epochs", type=count(1), default=30, help="at most this many epochs")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("serve", help="a local web page: explore the latent space, draw, sample, write poems",
                       description="Serve a web page over trained runs (needs `pip install 'vaekit[web]'`).",
                       epilog="example: vaekit serve runs/demo runs/cvae --port 8000")
    p.add_argument("runs", nargs="*", help="run directories (image runs; poem runs add their form to the poem tab)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=count(1, 65535), default=8000, help="port to listen on")
    p.set_defaults(func=cmd_serve)
    _add_poem_commands(sub)
    return parser


def _interrupted_message(args: argparse.Namespace, seconds: float) -> str:
    """What an interrupt leaves behind, truthfully: a checkpoint to resume, or nothing yet."""
    from vaekit.runs import latest_checkpoint

    run_dir = getattr(args, "run_dir", None)
    if run_dir is None or getattr(args, "func", None) not in (cmd_train, cmd_poem_train, cmd_demo):
        return f"vaekit: interrupted after {seconds:.0f}s"
    try:
        ckpt = latest_checkpoint(Path(run_dir))
    except (OSError, ValueError):
        ckpt = None
    if ckpt is None:
        return (f"vaekit: interrupted after {seconds:.0f}s, before the first checkpoint; the same command "
                "starts the run again")
    return f"vaekit: interrupted after {seconds:.0f}s; {ckpt} is intact (resume with --resume)"


def _os_error_message(e: OSError) -> str:
    where = f" ({e.filename})" if e.filename else ""
    if e.errno == errno.ENOSPC:
        return f"no space left on device{where}; free some space (the run's last checkpoint is intact) and retry"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"permission denied{where}; choose a folder you can write to"
    return f"{e.strerror or e}{where}"


def main(argv: list[str] | None = None) -> int:
    """Entry point: every expected failure becomes one sentence and an exit code (2 bad input, 1 failed run).

    `--debug` (anywhere on the line) shows the traceback instead.
    """
    from vaekit.config import ConfigError
    from vaekit.data import DataError
    from vaekit.runs import RunError
    from vaekit.train import TrainingDiverged

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        args.func(args)
    except KeyboardInterrupt:
        print(_interrupted_message(args, time.perf_counter() - start), file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        if isinstance(e, DataError | ConfigError | RunError | ValueError):
            print(f"vaekit: error: {e}", file=sys.stderr)
            return 2
        if isinstance(e, TrainingDiverged):
            print(f"vaekit: training stopped: {e}", file=sys.stderr)
            return 1
        if isinstance(e, MemoryError):
            print("vaekit: error: out of memory; use a smaller --batch-size, --limit or model", file=sys.stderr)
            return 1
        if isinstance(e, OSError):
            print(f"vaekit: error: {_os_error_message(e)}", file=sys.stderr)
            return 2 if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT) else 1
        print(f"vaekit: internal error ({type(e).__name__}: {e}); rerun with --debug for the traceback and "
              "report it", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
