"""The one Trainer for every model: AdamW, clipping, schedule, KL warm-up, checkpoints, resume, DDP.

Each epoch's randomness (shuffle, binarization, reparameterization noise) is keyed on (seed, epoch),
so a run killed and resumed from its last checkpoint ends with the weights an uninterrupted run has.
Under `torchrun --nproc-per-node N` the same code runs DistributedDataParallel: every rank takes its
slice of each global batch, gradients are averaged, rank 0 writes.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from vaekit import kernels
from vaekit.config import ConfigError, TrainConfig
from vaekit.data import BatchLoader
from vaekit.evaluate import elbo_metrics
from vaekit.optim import LRSchedule, Optimizer, adamw
from vaekit.runs import (
    RunError,
    RunLock,
    atomic_write_text,
    check_optimizer_state,
    clean_temporaries,
    latest_checkpoint,
    load_weights,
    prepare_run_dir,
    read_checkpoint,
    read_metrics_lines,
    read_run_config,
    save_checkpoint,
)
from vaekit.tasks import make_task

__all__ = ["TrainingDiverged", "select_device", "Trainer", "resume_config", "COLLAPSE_DIVERSITY"]

COLLAPSE_DIVERSITY = 0.05  # GAN samples varying less than 5% as much as real images: mode collapse
EXPLOSION_FACTOR = 1000.0  # a step loss this many times its running level has diverged, though still finite


class TrainingDiverged(RuntimeError):
    """The loss became NaN, infinite or exploded; the message names the step and what to try."""


def select_device(name: str) -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU; a named device that is absent is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda asked for, but PyTorch sees no CUDA GPU; use --device cpu or auto")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device mps asked for, but this PyTorch has no Apple MPS backend; use --device cpu or auto")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise ConfigError(f"device {name} asked for, but PyTorch sees no CUDA GPU; use --device cpu or auto")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device {name} asked for, but PyTorch sees {count} CUDA GPU(s), numbered from 0")
    elif device.type not in ("cpu", "mps"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


@dataclass
class DistEnv:
    """Where this process stands in a torchrun launch (rank 0 of 1 when run plainly)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def training_precision(setting: str, device: torch.device) -> tuple[str, str]:
    """The precision a training step's products run in on `device`, and why, for the log.

    bf16 autocasts the convolutions and matrix products to bfloat16; the model's heads cast what they return to
    fp32, so every log-density, KL and loss is fp32. "auto" takes bf16 where the device multiplies it in hardware
    (a GPU from Ampere on, a CPU with AMX: on 2 cores of such an Intel Xeon the conv recipe trains 1.96x and the
    ResNet 2.80x as many images a second) and fp32 elsewhere, where bf16 is emulated and no faster. Validation and
    evaluation always run in fp32.
    """
    if setting == "bf16" and device.type not in ("cpu", "cuda"):
        raise ConfigError(f"precision bf16 runs on a CPU or a CUDA GPU, not on {device.type}; use --precision fp32")
    if setting != "auto":
        return setting, "as asked"
    if kernels.native_bf16(device):
        return "bf16", ("this device multiplies bfloat16 in hardware; losses stay fp32, "
                        "--precision fp32 trains every product in fp32")
    return "fp32", "bfloat16 would be emulated here, no faster"


