"""vaekit: the variational-autoencoder family as tested mathematics, models and a command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vaekit import math  # noqa: F401  (so that `vaekit.math.kl_discrete` works after `import vaekit`)

if TYPE_CHECKING:
    import torch

__all__ = ["load", "math"]
__version__ = "0.1.0"


def load(run_dir: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The trained model of a run directory (`vaekit train` or `vaekit poem train`), in eval mode."""
    from vaekit.tasks import load as load_run

    return load_run(run_dir, device)
