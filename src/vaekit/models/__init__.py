"""The model family over one interface: posterior(x, y), prior(y), likelihood(z, y)."""

from __future__ import annotations

from vaekit.models.autoencoder import Autoencoder
from vaekit.models.config import CONDITIONINGS, KL_ESTIMATORS, MODELS, ModelConfig
from vaekit.models.cvae import CVAE
from vaekit.models.gan import GAN, NoEncoderError
from vaekit.models.hvae import HVAE
from vaekit.models.vae import VAE

__all__ = ["MODELS", "CONDITIONINGS", "KL_ESTIMATORS", "ModelConfig", "VAE", "Autoencoder", "CVAE", "GAN", "HVAE",
           "NoEncoderError",
           "build_model"]


def build_model(config: ModelConfig) -> VAE | GAN | HVAE:
    """The model that `config.model` names (iwae is a VAE trained on the importance-weighted bound)."""
    classes = {"ae": Autoencoder, "vae": VAE, "iwae": VAE, "cvae": CVAE, "gan": GAN, "hvae": HVAE}
    if config.model not in classes:
        raise ValueError(f"model must be one of {MODELS}, got {config.model!r}")
    return classes[config.model](config)