def _init_distributed(device: torch.device) -> tuple[DistEnv, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv(), device
    env = DistEnv(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return env, device


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


class MLflowLogger:
    """The one adapter to an experiment tracker: parameters at the start, numeric metrics each epoch."""

    def __init__(self, config: TrainConfig):
        try:
            import mlflow
        except ImportError:
            raise ConfigError("--mlflow needs the mlflow package: pip install mlflow (or drop --mlflow)") from None
        self.mlflow = mlflow
        mlflow.start_run(run_name=Path(config.run.run_dir).name)
        mlflow.log_params({k: v for k, v in config.flat().items() if isinstance(v, int | float | str | bool)})

    def log_metrics(self, metrics: dict[str, Any], epoch: int) -> None:
        numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and math.isfinite(v)}
        self.mlflow.log_metrics(numbers, step=epoch)

    def finish(self) -> None:
        self.mlflow.end_run()


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


def _duration(seconds: float) -> str:
    """A time left as a person says it: 40 s, 3 min, 1 h 20 min."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {seconds % 3600 / 60:.0f} min"


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63)


class Trainer:
    """Train one model as the config says, writing the run directory; `fit()` returns the last metrics."""

    def __init__(self, config: TrainConfig, resume: bool = False, log: Callable[[str], None] | None = None):
        self.config = config.validate()
        self.run_dir = Path(config.run.run_dir)
        device = select_device(config.run.device)
        self.dist, self.device = _init_distributed(device)
        self.log = log if log is not None else (print if self.dist.is_main else (lambda _msg: None))
        self._lock: RunLock | None = None
        if self.dist.is_main:
            prepare_run_dir(self.run_dir)
            self._lock = RunLock(self.run_dir).acquire()
            clean_temporaries(self.run_dir)
        try:
            resume = self._decide_resume(resume)
            self._setup(config, resume)
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

    def _setup(self, config: TrainConfig, resume: bool) -> None:
        torch.manual_seed(config.run.seed)
        if self.device.type == "cpu":  # denormal weights and activations slow CPU math by up to 40% late in training
            torch.set_flush_denormal(True)
        self.task = make_task(config, self.run_dir if resume else None)
        self.data = getattr(self.task, "data", None)
        if not resume:
            config.follow_data(len(self.task.train[0]))
        if self.data is not None:  # always say where the data came from: a wrong folder must not pass unnoticed
            self.log(f"data: {self.data.name} from {self.data.source} ({len(self.task.train[0]):,} training images, "
                     f"{len(self.task.valid[0]):,} validation)")
            for key, why in (config.chosen or {}).items():
                self.log(f"chose {key} = {config.flat()[key]}: {why}")
            if config.model.likelihood == "bernoulli" and self.data.shape[0] == 3:
                self.log("warning: a Bernoulli likelihood on colour images treats each channel as on/off and "
                         "reconstructions lose their colour; --likelihood discretized_logistic --binarization none "
                         "models them")
        self.train_images = self.task.train[0].to(self.device)
        self.train_labels = self.task.train[1].to(self.device)
        self.valid_images, self.valid_labels = self.task.valid
        if config.optim.batch_size % self.dist.world_size:
            raise ConfigError(f"batch_size {config.optim.batch_size} must divide evenly over {self.dist.world_size} "
                              "processes; it is the global batch")

        _check_model_size(self.task)
        torch.manual_seed(config.run.seed)
        self.model = self.task.build_model().to(self.device)
        if self.device.type == "cpu" and any(p.ndim == 4 for p in self.model.parameters()):
            # oneDNN's convolutions and their gradients run faster on channels-last maps: the conv flagship's bf16
            # step 26.5 -> 20 ms, the ResNet's 279 -> 185 ms (fp32 619 -> 534) on 2 cores; the weights save as usual
            self.model.to(memory_format=torch.channels_last)
        self.ddp: torch.nn.Module = self.model
        if self.dist.world_size > 1:
            if hasattr(self.model, "training_step"):
                raise ConfigError(f"{config.model.model} trains in one process; DDP under torchrun covers the VAE family")
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.model, device_ids=ids)
        self.optimizers = self._optimizers()
        self.optimizer = self.optimizers[0]
        self.loader = BatchLoader(self.train_images, self.train_labels, config.optim.batch_size, shuffle=True,
                                  seed=config.run.seed, drop_last=len(self.train_images) >= config.optim.batch_size,
                                  rank=self.dist.rank, world_size=self.dist.world_size)
        self.steps_per_epoch = len(self.loader)
        self.epoch = 0  # epochs completed
        self.step = 0
        self._clock_start: float | None = None
        self._epochs_timed = 0
        self._loss_level: float | None = None  # running level of the training loss, to catch explosions
        self.schedulers = [LRSchedule(opt, self._lr_factor) for opt in self.optimizers]
        self.scheduler = self.schedulers[0]
        self.precision, why = training_precision(config.run.precision, self.device)
        self.amp = self.precision == "bf16"
        self.log(f"precision: {self.precision} ({why})")
        if resume:
            self._resume()
        elif self.dist.is_main:
            self.task.save(self.run_dir)
            atomic_write_text(self.run_dir / "config.json", json.dumps(config.to_dict(), indent=2))
        self.task_has_images = self.data is not None
        self.writer = self._tensorboard()
        self.mlflow = MLflowLogger(config) if config.run.mlflow and self.dist.is_main else None

    def _optimizers(self) -> list[Optimizer]:
        """AdamW over all parameters, or the model's own optimizers (the GAN has one per network)."""
        lr, wd = self.config.optim.lr, self.config.optim.weight_decay
        if hasattr(self.model, "configure_optimizers"):
            return self.model.configure_optimizers(lr, wd)
        # the fused kernel updates every tensor in one pass: 4x less optimizer time for a small MLP on 2 cores
        return [adamw(self.model.parameters(), lr=lr, weight_decay=wd)]

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

    STEP_LOG_EVERY = 10  # steps between per-step TensorBoard points

    def _log_step(self, loss: float) -> None:
        """Per-step loss and KL to TensorBoard (every STEP_LOG_EVERY steps): the curve an epoch average hides."""
        if self.writer is None or self.step % self.STEP_LOG_EVERY:
            return
        self.writer.add_scalar("step/loss", loss, self.step)
        kl = getattr(self, "_last_kl", None)
        if kl is not None and bool(torch.isfinite(kl).all()):
            self.writer.add_scalar("step/kl", float(kl.float().mean()), self.step)
        self.writer.add_scalar("step/lr", self.scheduler.get_last_lr()[0], self.step)

    def _log_images(self) -> None:
        """Per-epoch samples (and reconstructions) to TensorBoard, as the figures draw them."""
        from vaekit.plots import image_grid

        if self.writer is None or not hasattr(self.model, "sample"):
            return
        self.model.eval()
        with torch.no_grad():
            grids = {"samples": self.model.sample(16).cpu()}
            if self.config.model.model != "gan":
                x, y = self.valid_images[:8].to(self.device), self.valid_labels[:8].to(self.device)
                recon = self.model.reconstruct(x, y if self.config.uses_labels else None).cpu()
                grids["reconstructions"] = torch.cat([x.cpu(), recon])
        for tag, images in grids.items():
            picture = torch.from_numpy(np.array(image_grid(images, nrow=8).convert("RGB"))).permute(2, 0, 1)
            self.writer.add_image(tag, picture, self.epoch)

    def _tensorboard(self) -> Any:
        if not (self.config.run.tensorboard and self.dist.is_main):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is an optional extra
            return None
        writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        writer.add_text("config", "```\n" + json.dumps(self.config.to_dict(), indent=2) + "\n```", self.epoch)
        return writer

    def beta_at(self, step: int) -> float:
        """KL weight: 0 for `ae_pretrain` epochs, then a linear ramp to beta over `kl_warmup` epochs, then beta."""
        step -= self.pretrain_steps
        if step < 0:
            return 0.0
        warm = self.config.optim.kl_warmup * self.steps_per_epoch
        return self.config.model.beta if warm <= 0 else self.config.model.beta * min(1.0, step / warm)

    @property
    def pretrain_steps(self) -> int:
        """Steps trained as an autoencoder before the KL term is turned on (Li et al. 2019)."""
        poem = self.config.poem
        return int(round((poem.ae_pretrain if poem is not None else 0.0) * self.steps_per_epoch))

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
        show = self.dist.is_main and sys.stderr.isatty()
        bar = None
        if show:
            from tqdm import tqdm
            bar = tqdm(total=self.steps_per_epoch, desc=f"epoch {self.epoch + 1}/{cfg.optim.epochs}", leave=False)
        total_loss, total_bound, seen, start = 0.0, 0.0, 0, time.perf_counter()
        timed_out = False
        custom_step = getattr(self.model, "training_step", None)
        uses_labels = cfg.uses_labels
        for x, y in self.loader:
            y_in = y if uses_labels else None
            if custom_step is not None:
                step_metrics = custom_step(x, y_in, self.optimizers, cfg.optim.grad_clip, amp=self.amp)
                loss_value, bound_sum = step_metrics["loss"], 0.0
                self._watch_loss(loss_value)
            else:
                loss_value, bound_sum = self._step(x, y_in)
            self._log_step(loss_value)
            self.step += 1
            if self.step == self.pretrain_steps and hasattr(self.model, "reset_decoder"):
                self.model.reset_decoder()  # the encoder keeps what it learned; the decoder starts again
            for sched in self.schedulers:
                sched.step()
            total_loss += loss_value * len(x)
            total_bound += bound_sum
            seen += len(x)
            if bar is not None:
                rate = seen * self.dist.world_size / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix(loss=f"{loss_value:.2f}", img_s=f"{rate:,.0f}")
                bar.update(1)
            if deadline is not None and time.perf_counter() > deadline:
                timed_out = True
                break
        if bar is not None:
            bar.close()
        seconds = time.perf_counter() - start
        return {"train_loss": total_loss / max(seen, 1), "train_bound": total_bound / max(seen, 1),
                "images_per_s": seen * self.dist.world_size / max(seconds, 1e-9), "epoch_seconds": seconds}, timed_out

    def _step(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[float, float]:
        """One optimizer step on the shared objective; returns (loss, sum of the batch's bound)."""
        cfg = self.config
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            terms = self.ddp(x, y, beta=self.beta_at(self.step))
        loss = terms.loss
        loss_value = float(loss.detach())
        self._watch_loss(loss_value)
        self._last_kl = terms.kl.detach()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
            if not torch.isfinite(norm):
                raise self._diverged("the gradient norm", float(norm))
        self.optimizer.step()
        return loss_value, float(terms.elbo.detach().sum())

    def validate(self) -> dict[str, float]:
        """Validation metrics: ELBO terms for the VAE family, discriminator and diversity checks for a GAN."""
        self.model.eval()
        if hasattr(self.model, "validation_metrics"):
            valid = self.model.validation_metrics(self.valid_images, self.valid_labels, self.device)
            if valid["sample_diversity"] < COLLAPSE_DIVERSITY:
                raise TrainingDiverged(
                    f"mode collapse at epoch {self.epoch}: samples vary {valid['sample_diversity']:.3f}x as much as "
                    f"real images; try a lower --lr (now {self.config.optim.lr:g}), a larger --latent-dim, or "
                    f"another --seed; {self._kept()}")
            if valid["discriminator_accuracy"] > 0.999 and valid["fake_logit"] < -15:
                raise TrainingDiverged(
                    f"the discriminator won at epoch {self.epoch} (accuracy {valid['discriminator_accuracy']:.3f}): "
                    f"the generator gets no gradient; try a lower --lr or --grad-clip 1; {self._kept()}")
            return valid
        return elbo_metrics(self.model, self.valid_images, self.valid_labels, device=self.device)

    def fit(self, on_epoch_end: Callable[[Trainer, dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train until `epochs` (or `max_minutes`), evaluating and checkpointing after each epoch.

        `on_epoch_end(trainer, metrics)` runs on rank 0 after each checkpoint (benchmarks take snapshots there).
        """
        finished = False
        try:
            result = self._fit(on_epoch_end)
            finished = True
            return result
        finally:
            if self.writer is not None:
                self.writer.close()
            if self.mlflow is not None:
                self.mlflow.finish()
            self.close(together=finished)

    def _fit(self, on_epoch_end: Callable[[Trainer, dict[str, Any]], None] | None) -> dict[str, Any]:
        cfg = self.config
        self._clock_start = time.perf_counter()
        deadline = None if cfg.optim.max_minutes is None else self._clock_start + 60.0 * cfg.optim.max_minutes
        metrics: dict[str, Any] = {}
        if self.epoch >= cfg.optim.epochs:
            self.log(f"{self.run_dir}: already trained for {self.epoch} epochs; raise --epochs to train further")
        self._epochs_timed = 0  # epochs trained in this process: the time left is estimated from them
        while self.epoch < cfg.optim.epochs:
            train_metrics, timed_out = self._train_epoch(deadline)
            self.epoch += 1
            self._epochs_timed += 1
            metrics = {"epoch": self.epoch, "step": self.step, "lr": self.scheduler.get_last_lr()[0],
                       "beta": self.beta_at(self.step), **train_metrics}
            if self.dist.is_main:
                valid = self.validate()
                metrics.update({f"valid_{k}": v for k, v in valid.items()})
                bad = [k for k, v in valid.items() if not math.isfinite(v)]
                if bad:
                    raise self._diverged(f"the validation {bad[0]}", valid[bad[0]])
                metrics["train_seconds"] = time.perf_counter() - self._clock_start
                self._record(metrics)
                self._checkpoint(metrics, complete=not timed_out)
                if on_epoch_end is not None:
                    on_epoch_end(self, metrics)
            if self.dist.world_size > 1:
                dist.barrier()
            if timed_out:
                self.log(f"stopped after {cfg.optim.max_minutes:g} minutes (time budget) in epoch {self.epoch}")
                break
        return metrics

    def _record(self, metrics: dict[str, Any]) -> None:
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(metrics) + "\n")
        if self.mlflow is not None:
            self.mlflow.log_metrics(metrics, self.epoch)
        if self.writer is not None:
            for key, value in metrics.items():
                if key != "epoch" and isinstance(value, int | float) and math.isfinite(value):
                    self.writer.add_scalar(key, value, self.epoch)
            if self.task_has_images:
                self._log_images()
            self.writer.flush()
        if "valid_sample_diversity" in metrics:
            summary = (f"discriminator accuracy {metrics['valid_discriminator_accuracy']:.2f}  "
                       f"sample diversity {metrics['valid_sample_diversity']:.2f}")
        elif "valid_elbo" in metrics:
            summary = f"valid elbo {metrics['valid_elbo']:.2f} nats"
        else:
            summary = f"valid log-likelihood {metrics['valid_log_likelihood']:.2f} nats"
        left = ""
        if self.epoch < self.config.optim.epochs and self._epochs_timed:
            seconds = (time.perf_counter() - self._clock_start) / self._epochs_timed * (self.config.optim.epochs
                                                                                       - self.epoch)
            if self.config.optim.max_minutes is not None:  # the time budget ends the run first
                seconds = min(seconds, 60.0 * self.config.optim.max_minutes - (time.perf_counter() - self._clock_start))
            left = f"  about {_duration(seconds)} left"
        stride = -(-self.config.optim.epochs // 25) if self.config.optim.epochs > 50 else 1  # about 25 lines a run
        if self.epoch % stride == 0 or self.epoch == self.config.optim.epochs:
            self.log(f"epoch {self.epoch}/{self.config.optim.epochs}  loss {metrics['train_loss']:.2f}  {summary}"
                     f"  {metrics['images_per_s']:,.0f} img/s{left}")

    def _checkpoint(self, metrics: dict[str, Any], complete: bool) -> None:
        state = {"optimizers": [opt.state_dict() for opt in self.optimizers],
                 "schedulers": [sched.state_dict() for sched in self.schedulers]}
        progress = {"epoch": self.epoch, "step": self.step, "complete_epoch": complete, "metrics": metrics}
        save_checkpoint(self.run_dir, self.model, state, progress, keep=self.config.run.keep_checkpoints)
