"""The `vaekit` command. Each subcommand is a few lines over the library, in one module per command group
(train, inspect, poem, serve); here: the parser, and the one place that turns failures into a sentence."""

from __future__ import annotations

import argparse
import errno
import gc
import sys
import time
from pathlib import Path

from vaekit import __version__
from vaekit.cli import inspect, poem, serve, train
from vaekit.cli.options import HelpFormatter

__all__ = ["build_parser", "main", "console", "GUIDE"]

GUIDE = """vaekit: train, evaluate and explore the variational-autoencoder family, and write classical Chinese poems.

First steps:
  vaekit demo                                   train the flagship conv VAE on MNIST (a few minutes), draw it
  vaekit poem write -n 3                        three quatrains that keep the rules of verse (a shipped model)

Commands:
  train        train a model: vae, iwae, ae, cvae or gan, on MNIST, Fashion-MNIST or a folder of your images
  evaluate     test ELBO and the importance-sampled NLL (nats, bits/dim) of a run
  sample, reconstruct, interpolate, manifold, latent
               figures of a run, written into RUN/figures/
  serve        a local web page over runs: latent explorer, drawing, samples, poems
  poem         write, interpolate, evaluate and train poem models

`vaekit COMMAND --help` lists a command's options with examples; docs/tutorial.md walks the ideas in order."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `vaekit` command."""
    parser = argparse.ArgumentParser(prog="vaekit", description="Train, evaluate and explore the VAE family.",
                                     epilog="--debug anywhere on the line shows a traceback instead of one sentence",
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"vaekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    train.add_train_commands(sub)
    inspect.add_inspect_commands(sub)
    serve.add_serve_command(sub)
    poem.add_poem_commands(sub)
    return parser


def _interrupted_message(args: argparse.Namespace, seconds: float) -> str:
    """What an interrupt leaves behind, truthfully: a checkpoint to resume, or nothing yet."""
    from vaekit.runs import latest_checkpoint

    run_dir = getattr(args, "run_dir", None)
    if run_dir is None or getattr(args, "func", None) not in (train.cmd_train, poem.cmd_poem_train,
                                                                 train.cmd_demo):
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
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:  # `vaekit` alone: what it is and the two first steps, not a usage error
        print(GUIDE)
        return 0
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    collecting = gc.isenabled()
    gc.disable()  # the parser imports torch: a million objects, whose collection on the way costs 0.1 s here
    try:
        args = build_parser().parse_args(argv)
    finally:
        if collecting:
            gc.enable()
    start = time.perf_counter()
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        print(_interrupted_message(args, time.perf_counter() - start), file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        from vaekit.config import ConfigError  # here, not above: the command starts before torch is imported
        from vaekit.data import DataError
        from vaekit.runs import RunError
        from vaekit.train import TrainingDiverged

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
    return code if isinstance(code, int) else 0  # a command may return its own status (poem check: 1 on a break)


def console() -> int:
    """The `vaekit` console script: `main` in a fresh process, started and ended quickly.

    Before the parser imports torch, a line that will read the embedded MNIST starts inflating it on the other
    core (`vaekit.preload`); after `main`, the objects torch created are frozen out of the collector, so the
    interpreter's final collections skip them (a quarter of a second at every exit on 2 cores; every atexit
    handler still runs). Neither is in `main`, which library callers and tests run in a process that carries
    on, with its datasets cached.
    """
    argv = sys.argv[1:]
    train.preload_embedded_mnist([a for a in argv if a != "--debug"])
    code = main(argv)
    gc.freeze()
    return code
