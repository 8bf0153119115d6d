"""AdamW and the learning-rate schedule the Trainer steps, without `torch.optim`'s start-up cost.

Every `torch.optim` optimizer imports `torch._dynamo` on construction (its methods are wrapped to keep
the compiler out), about a second of pure Python on a 2-core CPU: a fifth of a one-epoch MLP run.
`FusedAdamW` is the same update, computed by the same fused kernel `torch.optim.AdamW(fused=True)` calls
(`torch._fused_adamw_`), with the same state dict, so checkpoints move freely between the two; where that
kernel is missing (another device, another torch), `adamw()` returns `torch.optim.AdamW` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import torch
from torch import Tensor

__all__ = ["FusedAdamW", "LRSchedule", "adamw", "Optimizer", "weight_average"]

FUSED_DEVICES = ("cpu", "cuda")


class Optimizer(Protocol):
    """What the Trainer needs of an optimizer; `FusedAdamW` and every `torch.optim` optimizer have it."""

    param_groups: list[dict[str, Any]]

    def step(self) -> Any: ...  # noqa: D102

    def zero_grad(self, set_to_none: bool = True) -> None: ...  # noqa: D102

    def state_dict(self) -> dict[str, Any]: ...  # noqa: D102

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...  # noqa: D102


def _fusable(p: Tensor) -> bool:
    """Whether torch's fused AdamW kernel updates this parameter: floating point, on a CPU or CUDA device."""
    return p.device.type in FUSED_DEVICES and p.is_floating_point()


class FusedAdamW:
    """AdamW (Loshchilov & Hutter 2019) over parameters on a CPU or CUDA device, by torch's fused kernel."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2):
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay, "amsgrad": False,
                    "foreach": None, "maximize": False, "capturable": False, "differentiable": False,
                    "fused": True, "decoupled_weight_decay": True}
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = []
        for group in groups:
            group = {**defaults, **group, "params": list(group["params"])}
            for p in group["params"]:
                if not _fusable(p):
                    raise ValueError(f"FusedAdamW takes floating-point parameters on {FUSED_DEVICES}, got {p.device} "
                                     f"{p.dtype}; use torch.optim.AdamW")
            self.param_groups.append(group)
        self.state: dict[Tensor, dict[str, Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (set them to None, or zero them in place)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    def _state(self, p: Tensor) -> dict[str, Tensor]:
        state = self.state.get(p)
        if state is None:  # the layout torch.optim.AdamW(fused=True) creates: a float32 step on the device
            state = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                     "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                     "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
            self.state[p] = state
        return state

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient; the kernel groups tensors by device and dtype."""
        for group in self.param_groups:
            buckets: dict[tuple[torch.device, torch.dtype], list[list[Tensor]]] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("AdamW does not support sparse gradients")
                state = self._state(p)
                lists = buckets.setdefault((p.device, p.dtype), [[], [], [], [], []])
                for dest, value in zip(lists, (p, p.grad, state["exp_avg"], state["exp_avg_sq"], state["step"]),
                                       strict=True):
                    dest.append(value)
            beta1, beta2 = group["betas"]
            for params, grads, exp_avgs, exp_avg_sqs, steps in buckets.values():
                torch._foreach_add_(steps, 1)
                torch._fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, [], steps, lr=float(group["lr"]),
                                    beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                                    amsgrad=False, maximize=False)

    def state_dict(self) -> dict[str, Any]:
        """torch.optim's layout: state keyed by the parameter's index over all groups, groups listing indices."""
        index: dict[Tensor, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(p, len(index))
                ids.append(index[p])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {index[p]: dict(s) for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take state written by this class or by torch.optim.AdamW; tensors move to each parameter's device.

        Shapes are the caller's to check first (`runs.check_optimizer_state`): a wrong one fails here.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("the state dict holds another number of parameter groups")
        by_id: dict[Any, Tensor] = {}
        for mine, theirs in zip(self.param_groups, saved_groups, strict=True):
            if len(theirs["params"]) != len(mine["params"]):
                raise ValueError("a parameter group of another size")
            by_id.update(zip(theirs["params"], mine["params"], strict=True))
        new_state: dict[Tensor, dict[str, Tensor]] = {}
        for pid, entry in state_dict["state"].items():
            p = by_id[pid]
            step = torch.as_tensor(entry["step"], dtype=torch.float32).to(p.device).reshape(())
            moments = {}
            for name in ("exp_avg", "exp_avg_sq"):
                value = entry[name]
                if value.shape != p.shape:
                    raise ValueError(f"{name} of shape {tuple(value.shape)} for a parameter of {tuple(p.shape)}")
                # in the parameter's own layout: the fused kernel walks the memory of all four tensors alike, so
                # contiguous moments beside a channels-last parameter would update the wrong elements
                moments[name] = torch.empty_like(p, memory_format=torch.preserve_format).copy_(value)
            new_state[p] = {"step": step.clone(), **moments}
        for mine, theirs in zip(self.param_groups, saved_groups, strict=True):
            for key, value in theirs.items():
                if key in ("lr", "eps", "weight_decay", "initial_lr"):
                    mine[key] = float(value)
                elif key == "betas":
                    mine[key] = (float(value[0]), float(value[1]))
        self.state = new_state


def adamw(params: Iterable[Tensor], lr: float, weight_decay: float,
          betas: tuple[float, float] = (0.9, 0.999)) -> Optimizer:
    """vaekit's AdamW: `FusedAdamW` where torch's fused kernel serves every parameter, else `torch.optim.AdamW`."""
    params = list(params)
    if hasattr(torch, "_fused_adamw_") and all(_fusable(p) for p in params):
        return FusedAdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)


def weight_average(model: torch.nn.Module, decay: float) -> torch.nn.Module:
    """An exponential moving average of the model's weights and buffers (torch's AveragedModel): evaluated and
    published instead of the raw weights, as Efficient-VDVAE does, it smooths out the last steps' noise.
    `update_parameters(model)` after each step; the average itself is `.module`."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


class LRSchedule:
    """Sets every group's rate to its initial rate times `factor()` at each step (what LambdaLR does).

    `factor` reads the Trainer's own progress, so the schedule's state is only the initial rates.
    """

    def __init__(self, optimizer: Optimizer, factor: Callable[[], float]):
        self.optimizer, self.factor = optimizer, factor
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.step()

    def step(self) -> None:
        """Apply the factor for the step about to be taken."""
        f = self.factor()
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * f

    def get_last_lr(self) -> list[float]:
        """The rates in force, one per parameter group."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """The initial rates (LambdaLR's `base_lrs` key, so either reads the other's checkpoints)."""
        return {"base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the initial rates of a resumed run; the rate in force is the one the optimizer state restored."""
        base = state["base_lrs"]
        if len(base) != len(self.base_lrs):
            raise ValueError("the schedule state holds another number of parameter groups")
        self.base_lrs = [float(b) for b in base]
        for group, b in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["initial_lr"] = b
