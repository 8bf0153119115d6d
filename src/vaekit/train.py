"""The one Trainer for every model: the loop, the optimisers and their schedule, KL warm-up, checkpoints, resume,
DistributedDataParallel and callbacks. Nothing in it is particular to a model or a task: a model declares what it
needs through `vaekit.models.trainable.Trainable`, a task through `vaekit.tasks.Task`, and whatever watches training
(the progress line, TensorBoard, MLflow) is a callback.

Each epoch's randomness (shuffle, binarization, reparameterization noise) is keyed on (seed, epoch), so a run
killed and resumed from its last checkpoint ends with the weights an uninterrupted run has. Under `torchrun
--nproc-per-node N` the same code runs DistributedDataParallel: every rank takes its slice of each global batch,
gradients are averaged, rank 0 validates, writes and speaks.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from vaekit.callbacks import Callback, EpochHook, MLflow, ProgressLine, TensorBoard
from vaekit.config import ConfigError, TrainConfig
from vaekit.data import BatchLoader
from vaekit.devices import DistEnv, init_distributed, select_device, training_precision
from vaekit.models.trainable import EpochTally, StepContext, StepResult
from vaekit.optim import LRSchedule, weight_average
from vaekit.runs import (
    RunError,
    RunLock,
    atomic_write_text,
    check_optimizer_state,
    clean_temporaries,
    latest_checkpoint,
    load_average,
    load_weights,
    prepare_run_dir,
    read_checkpoint,
    read_metrics_lines,
    read_run_config,
    save_checkpoint,
)
from vaekit.tasks import make_task

__all__ = ["TrainingDiverged", "Trainer", "resume_config", "select_device", "training_precision", "DistEnv"]

EXPLOSION_FACTOR = 1000.0  # a step loss this many times its running level has diverged, though still finite


class TrainingDiverged(RuntimeError):
    """The loss became NaN, infinite or exploded, or the model's health check failed; the message names the step
    and what to try."""


def resume_config(run_dir: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The saved settings of a run, with the few that may change on resume (epochs, device and precision, time
    budget)."""
    source = str(Path(run_dir) / "config.json")
    config = TrainConfig.from_dict(read_run_config(Path(run_dir)), source=source)
    saved = config.flat()
    changes: dict[str, Any] = {"run_dir": str(run_dir)}
    allowed = {"epochs", "device", "precision", "max_minutes", "tensorboard"}
    for key, value in (overrides or {}).items():
        if key not in allowed and value != saved.get(key):
            raise ConfigError(f"--resume continues a run with its saved settings; {key} cannot change from "
                              f"{saved.get(key)!r} to {value!r} "
                              f"(only {', '.join(sorted(allowed))} can), start a new --run-dir instead")
        changes[key] = value
    ckpt = latest_checkpoint(Path(run_dir))
    done = read_checkpoint(ckpt)[1]["epoch"] if ckpt is not None else 0
    if done >= saved["epochs"] and changes.get("epochs", saved["epochs"]) > done:  # extending a finished run
        changes["restarts"] = [*(config.restarts or []), done]  # a new cosine cycle from here
    return config.with_settings(source, **changes)


def _check_model_size(task: Any) -> None:
    """Refuse, before allocating, a model whose weights alone would not train in memory: it is built on the meta
    device (shapes only) and its parameters counted."""
    from vaekit.config import MAX_PARAMETERS

    try:
        with torch.device("meta"):
            count = sum(p.numel() for p in task.build_model().parameters())
    except (NotImplementedError, RuntimeError):  # a model that cannot be built on meta is checked by its config
        return
    if count > MAX_PARAMETERS:
        raise ConfigError(f"the model would have {count:,} parameters (about {count * 16 / 2**30:.0f} GB to train "
                          f"with AdamW in fp32); vaekit trains up to {MAX_PARAMETERS:,}: choose a smaller --hidden, "
                          "--width, --latent-dim or --embedding-dim")


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63)


