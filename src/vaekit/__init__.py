"""vaekit: the variational-autoencoder family as tested mathematics, models and a command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["load", "math"]
__version__ = "0.1.0"


def load(path_or_name: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The trained model of a run directory (`vaekit train` or `vaekit poem train`), or of a model shipped in the
    package by name ("quatrain", "quatrain7", "couplet", "quatrain-themed", "quatrain-recall"), in eval mode."""
    from vaekit.tasks import load as load_run

    return load_run(path_or_name, device)


def __getattr__(name: str) -> Any:
    """`vaekit.math` after a bare `import vaekit`, imported on first use: the command starts without torch."""
    if name == "math":
        import vaekit.math

        return vaekit.math
    raise AttributeError(f"module 'vaekit' has no attribute {name!r}")
