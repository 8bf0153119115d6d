"""A run's settings, one object per concern: data, model (network and objective), optimisation, poem, run.

    TrainConfig.from_flat(dataset="fashion-mnist", latent_dim=32)   # the flat keys of the CLI flags and TOML files
    config.data.dataset, config.model.latent_dim, config.optim.lr   # nested, as config.json stores them

Users see flat keys (`--latent-dim`, `latent_dim = 32`); `FLAT_KEYS` maps each to its section, in one place.
An image run has no poem section and a poem run no image-data section. Bad values raise `ConfigError` with one
sentence naming the setting (by its flat key) and what it accepts.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from vaekit.data import BINARIZATIONS, DATASETS
from vaekit.data.poetry import FORMS
from vaekit.models import CONDITIONINGS, KL_ESTIMATORS, MODELS, ModelConfig
from vaekit.models.config import IMAGE_PRIORS, NORMS
from vaekit.models.likelihoods import IMAGE_LIKELIHOODS, SCALE_SHAPES
from vaekit.models.nets import ARCHS
from vaekit.poetry.config import DECODERS, POOLINGS, PRIORS, PoemConfig  # declared once, beside the poem model
from vaekit.runs import RUN_FORMAT
from vaekit.seeds import check_seed

__all__ = ["ConfigError", "TrainConfig", "DataConfig", "OptimConfig", "PoemConfig", "RunConfig", "FLAT_KEYS",
           "flat_fields", "SCHEDULES", "DEVICES", "TRAIN_PRECISIONS", "load_config_file", "shown"]

SCHEDULES = ("cosine", "constant")
TASKS = ("images", "poem")
DEVICES = ("auto", "cpu", "cuda", "mps")
# the precision of training's products: auto is bf16 where the device multiplies bfloat16 in hardware, else fp32
TRAIN_PRECISIONS = ("auto", "fp32", "bf16")


# Upper bounds on sizes, checked before anything is allocated: a typo or a tampered config.json must fail with
# a sentence, not by exhausting memory.
LIMITS = {"image_size": 512, "latent_dim": 4096, "width": 1024, "k": 100_000, "epochs": 1_000_000,
          "batch_size": 65_536, "keep_checkpoints": 1000, "embedding_dim": 4096, "encoder_layers": 64,
          "decoder_layers": 64, "min_count": 1_000_000}
MAX_HIDDEN_WIDTH, MAX_HIDDEN_LAYERS = 16_384, 16
MAX_SAMPLES_A_STEP = 32_768  # IWAE's k x batch_size: each sample carries a whole decoder pass
MAX_PARAMETERS = 200_000_000  # weights a run may train: with gradients and AdamW's moments, about 3.2 GB in fp32
MAX_ENCODER_DILATION = 16  # a poem is at most 56 characters: wider views see only padding


class ConfigError(ValueError):
    """A setting with a bad value, or a config file that cannot be used."""


def _toml(value: Any) -> str:
    """A value as it would be written in TOML, for messages about config files."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'the string "{value[:60]}{"..." if len(value) > 60 else ""}"'
    if isinstance(value, list | tuple):
        shown = "[" + ", ".join(_toml(v) if not isinstance(v, str) else f'"{v}"' for v in value[:8])
        return shown + (f", ... ({len(value):,} in all)]" if len(value) > 8 else "]")
    if isinstance(value, dict):
        return "a table"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_EXAMPLES = {"list[str]": ("a list of strings", '["a", "b"]'),
             "bool": ("true or false", "true"), "int": ("an integer", "8"), "float": ("a number", "0.5"),
             "str": ("a string", '"text"'), "list[int]": ("a list of integers", "[512, 256]"),
             "tuple[int, int, int]": ("three integers", "[1, 28, 28]")}