class Trainer:
    """Train one model as the config says, writing the run directory; `fit()` returns the last metrics."""

    def __init__(self, config: TrainConfig, resume: bool = False, log: Callable[[str], None] | None = None,
                 callbacks: list[Callback] | None = None):
        self.config = config.validate()
        self.run_dir = Path(config.run.run_dir)
        self.dist, self.device = init_distributed(select_device(config.run.device))
        self.log = log if log is not None else (print if self.dist.is_main else (lambda _msg: None))
        self._lock: RunLock | None = None
        if self.dist.is_main:
            prepare_run_dir(self.run_dir)
            self._lock = RunLock(self.run_dir).acquire()
            clean_temporaries(self.run_dir)
        try:
            self._setup(config, self._decide_resume(resume), callbacks or [])
        except BaseException:
            self.close()
            raise

    def close(self, together: bool = False) -> None:
        """Release the run directory for other processes and leave the process group (done by `fit`, and by the
        OS if the process dies); `together` (a run that finished on every rank) waits for the other ranks first."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self.dist.world_size > 1 and dist.is_initialized():
            # torch asks for this before exit: gloo's threads left to the interpreter's teardown once aborted a
            # rank after training had finished ("terminate called without an active exception", SIGABRT), and so
            # did a rank leaving while rank 0 still wrote its figures: the barrier has every rank leave at once
            if together:
                dist.barrier()
            dist.destroy_process_group()

    def _decide_resume(self, resume: bool) -> bool:
        """Whether to continue from a checkpoint; a run that never wrote one starts again in place."""
        has_run = (self.run_dir / "config.json").exists()
        has_checkpoint = latest_checkpoint(self.run_dir) is not None
        if not resume and has_run and has_checkpoint:
            raise RunError(f"{self.run_dir} already holds a run; pass --resume to continue it, or choose another "
                           "--run-dir (nothing was overwritten)")
        if has_run and not has_checkpoint:
            self.log(f"{self.run_dir}: its earlier run never finished an epoch (no checkpoint); starting it again")
            if self.dist.is_main:
                (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)
            return False
        return resume

    def _setup(self, config: TrainConfig, resume: bool, callbacks: list[Callback]) -> None:
        torch.manual_seed(config.run.seed)
        if self.device.type == "cpu":  # denormal weights and activations slow CPU math by up to 40% late in training
            torch.set_flush_denormal(True)
        self.task = make_task(config, self.run_dir if resume else None)
        if not resume:
            config.follow_data(len(self.task.train[0]))
        for line in self.task.describe():  # where the data came from, and what was chosen from it
            self.log(line)
        self.train_images, self.train_labels = (t.to(self.device) for t in self.task.train)
        self.valid_images, self.valid_labels = self.task.valid
        if config.optim.batch_size % self.dist.world_size:
            raise ConfigError(f"batch_size {config.optim.batch_size} must divide evenly over {self.dist.world_size} "
                              "processes; it is the global batch")
        _check_model_size(self.task)
        torch.manual_seed(config.run.seed)
        self.model = self.task.build_model().to(self.device)
        if self.device.type == "cpu" and any(p.ndim == 4 for p in self.model.parameters()):
            self.model.to(memory_format=torch.channels_last)  # oneDNN's faster layout; the weights save as usual
        self.ddp: torch.nn.Module = self.model
        if self.dist.world_size > 1:
            if self.model.trains_in_one_process:
                raise ConfigError(f"{config.model.model} trains in one process only; run it without torchrun")
            self.ddp = DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda"
                                               else None)
        self.optimizers = self.model.configure_optimizers(config.optim.lr, config.optim.weight_decay)
        self.average = weight_average(self.model, config.optim.ema) if config.optim.ema > 0 else None
        self.loader = BatchLoader(self.train_images, self.train_labels, config.optim.batch_size, shuffle=True,
                                  seed=config.run.seed, drop_last=len(self.train_images) >= config.optim.batch_size,
                                  rank=self.dist.rank, world_size=self.dist.world_size)
        self.steps_per_epoch = len(self.loader)
        self.epoch, self.step = 0, 0  # completed
        self._clock_start: float | None = None
        self._loss_level: float | None = None  # running level of the training loss, to catch explosions
        self.schedulers = [LRSchedule(opt, self._lr_factor) for opt in self.optimizers]
        self.scheduler = self.schedulers[0]
        self.precision, why = training_precision(config.run.precision, self.device)
        self.log(f"precision: {self.precision} ({why})")
        if resume:
            self._resume()
        elif self.dist.is_main:
            self.task.save(self.run_dir)
            atomic_write_text(self.run_dir / "config.json", json.dumps(config.to_dict(), indent=2))
        self.callbacks = [*self.task.callbacks(), *callbacks]
        if self.dist.is_main:
            self.callbacks.insert(0, ProgressLine())
            if config.run.tensorboard and TensorBoard.available():
                self.callbacks.append(TensorBoard(self.run_dir))
            if config.run.mlflow:
                self.callbacks.append(MLflow())

    @property
    def epochs(self) -> int:
        return self.config.optim.epochs

    def _call(self, hook: str, *args: Any) -> None:
        """Each callback's `hook` (a method every Callback declares) with this trainer."""
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def progress(self) -> float:
        """Fraction of training done: of the steps, or of the time budget when `max_minutes` is set."""
        total = max(1, self.config.optim.epochs * self.steps_per_epoch)
        done = self.step / total
        if self.config.optim.max_minutes is not None and self._clock_start is not None:
            done = max(done, (time.perf_counter() - self._clock_start) / (60.0 * self.config.optim.max_minutes))
        return min(done, 1.0)

    def _lr_factor(self) -> float:
        """Cosine decay to 0 over the run (over the time budget when one is set), or constant.

        A finished run extended with `--resume --epochs N` restarts the cosine where it stopped (a warm
        restart): from the share of the base rate that the added epochs are of the new total, down to 0 at
        epoch N, so the rate never jumps back to its peak and never sits at 0 for the new epochs.
        """
        if self.config.optim.schedule == "constant":
            return 1.0
        restart = max(self.config.restarts or [0])
        if restart and self.config.optim.max_minutes is None:
            total, start = self.config.optim.epochs * self.steps_per_epoch, restart * self.steps_per_epoch
            span = max(1, total - start)
            share = (self.config.optim.epochs - restart) / self.config.optim.epochs
            return share * 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, (self.step - start) / span))))
        return 0.5 * (1.0 + math.cos(math.pi * self.progress()))

    def _resume(self) -> None:
        ckpt = latest_checkpoint(self.run_dir)
        if ckpt is None:
            raise RunError(f"{self.run_dir}: no checkpoint to resume from (none finished an epoch); start it again "
                           "without --resume after removing the folder")
        state, progress = read_checkpoint(ckpt)
        load_weights(self.model, ckpt / "model.safetensors")
        load_average(self.average, ckpt)  # under --ema
        if len(state["optimizers"]) != len(self.optimizers) or len(state["schedulers"]) != len(self.schedulers):
            raise RunError(f"{ckpt / 'state.pt'}: holds state for another number of optimizers; delete that "
                           "checkpoint folder to fall back to an older one, or start the run again")
        for opt, saved in zip(self.optimizers, state["optimizers"], strict=True):
            check_optimizer_state(opt, saved, ckpt / "state.pt")
        try:
            for opt, saved in zip(self.optimizers, state["optimizers"], strict=True):
                opt.load_state_dict(saved)
            for sched, saved in zip(self.schedulers, state["schedulers"], strict=True):
                sched.load_state_dict(saved)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise RunError(f"{ckpt / 'state.pt'}: optimizer or scheduler state is malformed ({type(e).__name__}); "
                           "delete that checkpoint folder to fall back to an older one") from None
        self.epoch, self.step = progress["epoch"], progress["step"]
        metrics = self.run_dir / "metrics.jsonl"
        if self.dist.is_main and metrics.is_file():  # drop torn lines, and epochs the kill lost, so none appear twice
            kept = [r for r in read_metrics_lines(metrics) if r.get("epoch", 0) <= self.epoch]
            atomic_write_text(metrics, "".join(json.dumps(r) + "\n" for r in kept))
        if self.dist.is_main:  # config.json says what the run now is (more epochs, a restart, another device)
            atomic_write_text(self.run_dir / "config.json", json.dumps(self.config.to_dict(), indent=2))
        self.log(f"resuming {self.run_dir} after epoch {self.epoch} (step {self.step})")

    def beta_at(self, step: int) -> float:
        """KL weight: 0 while the task delays the KL (its own pre-training), then a linear ramp to beta over
        `kl_warmup` epochs, then beta."""
        step -= self.kl_delay_steps
        if step < 0:
            return 0.0
        warm = self.config.optim.kl_warmup * self.steps_per_epoch
        return self.config.model.beta if warm <= 0 else self.config.model.beta * min(1.0, step / warm)

    @property
    def kl_delay_steps(self) -> int:
        """Steps trained before the KL term is turned on, as the task asks (usually 0)."""
        return int(round(self.task.kl_delay_epochs * self.steps_per_epoch))

    def _diverged(self, what: str, value: float, became: str = "became") -> TrainingDiverged:
        return TrainingDiverged(
            f"{what} {became} {value:.4g} at epoch {self.epoch + 1}, step {self.step + 1}; try a lower --lr (now "
            f"{self.config.optim.lr:g}), a smaller --grad-clip, or --kl-warmup 1; {self._kept()}")

    def _kept(self) -> str:
        """What is left on disk after a stop, truthfully."""
        ckpt = latest_checkpoint(self.run_dir)
        return (f"the last good checkpoint ({ckpt}) is intact" if ckpt else
                "no checkpoint had been written yet, so the same command starts it again")

    def _watch_loss(self, loss: float) -> None:
        """Stop on a NaN/inf loss, or one that exploded to EXPLOSION_FACTOR times its running level."""
        if not math.isfinite(loss):
            raise self._diverged("the training loss", loss)
        level = self._loss_level
        if level is not None and abs(loss) > EXPLOSION_FACTOR * max(level, 1.0):
            raise self._diverged(f"the training loss (running level {level:.4g})", loss, became="exploded to")
        self._loss_level = abs(loss) if level is None else 0.98 * level + 0.02 * abs(loss)

    def _train_epoch(self, deadline: float | None) -> tuple[dict[str, float], bool]:
        cfg = self.config
        self.ddp.train()
        torch.manual_seed(_epoch_seed(cfg.run.seed, self.epoch))
        self.loader.images = self.task.prepare(self.train_images, self.epoch)
        self.loader.set_epoch(self.epoch)
        self._call("on_epoch_start")
        tally, start, timed_out = EpochTally(), time.perf_counter(), False
        for x, y in self.loader:
            result = self.train_step(x, y if cfg.uses_labels else None)
            self.step += 1
            for sched in self.schedulers:
                sched.step()
            self._call("on_step_end", result)
            tally.add(result, len(x))
            if deadline is not None and time.perf_counter() > deadline:
                timed_out = True
                break
        return tally.metrics(time.perf_counter() - start, self.dist.world_size, cfg.optim.grad_skip), timed_out

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> StepResult:
        """One optimizer step of the model's own training step, at the KL weight and precision of this point."""
        ctx = StepContext(self.optimizers, self.ddp, self.beta_at(self.step), self.config.optim.grad_clip,
                          self.precision == "bf16", self._watch_loss, self._diverged, self.config.optim.grad_skip)
        result = self.model.training_step(x, y, ctx)
        if self.average is not None and not result.skipped:
            self.average.update_parameters(self.model)
        return result

    @property
    def evaluated_model(self) -> torch.nn.Module:
        """What validation scores and model.safetensors holds: the weight average under --ema, else the model."""
        return self.average.module if self.average is not None else self.model

    def validate(self) -> dict[str, float]:
        """The model's validation metrics; stops training when its health check fails."""
        model = self.evaluated_model.eval()
        valid = model.validation_metrics(self.valid_images, self.valid_labels, self.device)
        problem = model.health(valid)
        if problem is not None:
            raise TrainingDiverged(f"{problem[0]} at epoch {self.epoch}: {problem[1]}; {self._kept()}")
        bad = [k for k, v in valid.items() if not math.isfinite(v)]
        if bad:
            raise self._diverged(f"the validation {bad[0]}", valid[bad[0]])
        return valid

    def fit(self, on_epoch_end: Callable[[Trainer, dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train until `epochs` (or `max_minutes`), evaluating and checkpointing after each epoch.

        `on_epoch_end(trainer, metrics)` runs on rank 0 after each checkpoint (benchmarks take snapshots there).
        """
        if on_epoch_end is not None and self.dist.is_main:
            self.callbacks.append(EpochHook(on_epoch_end))
        finished = False
        try:
            self._call("on_fit_start")
            result = self._fit()
            finished = True
            return result
        finally:
            self._call("on_fit_end")
            self.close(together=finished)

    def _fit(self) -> dict[str, Any]:
        cfg = self.config
        self._clock_start = time.perf_counter()
        deadline = None if cfg.optim.max_minutes is None else self._clock_start + 60.0 * cfg.optim.max_minutes
        metrics: dict[str, Any] = {}
        if self.epoch >= cfg.optim.epochs:
            self.log(f"{self.run_dir}: already trained for {self.epoch} epochs; raise --epochs to train further")
        while self.epoch < cfg.optim.epochs:
            train_metrics, timed_out = self._train_epoch(deadline)
            self.epoch += 1
            metrics = {"epoch": self.epoch, "step": self.step, "lr": self.scheduler.get_last_lr()[0],
                       "beta": self.beta_at(self.step), **train_metrics}
            if self.dist.is_main:
                metrics.update({f"valid_{k}": v for k, v in self.validate().items()})
                metrics["train_seconds"] = time.perf_counter() - self._clock_start
                with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps(metrics) + "\n")
                self._checkpoint(metrics, complete=not timed_out)
                self._call("on_epoch_end", metrics)
            if self.dist.world_size > 1:
                dist.barrier()
            if timed_out:
                self.log(f"stopped after {cfg.optim.max_minutes:g} minutes (time budget) in epoch {self.epoch}")
                break
        return metrics

    def _checkpoint(self, metrics: dict[str, Any], complete: bool) -> None:
        state = {"optimizers": [opt.state_dict() for opt in self.optimizers],
                 "schedulers": [sched.state_dict() for sched in self.schedulers]}
        progress = {"epoch": self.epoch, "step": self.step, "complete_epoch": complete, "metrics": metrics}
        save_checkpoint(self.run_dir, self.model, state, progress, keep=self.config.run.keep_checkpoints,
                        average=self.average, published=self.evaluated_model)
