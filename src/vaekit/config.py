"""Every training setting in one flat dataclass: the CLI flags, the TOML config file and config.json share its keys.

Bad values raise `ConfigError` with one sentence naming the setting and what it accepts.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from vaekit.data import BINARIZATIONS, DATASETS
from vaekit.data.poetry import FORMS
from vaekit.models import CONDITIONINGS, KL_ESTIMATORS, MODELS, ModelConfig
from vaekit.models.likelihoods import IMAGE_LIKELIHOODS, SCALE_SHAPES
from vaekit.models.nets import ARCHS
from vaekit.runs import RUN_FORMAT

POEM_DECODERS = ("parallel", "causal")

__all__ = ["ConfigError", "TrainConfig", "SCHEDULES", "DEVICES", "load_config_file"]

SCHEDULES = ("cosine", "constant")
TASKS = ("images", "poem")
DEVICES = ("auto", "cpu", "cuda", "mps")


# Upper bounds on sizes, checked before anything is allocated: a typo or a tampered config.json must fail with
# a sentence, not by exhausting memory.
LIMITS = {"image_size": 512, "latent_dim": 4096, "width": 1024, "k": 100_000, "epochs": 1_000_000,
          "batch_size": 65_536, "keep_checkpoints": 1000, "embedding_dim": 4096, "encoder_layers": 64,
          "decoder_layers": 64, "min_count": 1_000_000}
MAX_HIDDEN_WIDTH, MAX_HIDDEN_LAYERS = 16_384, 16


class ConfigError(ValueError):
    """A setting with a bad value, or a config file that cannot be used."""


def _toml(value: Any) -> str:
    """A value as it would be written in TOML, for messages about config files."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'the string "{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) if not isinstance(v, str) else f'"{v}"' for v in value) + "]"
    if isinstance(value, dict):
        return "a table"
    return repr(value)


_EXAMPLES = {"list[str]": ("a list of strings", '["a", "b"]'),
             "bool": ("true or false", "true"), "int": ("an integer", "8"), "float": ("a number", "0.5"),
             "str": ("a string", '"text"'), "list[int]": ("a list of integers", "[512, 256]"),
             "tuple[int, int, int]": ("three integers", "[1, 28, 28]")}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _coerce(name: str, value: Any, annotation: str, source: str) -> Any:
    """`value` checked against a field's declared type (the string annotation); ConfigError in TOML terms."""
    if value is None and "None" in annotation:
        return None
    kind = annotation.replace(" | None", "")
    ok = {"bool": lambda v: isinstance(v, bool),
          "int": _is_int,
          "float": lambda v: _is_int(v) or isinstance(v, float),
          "str": lambda v: isinstance(v, str),
          "list[int]": lambda v: isinstance(v, list) and all(_is_int(i) for i in v),
          "list[str]": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
          "tuple[int, int, int]": lambda v: isinstance(v, list | tuple) and len(v) == 3 and all(map(_is_int, v))}
    if kind == "list[int]" and _is_int(value):  # `hidden = 400` means one layer of 400
        return [value]
    if kind not in ok or ok[kind](value):
        return tuple(value) if kind.startswith("tuple") else value
    words, example = _EXAMPLES[kind]
    raise ConfigError(f"{source}: {name} must be {words}, like {name} = {example}; got {_toml(value)}")


