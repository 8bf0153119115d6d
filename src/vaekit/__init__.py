"""vaekit: the variational-autoencoder family as tested mathematics, models and a command line."""

from vaekit import math  # noqa: F401  (so that `vaekit.math.kl_discrete` works after `import vaekit`)
from vaekit.runs import load

__all__ = ["load", "math"]
__version__ = "0.1.0"
