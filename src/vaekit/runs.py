"""The run directory on disk: atomic writes, checkpoints, locks. It knows files, not models (`vaekit.load`,
which rebuilds a model from a run, lives with the tasks).

    runs/NAME/config.json          every setting (JSON: configs are never pickled)
    runs/NAME/model.safetensors    the latest weights
    runs/NAME/metrics.jsonl        one line of metrics per epoch
    runs/NAME/checkpoints/epoch-000N/{model.safetensors, state.pt, progress.json}, and `latest`
    runs/NAME/figures/             PNGs

A checkpoint directory is written under a temporary name and renamed into place, so a kill at any
moment leaves the previous checkpoint whole; optimizer state is read back with `weights_only=True`.
"""

from __future__ import annotations

import functools
import json
import math
import os
import pickle
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vaekit.optim import Optimizer

__all__ = ["RUN_FORMAT", "RUN_FORMATS", "RunError", "RunLock", "atomic_write_text", "atomic_save_tensors",
           "atomic_save_weights", "save_checkpoint", "latest_checkpoint", "read_checkpoint", "read_run_config",
           "load_weights", "load_average", "prepare_run_dir", "clean_temporaries", "check_optimizer_state",
           "read_metrics_lines", "new_temporary"]

RUN_FORMAT = "vaekit-run/2"  # nested settings; format 1 (flat, before 2026-11-25) is still read
RUN_FORMATS = ("vaekit-run/1", RUN_FORMAT)


class RunError(ValueError):
    """A run directory or checkpoint that cannot be used; the message names the file and the fix."""


class RunLock:
    """An exclusive lock on a run directory (`flock` on RUN/.lock): one process writes a run at a time.

    The kernel releases it when the process dies, however it dies, so a killed run never leaves it stale.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self._file: Any = None

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # not POSIX: no advisory locks, so nothing is enforced
            return self
        f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (kept open while the lock is held)
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            owner = f.read().strip() or "unknown"
            f.close()
            raise RunError(f"{self.path.parent} is in use by another vaekit process (pid {owner}); wait for it to "
                           "finish, or choose another --run-dir") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None


def prepare_run_dir(run_dir: Path) -> None:
    """Create the run directory, or say in one sentence why it cannot be used."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"{run_dir}: is a file, not a folder; choose another --run-dir")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"{run_dir}: cannot create the run directory ({e.strerror}); choose another --run-dir") from None
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise RunError(f"{run_dir}: not writable by this user; choose another --run-dir or fix its permissions")


_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}$")  # what tempfile.mkstemp(prefix=".NAME.") leaves behind


def clean_temporaries(run_dir: Path) -> list[Path]:
    """Remove temporary files and folders left by a process killed mid-write; call it holding the run's lock."""
    removed = []
    for folder in (run_dir, run_dir / "checkpoints", run_dir / "figures"):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.name.startswith(".tmp-epoch-") and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
            elif _TEMPORARY.match(path.name) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def read_metrics_lines(path: Path) -> list[dict[str, Any]]:
    """The epochs recorded in metrics.jsonl; a line torn by a kill during the append is skipped."""
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@functools.cache
def _umask() -> int:
    mask = os.umask(0o022)  # reading the mask means setting it: put it straight back
    os.umask(mask)
    return mask


def new_temporary(parent: Path, prefix: str, directory: bool = False) -> Path:
    """A new hidden file (or folder) in `parent` with the mode a plain open() (or mkdir) would give it.

    tempfile makes them private (0600, 0700), and that mode would outlive the rename into place: a user's group
    could no longer read the run's weights, metrics or figures.
    """
    if directory:
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    else:
        fd, name = tempfile.mkstemp(dir=parent, prefix=prefix)
        os.close(fd)
        tmp = Path(name)
    _plain_mode(tmp)
    return tmp


def _plain_mode(path: Path) -> None:
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~_umask())


