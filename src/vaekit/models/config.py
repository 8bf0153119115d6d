"""What defines a model: saved as JSON in the run directory, so `vaekit.load` can rebuild it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["MODELS", "CONDITIONINGS", "KL_ESTIMATORS", "NORMS", "IMAGE_PRIORS", "ModelConfig", "label_in_networks",
           "label_in_prior"]

MODELS = ("ae", "vae", "iwae", "cvae", "gan", "hvae")
CONDITIONINGS = ("input", "prior", "both")
KL_ESTIMATORS = ("analytic", "mc")
NORMS = ("none", "batch")  # normalisation in the conv nets
IMAGE_PRIORS = ("standard", "vamp")


def label_in_networks(conditioning: str) -> bool:
    """Whether a conditioning scheme feeds the label to encoder and decoder (input, both)."""
    return conditioning in ("input", "both")


def label_in_prior(conditioning: str) -> bool:
    """Whether a conditioning scheme gives each label its own prior mean (prior, both)."""
    return conditioning in ("prior", "both")


@dataclass
class ModelConfig:
    """The network and objective of one model; `beta` > 1 makes a beta-VAE, `k` is IWAE's sample count."""

    model: str = "vae"
    arch: str = "conv"
    latent_dim: int = 16
    hidden: list[int] = field(default_factory=lambda: [512, 256])
    width: int = 64
    norm: str = "none"
    likelihood: str = "bernoulli"
    gaussian_scale: float = 0.1
    learn_scale: bool = False
    scale_per: str = "image"
    image_shape: tuple[int, int, int] | None = (1, 28, 28)  # a run's config: None until its data fills it in
    num_classes: int | None = 10
    conditioning: str = "both"  # a CVAE's label: into encoder, decoder and prior (see vaekit.models.cvae)
    conditional: bool = False
    beta: float = 1.0
    kl: str = "analytic"
    k: int = 5
    groups: list[int] = field(default_factory=lambda: [2, 2])  # hvae: groups a resolution, coarsest first (1/4, 1/2)
    kl_balance: bool = False  # hvae: NVAE's KL balancing of the groups during the KL warm-up
    prior: str = "standard"  # standard: N(0, I); vamp: the VampPrior, a mixture of the posteriors of pseudo-inputs
    pseudo_inputs: int = 500  # the VampPrior's K learned pseudo-inputs (Tomczak & Welling 2018)

    @property
    def conditional_gan(self) -> bool:
        """A GAN that sees the label (a cGAN)."""
        return self.model == "gan" and self.conditional

    @property
    def uses_labels(self) -> bool:
        """Whether training and sampling take the label y."""
        return self.model == "cvae" or self.conditional_gan

    def check_label(self, label: int | None) -> None:
        """Refuse a label for an unconditional model, or one outside 0..num_classes-1."""
        if label is None:
            return
        if not self.uses_labels:
            raise ValueError(f"--label needs a conditional model (cvae, or gan --conditional); this is a {self.model}")
        if not 0 <= label < self.num_classes:
            raise ValueError(f"label must be in 0..{self.num_classes - 1}, got {label}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if kwargs.get("image_shape") is not None:
            kwargs["image_shape"] = tuple(kwargs["image_shape"])
        return cls(**kwargs)