@dataclass
class TrainConfig:
    """A training run: data, model, objective, optimisation and bookkeeping."""

    run_dir: str = "runs/vae"
    # data
    dataset: str = "mnist"
    data_dir: str | None = None
    image_size: int = 28
    channels: int = 1
    binarization: str | None = None  # follows the data unless given: see `_data_defaults`
    train_size: int | None = None
    eval_size: int | None = None
    # model (see vaekit.models.ModelConfig)
    model: str = "vae"
    arch: str = "conv"
    latent_dim: int = 16
    hidden: list[int] = field(default_factory=lambda: [512, 256])
    width: int = 64
    likelihood: str | None = None
    gaussian_scale: float = 0.1
    learn_scale: bool | None = None
    scale_per: str | None = None
    conditioning: str = "input"
    conditional: bool = False
    beta: float | None = None  # 1, or 3 for a CVAE with the label as input: see `_model_defaults`
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
    decoder: str = "parallel"  # poems: parallel (Su's, every position from z) or causal (autoregressive)
    free_bits: float = 0.0  # poems: a KL floor per latent dimension in the training loss (nats)
    # bookkeeping
    seed: int = 0
    device: str = "auto"
    tensorboard: bool = True
    mlflow: bool = False
    keep_checkpoints: int = 2
    # filled in from the data when training starts
    image_shape: tuple[int, int, int] | None = None
    num_classes: int | None = None
    chosen: dict[str, str] | None = None  # the settings vaekit chose from the data, and why (config.json shows it)
    class_names: list[str] | None = None  # filled in from the data: `--label` takes a name or a number
    restarts: list[int] | None = None  # epochs where `--resume --epochs N` extended a finished run

    def __post_init__(self) -> None:
        if self.lr is None:
            self.lr = 2e-4 if self.model == "gan" else 1e-3
        chosen = {**self._data_defaults(), **self._model_defaults()}
        if chosen:
            self.chosen = {**(self.chosen or {}), **chosen}

    def _model_defaults(self) -> dict[str, str]:
        """The KL weight, unless given: 1 (the ELBO), or 3 for a CVAE that takes its label as input.

        With beta = 1 such a CVAE keeps the class in z, its decoder learns to ignore the label, and samples
        drawn for a label are of that class only half the time; a heavier KL pushes the class out of z, so the
        decoder must read the label (49% -> 92% conditional accuracy at equal time). The ELBO reported stays
        the true bound (beta = 1); only the training loss is weighted.
        """
        if self.beta is not None:
            return {}
        if self.model == "cvae" and self.conditioning == "input":
            from vaekit.models.cvae import INPUT_CONDITIONING_BETA

            self.beta = INPUT_CONDITIONING_BETA
            return {"beta": "a label-input CVAE keeps the class out of z only under a heavier KL, so that its "
                            "decoder reads the label"}
        self.beta = 1.0
        return {}

    def _data_defaults(self) -> dict[str, str]:
        """Fill the unset likelihood settings from the data; explicit values always win.

        MNIST keeps the NLL protocol (dynamically binarized, Bernoulli); Fashion-MNIST and image folders have grey
        levels or colour, so they are modelled as they are, by a Gaussian whose scale is learned (sigma-VAE).
        """
        chosen = {}
        binary_data = self.dataset == "mnist" and self.model != "gan"
        if self.binarization is None:
            self.binarization = "dynamic" if binary_data else "none"
            chosen["binarization"] = ("MNIST's NLL protocol: a fresh Bernoulli draw of the pixels each epoch"
                                      if binary_data else "the GAN generates grey levels" if self.model == "gan"
                                      else f"{self.dataset} has grey levels or colour: modelled as they are")
        if self.likelihood is None and self.model == "gan":
            self.likelihood = "gaussian"  # unused: a GAN has no likelihood
        if self.likelihood is None:
            self.likelihood = "bernoulli" if self.binarization != "none" else "gaussian"
            chosen["likelihood"] = ("binary pixels" if self.likelihood == "bernoulli" else
                                    "continuous intensities: a Gaussian whose scale is learned")
            if self.learn_scale is None and self.likelihood == "gaussian":
                self.learn_scale = True
                self.scale_per = self.scale_per or "image"
                chosen["learn_scale"] = ("a learned scale (one for the image: it measured best, see "
                                         "docs/benchmarks.md); a fixed one leaves colour images grey")
        if self.learn_scale is None:
            self.learn_scale = False
        if self.scale_per is None:
            self.scale_per = "image"
        return chosen

    def validate(self) -> TrainConfig:
        """Check every value; raise ConfigError naming the first bad one."""
        choices = {"dataset": DATASETS, "binarization": BINARIZATIONS, "model": MODELS, "arch": ARCHS,
                   "likelihood": IMAGE_LIKELIHOODS, "scale_per": SCALE_SHAPES, "conditioning": CONDITIONINGS,
                   "kl": KL_ESTIMATORS,
                   "schedule": SCHEDULES, "device": DEVICES, "task": TASKS, "form": FORMS, "decoder": POEM_DECODERS}
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
            if value > LIMITS[name]:
                raise ConfigError(f"{name} must be at most {LIMITS[name]:,}; got {value:,}")
        for name in ("train_size", "eval_size"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise ConfigError(f"{name} must be a positive integer (or unset for all); got {value!r}")
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 (grey) or 3 (RGB); got {self.channels!r}")
        if (not isinstance(self.hidden, list) or not self.hidden or len(self.hidden) > MAX_HIDDEN_LAYERS
                or any(not _is_int(h) or not 1 <= h <= MAX_HIDDEN_WIDTH for h in self.hidden)):
            raise ConfigError(f"hidden must be 1 to {MAX_HIDDEN_LAYERS} layer widths between 1 and {MAX_HIDDEN_WIDTH:,}, "
                              f"e.g. 512,256; got {self.hidden!r}")
        if self.image_size < 4:
            raise ConfigError(f"image_size must be at least 4 pixels; got {self.image_size}")
        for name in ("lr", "gaussian_scale"):
            value = getattr(self, name)
            if value is None and name == "lr":
                continue
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < math.inf:
                raise ConfigError(f"{name} must be a positive number; got {value!r}")
        for name in ("beta", "weight_decay", "grad_clip", "kl_warmup", "free_bits"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < math.inf:
                raise ConfigError(f"{name} must be a number >= 0; got {value!r}")
        if self.model == "gan" and self.binarization != "none":
            raise ConfigError("the GAN generates grey levels, so a discriminator would tell them from binarized "
                              f"images at a glance; use --binarization none (got {self.binarization!r})")
        if self.task == "poem" and self.model != "vae":
            raise ConfigError(f"the poem model is a VAE; model must be vae for task poem, got {self.model!r}")
        if self.max_minutes is not None and not 0 < self.max_minutes < math.inf:
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
        types = {f.name: str(f.type) for f in fields(cls)}
        values = {k: _coerce(k, v, types[k], source) for k, v in values.items()}
        return cls(**values).validate()


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file whose keys are the `vaekit train` options (dashes or underscores)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; check the path given to --config") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; --config takes a TOML file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read as a UTF-8 text file ({e}); check the path given to --config") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix the file") from None
    if "train" in data and isinstance(data["train"], dict):
        data = data["train"]
    return {k.replace("-", "_"): v for k, v in data.items()}