def _atomic_replace(path: Path, write: Callable[[str], None]) -> None:
    """Have `write` fill a temporary file beside `path`, fsync it, and rename it over `path`.

    A reader sees the old file or the new one, never half of either, whatever moment a kill lands.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(new_temporary(path.parent, f".{path.name}."))
    try:
        write(tmp)
        _plain_mode(Path(tmp))  # again: safetensors' save_file recreates the file private
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8) atomically."""
    _atomic_replace(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Replace `path` with the tensors as safetensors, atomically."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    _atomic_replace(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def atomic_save_weights(model: torch.nn.Module, path: Path, metadata: dict[str, str] | None = None,
                        dtype: torch.dtype | None = None) -> None:
    """Replace `path` with the model's state dict as safetensors, atomically (floating tensors cast to `dtype` if
    given: the shipped classifiers are stored in float16, within the package's 30 MB weights budget)."""
    state = model.state_dict()
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    atomic_save_tensors(state, path, metadata)


def round_weights(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Round the model's floating parameters and buffers through `dtype` in place, so that what is measured is
    what a copy stored in `dtype` will compute."""
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.is_floating_point():
                t.copy_(t.to(dtype))


def save_checkpoint(run_dir: Path, model: torch.nn.Module, state: dict[str, Any], progress: dict[str, Any],
                    keep: int = 2, average: torch.nn.Module | None = None,
                    published: torch.nn.Module | None = None) -> Path:
    """Write checkpoints/epoch-N whole (temp dir + rename), point `latest` at it, refresh model.safetensors (from
    `published` if given: a weight average's model). `average`, the weight average with its count, is kept beside
    the raw weights so that a resumed run goes on averaging where it stopped."""
    ckpt_root = run_dir / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    for stale in ckpt_root.glob(".tmp-epoch-*"):  # left by a process killed while writing
        shutil.rmtree(stale, ignore_errors=True)
    name = f"epoch-{progress['epoch']:04d}"
    tmp = new_temporary(ckpt_root, f".tmp-{name}-", directory=True)
    try:
        atomic_save_weights(model, tmp / "model.safetensors")
        if average is not None:
            atomic_save_weights(average, tmp / "average.safetensors")
        torch.save(state, tmp / "state.pt")
        atomic_write_text(tmp / "progress.json", json.dumps(progress, indent=2))
        final = ckpt_root / name
        if final.exists():  # a re-run of the same epoch after a resume: replace it only once the new one is whole
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(ckpt_root)
    atomic_write_text(ckpt_root / "latest", name + "\n")
    atomic_save_weights(published if published is not None else model, run_dir / "model.safetensors",
                        metadata={"epoch": str(progress["epoch"])})
    older = sorted(p for p in ckpt_root.glob("epoch-*") if p.is_dir() and p.name != name)
    for old in older[: max(0, len(older) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The directory `checkpoints/latest` names, or None when the run has none yet."""
    pointer = run_dir / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    path = run_dir / "checkpoints" / pointer.read_text().strip()
    if not path.is_dir():
        raise RunError(f"{pointer} names {path.name}, which is missing; the run directory was edited by hand")
    return path


def read_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(optimizer/scheduler state, progress) of one checkpoint directory; state loaded with weights_only=True."""
    fix = "delete that folder to fall back to an older one, or start the run again"
    try:
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
        progress = json.loads((path / "progress.json").read_text())
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError, UnicodeDecodeError) as e:
        raise RunError(f"{path}: checkpoint is unreadable ({type(e).__name__}); {fix}") from None
    if not (isinstance(state, dict) and isinstance(state.get("optimizers"), list)
            and isinstance(state.get("schedulers"), list)):
        raise RunError(f"{path / 'state.pt'}: not a vaekit checkpoint (no optimizer and scheduler state); {fix}")
    if not (isinstance(progress, dict) and all(isinstance(progress.get(k), int) and not isinstance(progress[k], bool)
                                               and progress[k] >= 0 for k in ("epoch", "step"))):
        raise RunError(f"{path / 'progress.json'}: lacks a whole-number epoch and step; {fix}")
    return state, progress


def check_optimizer_state(optimizer: Optimizer, saved: Any, source: Path) -> None:
    """Refuse saved optimizer state that does not fit the optimizer's parameters.

    `weights_only=True` checks types only; a moment tensor of the wrong shape would make the fused AdamW
    kernel write out of bounds, so every tensor is checked against its parameter before loading.
    """
    def bad(what: str) -> RunError:
        return RunError(f"{source}: optimizer state does not fit this model ({what}); delete that checkpoint "
                        "folder to fall back to an older one, or start the run again")

    if not (isinstance(saved, dict) and isinstance(saved.get("state"), dict)
            and isinstance(saved.get("param_groups"), list)):
        raise bad("not an optimizer state dict")
    groups = optimizer.param_groups
    if len(saved["param_groups"]) != len(groups):
        raise bad(f"{len(saved['param_groups'])} parameter groups for {len(groups)}")
    params: dict[Any, torch.Tensor] = {}
    for mine, theirs in zip(groups, saved["param_groups"], strict=True):
        ids = theirs.get("params") if isinstance(theirs, dict) else None
        if not isinstance(ids, list) or len(ids) != len(mine["params"]):
            raise bad("parameter lists of another length")
        for key, value in theirs.items():
            if key != "params" and isinstance(mine.get(key), float) and (
                    not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value)):
                raise bad(f"hyperparameter {key} = {value!r}")
        params.update(zip(ids, mine["params"], strict=True))
    for pid, entry in saved["state"].items():
        if pid not in params or not isinstance(entry, dict):
            raise bad(f"state for unknown parameter {pid!r}")
        param = params[pid]
        for name, value in entry.items():
            if not isinstance(value, torch.Tensor):
                continue
            if value.dim() == 0:  # the step count
                if not torch.isfinite(value.float()):
                    raise bad(f"{name} of parameter {pid} is not finite")
            elif value.shape != param.shape or value.dtype != param.dtype:
                raise bad(f"{name} of parameter {pid} has shape {tuple(value.shape)} {value.dtype}, "
                          f"the parameter {tuple(param.shape)} {param.dtype}")


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The settings a run was trained with, checked to be a vaekit run's."""
    path = Path(run_dir) / "config.json"
    if not Path(run_dir).is_dir():
        raise RunError(f"{run_dir}: no such run directory; train one with `vaekit train --run-dir {run_dir}`")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path}: missing; {run_dir} is not a vaekit run (train one with `vaekit train`)") from None
    except json.JSONDecodeError as e:
        raise RunError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); restore it or retrain") from None
    except (OSError, UnicodeDecodeError, RecursionError) as e:
        raise RunError(f"{path}: cannot be read ({type(e).__name__}); restore it or retrain") from None
    if not isinstance(data, dict) or data.get("format") not in RUN_FORMATS:
        raise RunError(f"{path}: not a vaekit run config (expected format {RUN_FORMAT!r}); "
                       "point to a directory written by `vaekit train`")
    return data


