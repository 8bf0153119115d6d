"""`vaekit evaluate`, `sample`, `reconstruct`, `interpolate`, `manifold`, `latent`: a trained run, looked at."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from vaekit.cli.options import HelpFormatter, count, memory_size, seed, temperatures
from vaekit.cli.train import run_title

__all__ = ["add_inspect_commands", "cmd_evaluate", "cmd_sample", "cmd_reconstruct", "cmd_interpolate",
           "cmd_manifold", "cmd_latent", "resolve_label"]


def _open_run(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The model of RUN, its settings, and its dataset."""
    import torch

    import vaekit
    from vaekit.data import load_dataset
    from vaekit.runs import RunError
    from vaekit.tasks import read_settings
    from vaekit.train import select_device

    config = read_settings(Path(args.run)).flat()
    if config.get("task") == "poem":
        raise RunError(f"{args.run} is a poem run; use `vaekit poem write --run {args.run}` (or poem evaluate, "
                       "poem interpolate) instead")
    device = select_device(getattr(args, "device", "cpu") or "cpu")
    model = vaekit.load(args.run, device=device)
    if getattr(args, "seed", None) is not None:
        torch.manual_seed(args.seed)
    data = load_dataset(config["dataset"], config.get("data_dir"), config["image_size"], config["channels"],
                        config["seed"])
    return model, config, data


def resolve_label(text: str | None, class_names: list[str]) -> int | None:
    """A class given by number (3) or by name (Sneaker, case and spaces ignored); ValueError listing the names."""
    if text is None:
        return None
    if text.strip().lstrip("-").isdigit():
        return int(text)
    wanted = text.strip().lower().replace(" ", "")
    for i, name in enumerate(class_names):
        if name.lower().replace(" ", "") == wanted:
            return i
    raise ValueError(f"no class named {text!r}; give a number 0-{len(class_names) - 1} or one of "
                     f"{', '.join(class_names)}")


def _test_images(config: dict[str, Any], data: Any, n: int | None) -> tuple[Any, Any]:
    from vaekit.evaluate import eval_images

    return eval_images(data.test, config["binarization"], n)


def _figure_path(args: argparse.Namespace, name: str) -> Path:
    return Path(args.out) if args.out else Path(args.run) / "figures" / name


def cmd_evaluate(args: argparse.Namespace) -> None:
    from vaekit.evaluate import elbo_metrics, latent_statistics, protocol_name, reconstruction_error, sample_quality
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
        latent = result["latent"]
        print(f"reconstruction: {result['reconstruction']['squared_error']:.2f} squared error per image; "
              f"active units: {latent['active_units']} of {latent['latent_dim']}"
              + (" in the top group" if "active_units_per_group" in latent else ""))
        if "active_units_per_group" in latent:
            print("groups, top first: " + "; ".join(
                f"{i}: kl {metrics[f'kl_group{i}']:.2f} nats, {a} of {d} units active"
                for i, (a, d) in enumerate(zip(latent["active_units_per_group"], latent["group_dims"], strict=True))))
    if args.samples > 0 and config["dataset"] in ("mnist", "fashion-mnist"):
        quality = sample_quality(model, config["dataset"], data.test.images, n=args.samples, device=device)
        result["sample_quality"] = quality
        extra = (f"; conditional accuracy {quality['conditional_accuracy']:.3f}"
                 if "conditional_accuracy" in quality else "")
        print(f"frechet distance (vaekit classifier features): {quality['frechet_distance']:.2f} "
              f"({quality['samples']} samples vs real test images); sample diversity {quality['diversity']:.3f}{extra}")
    if config["model"] not in ("ae", "gan") and args.k > 0:
        result["nll"] = _estimate_nll_with_progress(args, model, x, y, config, protocol, device).to_dict()
    out = Path(args.out) if args.out else Path(args.run) / "eval.json"
    atomic_write_text(out, json.dumps(result, indent=2))
    print(out)


def _estimate_nll_with_progress(args: argparse.Namespace, model: Any, x: Any, y: Any, config: dict[str, Any],
                                protocol: str, device: Any) -> Any:
    """The NLL, saying first how long it will take here, then samples/s and the time left as it runs."""
    import torch

    from vaekit.evaluate import estimate_nll
    from vaekit.kernels import native_bf16

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
            faster = ("--limit, --precision bf16 (this device multiplies bf16 in hardware)"
                      if args.precision == "fp32" and native_bf16(torch.device(device), tiles_only=True) else "--limit")
            hint = f"; use {faster} or a GPU to go faster" if first and left > 600 else ""
            print(f"nll: {state['done']:,}/{total:,} samples, {rate:,.0f} samples/s, about {left / 60:.1f} minutes "
                  f"left{hint}", file=sys.stderr)

    nll = estimate_nll(model, x, y, k=args.k, batch_size=args.batch_size, chunk_size=args.chunk_size,
                       protocol=protocol, device=device,
                       pixel_levels=256 if config["binarization"] == "none" else None,
                       progress=progress, memory=args.memory, on_plan=on_plan, precision=args.precision)
    print(nll.line())
    return nll


def cmd_sample(args: argparse.Namespace) -> None:
    from vaekit.plots import save_samples

    model, config, data = _open_run(args)
    names = config.get("class_names") or list(data.class_names)
    label = resolve_label(args.label, names)
    name = "samples.png" if label is None else f"samples-label{label}.png"
    print(save_samples(model, _figure_path(args, name), args.n, label=label, title=run_title(args.run),
                       class_names=names, temperature=_temperature(args.temperature, model, config)))


