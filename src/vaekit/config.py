"""Every training setting in one flat dataclass: the CLI flags, the TOML config file and config.json share its keys.

Bad values raise `ConfigError` with one sentence naming the setting and what it accepts.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from vaekit.data import BINARIZATIONS, DATASETS
from vaekit.data.poetry import FORMS
from vaekit.models import CONDITIONINGS, KL_ESTIMATORS, MODELS, ModelConfig
from vaekit.models.likelihoods import IMAGE_LIKELIHOODS
from vaekit.models.nets import ARCHS
from vaekit.runs import RUN_FORMAT

__all__ = ["ConfigError", "TrainConfig", "SCHEDULES", "DEVICES", "load_config_file"]

SCHEDULES = ("cosine", "constant")
TASKS = ("images", "poem")
DEVICES = ("auto", "cpu", "cuda", "mps")


class ConfigError(ValueError):
    """A setting with a bad value, or a config file that cannot be used."""


@dataclass
class TrainConfig:
    """A training run: data, model, objective, optimisation and bookkeeping."""

    run_dir: str = "runs/vae"
    # data
    dataset: str = "mnist"
    data_dir: str | None = None
    image_size: int = 28
    channels: int = 1
    binarization: str | None = None  # dynamic for the VAE family, none for the GAN (it generates grey levels)
    train_size: int | None = None
    eval_size: int | None = None
    # model (see vaekit.models.ModelConfig)
    model: str = "vae"
    arch: str = "conv"
    latent_dim: int = 16
    hidden: list[int] = field(default_factory=lambda: [512, 256])
    width: int = 64
    likelihood: str = "bernoulli"
    gaussian_scale: float = 0.1
    learn_scale: bool = False
    conditioning: str = "input"
    conditional: bool = False
    beta: float = 1.0
    kl: str = "analytic"
    k: int = 5
    # optimisation
    epochs: int = 10
    batch_size: int = 128
    lr: float | None = None
    weight_decay: float = 0.0
    grad_clip: float = 100.0
    schedule: str = "cosine"
    kl_warmup: float = 0.0
    max_minutes: float | None = None
    # poems (task = "poem"; see vaekit.poetry)
    task: str = "images"
    form: str = "quatrain"
    corpus_dir: str | None = None
    min_count: int = 2
    regulated_halves: bool = True  # quatrain form: also train on both 4-line halves of each regulated poem
    simplified: bool = False
    embedding_dim: int = 64
    encoder_layers: int = 2
    decoder_layers: int = 1
    # bookkeeping
    seed: int = 0
    device: str = "auto"
    tensorboard: bool = True
    keep_checkpoints: int = 2
    # filled in from the data when training starts
    image_shape: tuple[int, int, int] | None = None
    num_classes: int | None = None

    def __post_init__(self) -> None:
        if self.binarization is None:
            self.binarization = "none" if self.model == "gan" else "dynamic"
        if self.lr is None:
            self.lr = 2e-4 if self.model == "gan" else 1e-3

    def validate(self) -> TrainConfig:
        """Check every value; raise ConfigError naming the first bad one."""
        choices = {"dataset": DATASETS, "binarization": BINARIZATIONS, "model": MODELS, "arch": ARCHS,
                   "likelihood": IMAGE_LIKELIHOODS, "conditioning": CONDITIONINGS, "kl": KL_ESTIMATORS,
                   "schedule": SCHEDULES, "device": DEVICES, "task": TASKS, "form": FORMS}
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        positive_ints = ("image_size", "latent_dim", "width", "k", "epochs", "batch_size", "keep_checkpoints",
                         "min_count", "embedding_dim", "encoder_layers", "decoder_layers")
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value!r}")
        for name in ("train_size", "eval_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive integer (or unset for all); got {value!r}")
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 (grey) or 3 (RGB); got {self.channels!r}")
        if not self.hidden or any(not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ConfigError(f"hidden must be a list of positive layer widths, e.g. 512,256; got {self.hidden!r}")
        for name in ("lr", "gaussian_scale"):
            value = getattr(self, name)
            if value is None and name == "lr":
                continue
            if not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"{name} must be a positive number; got {value!r}")
        for name in ("beta", "weight_decay", "grad_clip", "kl_warmup"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value >= 0:
                raise ConfigError(f"{name} must be a number >= 0; got {value!r}")
        if self.model == "gan" and self.binarization != "none":
            raise ConfigError("the GAN generates grey levels, so a discriminator would tell them from binarized "
                              f"images at a glance; use --binarization none (got {self.binarization!r})")
        if self.task == "poem" and self.model != "vae":
            raise ConfigError(f"the poem model is a VAE; model must be vae for task poem, got {self.model!r}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"max_minutes must be positive (or unset); got {self.max_minutes!r}")
        return self

    @property
    def uses_labels(self) -> bool:
        """Whether the model takes the label y (a CVAE, or a conditional GAN)."""
        return self.model == "cvae" or (self.model == "gan" and self.conditional)

    @property
    def learning_rate(self) -> float:
        """The learning rate asked for, else the model's usual one (2e-4 for the GAN, 1e-3 otherwise)."""
        return float(self.lr if self.lr is not None else (2e-4 if self.model == "gan" else 1e-3))

    def model_config(self) -> ModelConfig:
        """The part of the settings that defines the network and objective."""
        if self.image_shape is None or self.num_classes is None:
            raise ConfigError("image_shape and num_classes are set from the data; load the dataset first")
        names = {f.name for f in fields(ModelConfig)}
        return ModelConfig.from_dict({k: v for k, v in asdict(self).items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return {"format": RUN_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a dict (a config file or config.json), rejecting unknown keys with a suggestion."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k != "format"}
        for key in values:
            if key not in known:
                hint = difflib.get_close_matches(key, known, n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else f"; valid keys: {', '.join(sorted(known))}"
                raise ConfigError(f"{source}: unknown setting {key!r}{suggestion}")
        if values.get("image_shape") is not None:
            values["image_shape"] = tuple(values["image_shape"])
        return cls(**values).validate()


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file whose keys are the `vaekit train` options (dashes or underscores)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; check the path given to --config") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix the file") from None
    if "train" in data and isinstance(data["train"], dict):
        data = data["train"]
    return {k.replace("-", "_"): v for k, v in data.items()}
