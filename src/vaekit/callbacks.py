"""What watches training without steering it: the progress line, TensorBoard, MLflow, and hooks a task or a
benchmark adds. The Trainer calls each at the start, after every step and epoch, and at the end (rank 0 only)."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaekit.config import ConfigError

Trainer = Any  # vaekit.train.Trainer, which imports this module: named here by what it is
StepResult = Any  # vaekit.models.trainable.StepResult

__all__ = ["Callback", "ProgressLine", "TensorBoard", "MLflow", "EpochHook", "duration"]


class Callback:
    """A hook into training; each method does nothing unless overridden."""

    def on_fit_start(self, trainer: Trainer) -> None: ...

    def on_epoch_start(self, trainer: Trainer) -> None: ...

    def on_step_end(self, trainer: Trainer, result: StepResult) -> None: ...

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None: ...

    def on_fit_end(self, trainer: Trainer) -> None: ...


def duration(seconds: float) -> str:
    """A time left as a person says it: 40 s, 3 min, 1 h 20 min."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {seconds % 3600 / 60:.0f} min"


class ProgressLine(Callback):
    """A bar through each epoch on a terminal, and a line after it: loss, the validation summary, images a second
    and the time left (about 25 lines a run however many epochs)."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.started: float | None = None
        self.epochs_timed = 0

    def on_fit_start(self, trainer: Trainer) -> None:
        self.started, self.epochs_timed = time.perf_counter(), 0

    def on_epoch_start(self, trainer: Trainer) -> None:
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=trainer.steps_per_epoch, desc=f"epoch {trainer.epoch + 1}/{trainer.epochs}",
                            leave=False)

    def on_step_end(self, trainer: Trainer, result: StepResult) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{result.loss:.2f}")
            self.bar.update(1)

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.epochs_timed += 1
        epochs = trainer.epochs
        stride = -(-epochs // 25) if epochs > 50 else 1
        if trainer.epoch % stride and trainer.epoch != epochs:
            return
        if "valid_sample_diversity" in metrics:
            summary = (f"discriminator accuracy {metrics['valid_discriminator_accuracy']:.2f}  "
                       f"sample diversity {metrics['valid_sample_diversity']:.2f}")
        elif "valid_elbo" in metrics:
            summary = f"valid elbo {metrics['valid_elbo']:.2f} nats"
        else:
            summary = f"valid log-likelihood {metrics['valid_log_likelihood']:.2f} nats"
        left = ""
        if trainer.epoch < epochs and self.started is not None:
            elapsed = time.perf_counter() - self.started
            seconds = elapsed / self.epochs_timed * (epochs - trainer.epoch)
            budget = trainer.config.optim.max_minutes
            if budget is not None:  # the time budget ends the run first
                seconds = min(seconds, 60.0 * budget - elapsed)
            left = f"  about {duration(seconds)} left" if seconds >= 1 else ""
        skips = (f"  skipped {metrics['skipped_steps']} steps (gradient norm median {metrics['grad_norm_median']:.3g}, "
                 f"max {metrics['grad_norm_max']:.3g})" if "skipped_steps" in metrics and "grad_norm_median" in metrics
                 else "")
        trainer.log(f"epoch {trainer.epoch}/{epochs}  loss {metrics['train_loss']:.2f}  {summary}{skips}"
                    f"  {metrics['images_per_s']:,.0f} img/s{left}")

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()


class TensorBoard(Callback):
    """Per-step loss, KL and learning rate (every STEP_LOG_EVERY steps), per-epoch metrics and the model's figures,
    and the config as text, under RUN/tensorboard (the `tensorboard` extra)."""

    STEP_LOG_EVERY = 10

    def __init__(self, run_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    @classmethod
    def available(cls) -> bool:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            return False
        return True

    def on_fit_start(self, trainer: Trainer) -> None:
        config = json.dumps(trainer.config.to_dict(), indent=2)
        self.writer.add_text("config", "```\n" + config + "\n```", trainer.epoch)

    def on_step_end(self, trainer: Trainer, result: StepResult) -> None:
        if trainer.step % self.STEP_LOG_EVERY:
            return
        self.writer.add_scalar("step/loss", result.loss, trainer.step)
        if result.kl is not None and bool(torch.isfinite(result.kl).all()):
            self.writer.add_scalar("step/kl", float(result.kl.float().mean()), trainer.step)
        self.writer.add_scalar("step/lr", trainer.scheduler.get_last_lr()[0], trainer.step)

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        from vaekit.plots import image_grid

        for key, value in metrics.items():
            if key != "epoch" and isinstance(value, int | float) and math.isfinite(value):
                self.writer.add_scalar(key, value, trainer.epoch)
        model = trainer.evaluated_model.eval()
        grids = model.figures(trainer.valid_images[:8].to(trainer.device), trainer.valid_labels[:8].to(trainer.device))
        for tag, images in grids.items():
            picture = torch.from_numpy(np.array(image_grid(images, nrow=8).convert("RGB"))).permute(2, 0, 1)
            self.writer.add_image(tag, picture, trainer.epoch)
        self.writer.flush()

    def on_fit_end(self, trainer: Trainer) -> None:
        self.writer.close()


class MLflow(Callback):
    """The one adapter to an experiment tracker: parameters at the start, numeric metrics each epoch."""

    def __init__(self) -> None:
        try:
            import mlflow
        except ImportError:
            raise ConfigError("--mlflow needs the mlflow package: pip install mlflow (or drop --mlflow)") from None
        self.mlflow = mlflow

    def on_fit_start(self, trainer: Trainer) -> None:
        self.mlflow.start_run(run_name=Path(trainer.config.run.run_dir).name)
        self.mlflow.log_params({k: v for k, v in trainer.config.flat().items()
                                if isinstance(v, int | float | str | bool)})

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and math.isfinite(v)}
        self.mlflow.log_metrics(numbers, step=trainer.epoch)

    def on_fit_end(self, trainer: Trainer) -> None:
        self.mlflow.end_run()


class EpochHook(Callback):
    """A function called after each epoch's checkpoint (benchmarks take their snapshots there)."""

    def __init__(self, fn: Callable[[Trainer, dict[str, Any]], None]):
        self.fn = fn

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self.fn(trainer, metrics)
