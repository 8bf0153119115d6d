"""Where training runs: the device asked for, the process's place in a torchrun launch, and the precision of a
training step's products on that device."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from vaekit import kernels
from vaekit.config import ConfigError

__all__ = ["select_device", "DistEnv", "training_precision", "init_distributed"]


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
    (a GPU from Ampere on, a CPU with AMX or AVX-512 BF16; docs/benchmarks.md measures the gain) and fp32
    elsewhere, where bf16 is emulated and no faster. Validation and evaluation always run in fp32.
    """
    if setting == "bf16" and device.type not in ("cpu", "cuda"):
        raise ConfigError(f"precision bf16 runs on a CPU or a CUDA GPU, not on {device.type}; use --precision fp32")
    if setting != "auto":
        return setting, "as asked"
    if kernels.native_bf16(device):
        return "bf16", ("this device multiplies bfloat16 in hardware; losses stay fp32, "
                        "--precision fp32 trains every product in fp32")
    return "fp32", "bfloat16 would be emulated here, no faster"


def init_distributed(device: torch.device) -> tuple[DistEnv, torch.device]:
    """This process's place in a torchrun launch (joining the process group), and its device (a GPU a rank)."""
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