def shown(value: Any, width: int = 60) -> str:
    """A value for a message, cut to `width` characters: a sentence never echoes a whole file or request."""
    text = repr(value)
    return text if len(text) <= width else f"{text[:width - 3]}... ({len(value):,} items)" \
        if isinstance(value, list) else text[:width - 3] + "..."


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
class DataConfig:
    """The images: which dataset, where, at what size, binarized how, and how many."""

    dataset: str = "mnist"
    data_dir: str | None = None
    image_size: int = 28
    channels: int = 1
    binarization: str = "dynamic"  # follows the data unless given: see `_data_defaults`
    train_size: int | None = None
    eval_size: int | None = None
    train_on_valid: bool = False  # train on the validation images too (the 60,000-image MNIST protocol)


@dataclass
class OptimConfig:
    """How the objective is optimised: epochs, batch, AdamW, clipping, schedules and the time budget."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3  # 2e-4 for the GAN unless given
    weight_decay: float = 0.0
    grad_clip: float = 100.0
    grad_skip: float = 0.0  # skip a step whose gradient norm exceeds this (VDVAE's outlier guard; 0: off)
    ema: float = 0.0  # decay of the moving average of the weights that is evaluated and published (0: off)
    schedule: str = "cosine"
    kl_warmup: float = 0.0
    max_minutes: float | None = None


@dataclass
class RunConfig:
    """Where the run lives and how it runs: directory, seed, device and precision, loggers, checkpoints."""

    run_dir: str = "runs/vae"
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # of the products in a training step (TRAIN_PRECISIONS); losses and densities stay fp32
    tensorboard: bool = True
    mlflow: bool = False
    keep_checkpoints: int = 2


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig, "poem": PoemConfig,
                             "run": RunConfig}
TOP_LEVEL = {"task": "str", "chosen": "dict[str, str] | None", "class_names": "list[str] | None",
             "restarts": "list[int] | None"}
# settings that follow the data or the model unless given (None in a flat dict means "not given")
RESOLVED = ("binarization", "likelihood", "learn_scale", "scale_per", "norm", "beta", "lr", "epochs")
# Unless given, an image run trains at least DEFAULT_EPOCHS epochs and MIN_STEPS optimizer steps: ten epochs of
# MNIST are 3,900 steps, but ten of a folder of 1,200 images are 90, after which colour is still grey
# (benchmarks/own_images.py measures it). A run on --train-size N is a quick run: it keeps DEFAULT_EPOCHS.
DEFAULT_EPOCHS, MIN_STEPS, MAX_FOLLOWED_EPOCHS = 10, 1000, 500  # a folder of a few hundred images: 500 epochs
EPOCHS_FOLLOW_DATA = f"at least {DEFAULT_EPOCHS} epochs and {MIN_STEPS:,} optimizer steps, counted once the data is read"
# in the data (or model) section for images, in the poem section for poems
_SHARED = ("train_size", "eval_size", "prior")


def _flat_table() -> dict[str, tuple[str, str]]:
    table: dict[str, tuple[str, str]] = {}
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            if f.name not in table:
                table[f.name] = (section, str(f.type))
    return table


FLAT_KEYS: dict[str, tuple[str, str]] = _flat_table()  # flat key -> (section, type), the shared ones under data


def flat_fields() -> dict[str, tuple[str, Any]]:
    """Every flat setting with its section and default (None for those that follow the data or the model)."""
    out = {}
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            if f.name in out:
                continue
            default = f.default if f.default_factory is MISSING else f.default_factory()  # type: ignore[misc]
            out[f.name] = (section, None if f.name in RESOLVED else default)
    return out


def _section_of(name: str, task: str) -> str:
    return "poem" if task == "poem" and name in _SHARED else FLAT_KEYS[name][0]


@dataclass
class TrainConfig:
    """A training run: its task, and one settings object per concern (`poem` only for poems, `data` only for
    images). Build it from flat keys with `from_flat`, from config.json or a TOML file with `from_dict`."""

    task: str = "images"
    data: DataConfig | None = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    poem: PoemConfig | None = None
    run: RunConfig = field(default_factory=RunConfig)
    chosen: dict[str, str] | None = None  # the settings vaekit chose from the data, and why (config.json shows it)
    class_names: list[str] | None = None  # filled in from the data: `--label` takes a name or a number
    restarts: list[int] | None = None  # epochs where `--resume --epochs N` extended a finished run

    @classmethod
    def from_flat(cls, source: str = "settings", strict: bool = True, **values: Any) -> TrainConfig:
        """Build from flat keys (the CLI's and TOML's), filling what was not given from the data and the model.

        Unknown keys are refused with a suggestion; with `strict`, so are the settings of the other task (a
        poem setting in an image run); config.json files of format 1, flat, carry both and are read leniently.
        """
        known = set(FLAT_KEYS) | set(TOP_LEVEL)
        for key in values:
            if key not in known:
                hint = difflib.get_close_matches(key, known, n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else f"; valid keys: {', '.join(sorted(known))}"
                raise ConfigError(f"{source}: unknown setting {key!r}{suggestion}")
        values = {k: v for k, v in values.items() if not (k in RESOLVED and v is None)}
        types = {**{k: t for k, (_, t) in FLAT_KEYS.items()}, **TOP_LEVEL}
        for name in RESOLVED:  # given explicitly, these must still have their type
            types[name] = types[name].replace(" | None", "")
        chosen_given = values.pop("chosen", None)
        if chosen_given is not None and not (isinstance(chosen_given, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in chosen_given.items())):
            raise ConfigError(f"{source}: chosen must be a table of strings; got {_toml(chosen_given)}")
        values = {k: _coerce(k, v, types[k], source) for k, v in values.items()}
        task = values.pop("task", "images")
        if task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
        other = "data" if task == "poem" else "poem"
        parts: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        top = {k: values.pop(k) for k in list(values) if k in TOP_LEVEL}
        for key, value in values.items():
            section = _section_of(key, task)
            if section == other:
                if strict:
                    what = "a poem setting: it applies to `vaekit poem train`" if other == "poem" else \
                        "an image setting: it does not apply to poems"
                    raise ConfigError(f"{source}: {key} is {what}")
                continue
            parts[section][key] = value
        chosen = {**(chosen_given or {}), **_resolve(task, parts)}
        model = parts["model"]
        model.setdefault("image_shape", None)  # filled in from the data when training starts
        model.setdefault("num_classes", None)
        if model["image_shape"] is not None:
            model["image_shape"] = tuple(model["image_shape"])
        config = cls(task=task, data=DataConfig(**parts["data"]) if task == "images" else None,
                     model=ModelConfig(**model), optim=OptimConfig(**parts["optim"]),
                     poem=PoemConfig(**parts["poem"]) if task == "poem" else None, run=RunConfig(**parts["run"]),
                     chosen=chosen or None, class_names=top.get("class_names"), restarts=top.get("restarts"))
        return config.validate(source)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from config.json (nested, or flat as format 1 wrote it) or a flat dict of settings."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: settings must be a table of keys and values")
        values = {k: v for k, v in data.items() if k != "format"}
        nested = any(isinstance(values.get(name), dict) for name in SECTIONS)
        if not nested:
            return cls.from_flat(source, strict=data.get("format") is None, **values)
        flat: dict[str, Any] = {}
        for key, value in values.items():
            if key in SECTIONS:
                if value is None:
                    continue
                if not isinstance(value, dict):
                    raise ConfigError(f"{source}: {key} must be a table of settings; got {_toml(value)}")
                for inner, v in value.items():
                    if inner not in FLAT_KEYS:
                        raise ConfigError(f"{source}: unknown setting {key}.{inner}")
                    flat[inner] = v
            else:
                flat[key] = value
        return cls.from_flat(source, **flat)

    def flat(self) -> dict[str, Any]:
        """The settings as flat keys (what the CLI and TOML files use), this task's only, and the class names."""
        out: dict[str, Any] = {"task": self.task, "class_names": self.class_names}
        for name in SECTIONS:
            section = getattr(self, name)
            if section is not None:
                out.update(asdict(section))
        return out

    def to_dict(self) -> dict[str, Any]:
        """What config.json holds: the format, the task, one table per section, and what was chosen."""
        out: dict[str, Any] = {"format": RUN_FORMAT, "task": self.task}
        for name in SECTIONS:
            section = getattr(self, name)
            out[name] = None if section is None else asdict(section)
        return {**out, "chosen": self.chosen, "class_names": self.class_names, "restarts": self.restarts}

    def with_settings(self, source: str = "settings", **changes: Any) -> TrainConfig:
        """A copy with some flat settings changed (validated)."""
        return TrainConfig.from_flat(source, **{**self.flat(), "chosen": self.chosen,
                                                "class_names": self.class_names, "restarts": self.restarts,
                                                **changes})

    def validate(self, source: str = "settings") -> TrainConfig:
        """Check every value; raise ConfigError naming the first bad one by its flat key."""
        _validate(self.flat())
        return self

    @property
    def uses_labels(self) -> bool:
        """Whether the model takes the label y (a CVAE, or a conditional GAN)."""
        return self.model.uses_labels

    def follow_data(self, train_count: int) -> None:
        """Fix the settings that wait for the data's size: the epochs, where they follow the data (see MIN_STEPS)."""
        if (self.chosen or {}).get("epochs") != EPOCHS_FOLLOW_DATA:
            return
        steps = max(1, train_count // self.optim.batch_size)
        epochs = min(MAX_FOLLOWED_EPOCHS, max(DEFAULT_EPOCHS, -(-MIN_STEPS // steps)))
        self.optim.epochs = epochs
        self.chosen["epochs"] = (f"{train_count:,} training images in batches of {self.optim.batch_size}: {epochs} "
                                 f"epochs = {epochs * steps:,} steps (at least {DEFAULT_EPOCHS} epochs and "
                                 f"{MIN_STEPS:,} steps, at most {MAX_FOLLOWED_EPOCHS} epochs; --epochs sets them)")

    def model_config(self) -> ModelConfig:
        """The model's settings, once the data has filled in the image shape and the number of classes."""
        if self.model.image_shape is None or self.model.num_classes is None:
            raise ConfigError("image_shape and num_classes are set from the data; load the dataset first")
        return self.model



def _resolve(task: str, parts: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Fill the settings that follow the data and the model, unless given; returns what was chosen and why.

    The KL weight is 1 (the ELBO), or 3 for an image CVAE that takes its label as input: with beta = 1 such a
    CVAE keeps the class in z, its decoder learns to ignore the label, and samples drawn for a label are of that
    class only about half the time; a heavier KL pushes the class out of z, so the decoder must read the label
    (docs/benchmarks.md, "Conditional VAE"). The reported ELBO stays the true bound; only the loss is weighted.
    """
    model, optim = parts["model"], parts["optim"]
    kind = model.get("model", "vae")
    if "lr" not in optim:
        optim["lr"] = 2e-4 if kind == "gan" else 1e-3
    chosen: dict[str, str] = {}
    if model.get("prior") == "vamp" and "kl" not in model:
        model["kl"] = "mc"
        chosen["kl"] = "the VampPrior's KL has no closed form: Monte Carlo on the sample"
    if "epochs" not in optim:
        optim["epochs"] = DEFAULT_EPOCHS
        if task == "images" and parts["data"].get("train_size") is None:
            chosen["epochs"] = EPOCHS_FOLLOW_DATA
    if task == "images":
        chosen.update(_data_defaults(parts["data"], model))
    if "beta" not in model:
        model["beta"] = 1.0
        if kind == "cvae" and model.get("conditioning", ModelConfig.conditioning) == "input" and task == "images":
            from vaekit.models.cvae import INPUT_CONDITIONING_BETA

            model["beta"] = INPUT_CONDITIONING_BETA
            chosen["beta"] = ("a label-input CVAE keeps the class out of z only under a heavier KL, so that its "
                              "decoder reads the label")
    for name, default in (("likelihood", "bernoulli"), ("learn_scale", False), ("scale_per", "image"), ("norm", "none")):
        model.setdefault(name, default)
    return chosen


def _data_defaults(data: dict[str, Any], model: dict[str, Any]) -> dict[str, str]:
    """Fill the unset likelihood settings from the data; explicit values always win.

    MNIST keeps the NLL protocol (dynamically binarized, Bernoulli); Fashion-MNIST and image folders have 8-bit
    grey levels or colour, so they are modelled as they are, by a discretized logistic over the 256 levels with a
    learned scale per pixel: it measured the fewest bits/dim on Fashion-MNIST and colour images (docs/benchmarks.md,
    `benchmarks/likelihoods.py`).
    """
    chosen = {}
    kind, dataset = model.get("model", "vae"), data.get("dataset", "mnist")
    binary_data = dataset == "mnist" and kind != "gan"
    if "binarization" not in data:
        data["binarization"] = "dynamic" if binary_data else "none"
        chosen["binarization"] = ("MNIST's NLL protocol: a fresh Bernoulli draw of the pixels each epoch"
                                  if binary_data else "the GAN generates grey levels" if kind == "gan"
                                  else f"{dataset} has grey levels or colour: modelled as they are")
    if "likelihood" not in model and kind == "gan":
        model["likelihood"] = "gaussian"  # unused: a GAN has no likelihood
    if "likelihood" not in model:
        model["likelihood"] = "bernoulli" if data["binarization"] != "none" else "discretized_logistic"
        chosen["likelihood"] = ("binary pixels" if model["likelihood"] == "bernoulli" else
                                "8-bit intensities: a discretized logistic over the 256 levels measured the fewest "
                                "bits/dim (see docs/benchmarks.md)")
    if "learn_scale" not in model and model["likelihood"] == "discretized_logistic":
        model["learn_scale"] = True
        chosen["learn_scale"] = "a learned scale: a fixed one leaves colour images grey"
        if "scale_per" not in model:
            model["scale_per"] = "pixel"
            chosen["scale_per"] = ("one scale a pixel: level with one for the image on Fashion-MNIST, fewer bits/dim "
                                   "on colour (see docs/benchmarks.md)")
    if "norm" not in model and not binary_data and kind != "gan" and model.get("arch", "conv") == "conv":
        model["norm"] = "batch"
        chosen["norm"] = ("batch norm in the conv nets: without it, colour is learned only after thousands of steps "
                          "and reconstructions stay grey for minutes")
    return chosen


def _validate(s: dict[str, Any]) -> None:
    """Every check on the flat view of a config; ConfigError names the first bad setting."""
    choices = {"dataset": DATASETS, "binarization": BINARIZATIONS, "model": MODELS, "arch": ARCHS,
               "likelihood": IMAGE_LIKELIHOODS, "scale_per": SCALE_SHAPES, "conditioning": CONDITIONINGS,
               "norm": NORMS,
               "kl": KL_ESTIMATORS, "schedule": SCHEDULES, "device": DEVICES, "precision": TRAIN_PRECISIONS,
               "task": TASKS, "form": FORMS,
               "decoder": DECODERS, "encoder_pooling": POOLINGS,
               "prior": PRIORS if s.get("task") == "poem" else IMAGE_PRIORS}
    for name, allowed in choices.items():
        if name in s and s[name] not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {shown(s[name])}")
    positive_ints = ("image_size", "latent_dim", "width", "k", "epochs", "batch_size", "keep_checkpoints",
                     "min_count", "embedding_dim", "encoder_layers", "decoder_layers")
    for name in positive_ints:
        if name not in s:
            continue
        value = s[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive integer; got {shown(value)}")
        if value > LIMITS[name]:
            raise ConfigError(f"{name} must be at most {LIMITS[name]:,}; got {value:,}")
    dilations = s.get("encoder_dilations")
    if dilations is not None and (len(dilations) != s.get("encoder_layers", 2)
                                  or any(not 1 <= v <= MAX_ENCODER_DILATION for v in dilations)):
        raise ConfigError(f"encoder_dilations must give each of the {s.get('encoder_layers', 2)} encoder layers a "
                          f"dilation from 1 to {MAX_ENCODER_DILATION}; got {shown(dilations)}")
    for name in ("train_size", "eval_size"):
        value = s.get(name)
        if value is not None and (not _is_int(value) or value < 1):
            raise ConfigError(f"{name} must be a positive integer (or unset for all); got {shown(value)}")
    if s.get("task") != "poem" and s.get("prior") == "vamp":
        if s["model"] not in ("vae", "iwae", "hvae"):
            raise ConfigError(f"--prior vamp is the prior of an unconditional vae or iwae, or of an hvae's top group; "
                              f"got --model {s['model']}")
        if s.get("kl") != "mc":
            raise ConfigError("the VampPrior's KL has no closed form; use --kl mc (the default with --prior vamp)")
        if not 1 <= s.get("pseudo_inputs", 500) <= 10_000:
            raise ConfigError(f"pseudo_inputs must be from 1 to 10,000; got {shown(s.get('pseudo_inputs'))}")
    groups = s.get("groups", [2, 2])
    if s.get("model") == "hvae" and (not 1 <= len(groups) <= 5 or groups[0] < 1 or min(groups) < 0
                                     or sum(groups) > 32):
        raise ConfigError(f"groups gives the hvae's latent groups at each resolution, coarsest first (2,2: two at 1/4 "
                          f"of the image's side, two at 1/2; 1,2,2 adds one at 1/8), 1 to 5 resolutions, at least one "
                          f"group at the top and 32 in all; got {shown(groups)}")
    side = s.get("image_size", 28)
    if s.get("model") == "hvae" and _is_int(side) and side % 2 ** len(groups):
        raise ConfigError(f"--groups {','.join(map(str, groups))} halves the image's side {len(groups)} times, so it "
                          f"must divide by {2 ** len(groups)}; {side} does not: give fewer resolutions (e.g. 2,2) or "
                          f"another --image-size")
    if s.get("kl_balance") and s.get("model") != "hvae":
        raise ConfigError(f"--kl-balance balances the KL of an hvae's latent groups; a {s.get('model')} has one group, "
                          "so leave it off or use --model hvae")
    if s.get("model") == "iwae" and s.get("k", 1) * s.get("batch_size", 1) > MAX_SAMPLES_A_STEP:
        raise ConfigError(f"k x batch_size = {s['k'] * s['batch_size']:,} samples of z a training step is more than "
                          f"vaekit trains on ({MAX_SAMPLES_A_STEP:,}); lower --k or --batch-size (evaluation's own "
                          "--k is separate and runs in chunks)")
    if s.get("dataset") in ("mnist", "fashion-mnist"):
        for name, fixed in (("image_size", 28), ("channels", 1)):
            if s.get(name, fixed) != fixed:
                raise ConfigError(f"{name} applies to --dataset folder only: {s['dataset']} is 28x28 grey, so "
                                  f"{name} must be {fixed} (got {shown(s[name])}); drop it")
    try:
        check_seed(s.get("seed", 0))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if "channels" in s and s["channels"] not in (1, 3):
        raise ConfigError(f"channels must be 1 (grey) or 3 (RGB); got {shown(s['channels'])}")
    hidden = s["hidden"]
    if (not isinstance(hidden, list) or not hidden or len(hidden) > MAX_HIDDEN_LAYERS
            or any(not _is_int(h) or not 1 <= h <= MAX_HIDDEN_WIDTH for h in hidden)):
        raise ConfigError(f"hidden must be 1 to {MAX_HIDDEN_LAYERS} layer widths between 1 and {MAX_HIDDEN_WIDTH:,}, "
                          f"e.g. 512,256; got {shown(hidden)}")
    if "image_size" in s and s["image_size"] < 4:
        raise ConfigError(f"image_size must be at least 4 pixels; got {s['image_size']}")
    for name in ("lr", "gaussian_scale"):
        value = s[name]
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < math.inf:
            raise ConfigError(f"{name} must be a positive number; got {shown(value)}")
    for name in ("beta", "weight_decay", "grad_clip", "grad_skip", "kl_warmup"):
        if name not in s:
            continue
        value = s[name]
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < math.inf:
            raise ConfigError(f"{name} must be a number >= 0; got {shown(value)}")
    ema = s.get("ema", 0.0)
    if not isinstance(ema, int | float) or isinstance(ema, bool) or not 0 <= ema < 1:
        raise ConfigError(f"ema is the decay of the weights' moving average, in [0, 1) (0: off; 0.999 is usual); "
                          f"got {shown(ema)}")
    if s["model"] == "gan" and s.get("binarization") != "none":
        raise ConfigError("the GAN generates grey levels, so a discriminator would tell them from binarized "
                          f"images at a glance; use --binarization none (got {shown(s.get('binarization'))})")
    if s["task"] == "poem" and s["model"] not in ("vae", "cvae"):
        raise ConfigError(f"the poem model is a VAE (or a CVAE over themes); model must be vae or cvae for task "
                          f"poem, got {shown(s['model'])}")
    if s["max_minutes"] is not None and not 0 < s["max_minutes"] < math.inf:
        raise ConfigError(f"max_minutes must be positive (or unset); got {shown(s['max_minutes'])}")
    for f in fields(PoemConfig):  # the bounds a poem setting declares beside its default
        bounds = f.metadata.get("bounds")
        if bounds is None or f.name not in s:
            continue
        value, (low, high) = s[f.name], bounds
        if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value < high:
            span = f"a number >= {low:g}" if high == math.inf else f"a number from {low:g} up to (not including) {high:g}"
            raise ConfigError(f"{f.name} must be {span}; got {shown(value)}")
    if s.get("word_dropout", 0.0) > 0 and s.get("decoder") == "parallel":
        raise ConfigError("word dropout hides the characters an autoregressive decoder reads, and the parallel "
                          "decoder reads none; use --decoder causal or gru, or leave --word-dropout at 0")


MAX_CONFIG_BYTES = 16 * 1024  # a file of every vaekit setting with comments is a few kilobytes
OWN_RECORDS = ("restarts", "chosen", "format")  # what vaekit writes into config.json, never a user's setting


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file whose keys are the `vaekit train` options (dashes or underscores).

    At most MAX_CONFIG_BYTES are read (a device or a huge file is refused before parsing: the TOML parser's time
    grows with the square of a dotted key's length), and a key given in both spellings is refused."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: larger than a config file can be ({MAX_CONFIG_BYTES // 1024} KiB); give a "
                              "TOML file of vaekit settings to --config")
        data = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; check the path given to --config") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; --config takes a TOML file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read as a UTF-8 text file ({e}); check the path given to --config") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix the file") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a config file; fix the file") from None
    if "train" in data and isinstance(data["train"], dict):
        data = data["train"]
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name in out:
            raise ConfigError(f"{path}: {name} is given twice (as {name} and {name.replace('_', '-')}); keep one")
        if name in OWN_RECORDS:
            raise ConfigError(f"{path}: {name} is vaekit's own record in a run's config.json, not a setting; "
                              "remove it from the file")
        out[name] = value
    return out