def _temperature(values: list[float] | None, model: Any, config: dict[str, Any]) -> float | list[float] | None:
    """--temperature as the model takes it: one number, or one a group for a hierarchy (a sentence otherwise)."""
    from vaekit.runs import RunError

    if values is None:
        return None
    if config["model"] in ("ae", "gan"):
        raise RunError(f"--temperature scales draws from a prior; a {config['model']} run has none to scale")
    groups = getattr(model, "latent_group_count", 1)
    if len(values) not in (1, groups):
        raise RunError(f"--temperature takes one number, or one for each of this run's {groups} latent groups "
                       f"(top first); got {len(values)}")
    return values[0] if len(values) == 1 else values


def cmd_reconstruct(args: argparse.Namespace) -> None:
    from vaekit.plots import save_reconstructions

    model, config, data = _open_run(args)
    x, y = _test_images(config, data, args.n)
    print(save_reconstructions(model, x, y, _figure_path(args, "reconstructions.png"), title=run_title(args.run)))


def cmd_interpolate(args: argparse.Namespace) -> None:
    from vaekit.plots import save_interpolation

    model, config, data = _open_run(args)
    x, y = _test_images(config, data, 2 * args.rows)
    print(save_interpolation(model, x, y, _figure_path(args, "interpolation.png"), steps=args.steps,
                             title=run_title(args.run)))


def cmd_manifold(args: argparse.Namespace) -> None:
    from vaekit.plots import save_manifold

    model, config, data = _open_run(args)
    x, y = _test_images(config, data, 2000)
    path, axes = save_manifold(model, _figure_path(args, "manifold.png"), n=args.n, images=x, labels=y,
                               title=run_title(args.run))
    print(f"grid over {axes}", file=sys.stderr)
    print(path)


def cmd_latent(args: argparse.Namespace) -> None:
    from vaekit.plots import save_latent_scatter

    model, config, data = _open_run(args)
    x, y = _test_images(config, data, args.n)
    print(save_latent_scatter(model, x, y, _figure_path(args, "latent.png"), data.class_names))


def _run_parser(sub: Any, name: str, help_text: str, example: str,
                out_help: str = "where to write the PNG (default RUN/figures/...)") -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text, epilog=f"example: {example}",
                       formatter_class=HelpFormatter)
    p.add_argument("run", help="run directory written by `vaekit train`")
    p.add_argument("--out", help=out_help)
    p.add_argument("--seed", type=seed, default=0, help="seed for the random draws")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    return p


def add_inspect_commands(sub: Any) -> None:
    """The subcommands that look at a trained run."""
    p = _run_parser(sub, "evaluate", "test ELBO, and test NLL in nats by importance sampling",
                    "vaekit evaluate runs/vae --k 1000 --limit 2000",
                    out_help="where to write the results as JSON (default RUN/eval.json)")
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
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",  # vaekit.evaluate.PRECISIONS (lazy import)
                   help="of the decoder's products in the NLL: bf16 is several times faster where the hardware has "
                        "it (AMX CPUs, Ampere GPUs on) and moved the NLL by under 0.01 nats (docs/benchmarks.md); "
                        "densities and sums stay fp32")
    p.add_argument("--samples", type=count(2, 100_000, zero=True), default=5000,
                   help="samples scored by the shipped classifier (Frechet distance; 0: skip)")
    p.set_defaults(func=cmd_evaluate)

    p = _run_parser(sub, "sample", "a grid of samples from the model", "vaekit sample runs/cvae --label 3 -n 16")
    p.add_argument("-n", type=count(1, 10_000), default=64, help="number of samples")
    p.add_argument("--label", default=None,
                   help="class to draw, by number or name, e.g. 3 or Sneaker (conditional runs)")
    p.add_argument("--temperature", type=temperatures, default=None,
                   help="scale of the prior's spread in the draws (default 1); an hvae takes one a group, top first, "
                        "e.g. 1,0.8,0.6,0.6")
    p.set_defaults(func=cmd_sample)

    p = _run_parser(sub, "reconstruct", "test images and their reconstructions", "vaekit reconstruct runs/vae -n 16")
    p.add_argument("-n", type=count(1, 10_000), default=32, help="number of test images")
    p.set_defaults(func=cmd_reconstruct)

    p = _run_parser(sub, "interpolate", "decoded straight lines between pairs of test images' codes",
                    "vaekit interpolate runs/vae --rows 4 --steps 12")
    p.add_argument("--rows", type=count(1, 100), default=8, help="number of pairs")
    p.add_argument("--steps", type=count(2, 100), default=10, help="images per line, ends included")
    p.set_defaults(func=cmd_interpolate)

    p = _run_parser(sub, "manifold", "the 2-D latent grid decoded (principal plane for larger latents)",
                    "vaekit manifold runs/vae -n 15")
    p.add_argument("-n", type=count(2, 100), default=20, help="grid side")
    p.set_defaults(func=cmd_manifold)

    p = _run_parser(sub, "latent", "test codes scattered and coloured by label (PCA above 2-D)",
                    "vaekit latent runs/vae -n 2000")
    p.add_argument("-n", type=count(2, 100_000), default=5000, help="number of test images")
    p.set_defaults(func=cmd_latent)