def load_average(average: torch.nn.Module | None, checkpoint: Path) -> None:
    """Load a checkpoint's weight average (and its count) into `average` (None: the run keeps none), refusing a
    checkpoint without one."""
    if average is None:
        return
    if not (checkpoint / "average.safetensors").is_file():
        raise RunError(f"{checkpoint}: holds no weight average, so this run was not trained with --ema; resume it "
                       "without --ema (or with the value in its config.json)")
    load_weights(average, checkpoint / "average.safetensors")


def load_weights(model: torch.nn.Module, path: Path) -> None:
    """Load safetensors weights into `model`, refusing files that do not match its architecture."""
    try:
        tensors = load_file(str(path))
    except FileNotFoundError:
        raise RunError(f"{path}: missing; the run has not finished an epoch yet (or resume it with --resume)") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise RunError(f"{path}: not a readable safetensors file ({e}); restore it from checkpoints/ or retrain") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape)
    if missing or unexpected or wrong:
        detail = (missing and f"missing {missing[:3]}") or (unexpected and f"unexpected {unexpected[:3]}") or \
            f"shape of {wrong[:3]}"
        raise RunError(f"{path}: weights do not match the model in config.json ({detail}); "
                       "they come from another run or version, so point to the run that wrote them")
    model.load_state_dict(tensors)
