"""vaekit: the variational-autoencoder family as tested mathematics, models and a command line."""

from vaekit import math  # noqa: F401  (so that `vaekit.math.kl_discrete` works after `import vaekit`)

__version__ = "0.1.0"
