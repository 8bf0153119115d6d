"""What the Trainer trains on: a task supplies tensors, builds the model, and prepares each epoch's batch data.

The image task (MNIST, Fashion-MNIST, folders) is the default; the poem task lives in vaekit.poetry.task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor

from vaekit.callbacks import Callback
from vaekit.config import TrainConfig
from vaekit.data import DataError, Split, binarize, load_dataset
from vaekit.evaluate import eval_images
from vaekit.models import build_model

__all__ = ["Task", "ImageTask", "make_task", "read_settings", "load", "shipped_names"]


class Task(Protocol):
    """What the Trainer asks of a task: its tensors, its model, each epoch's batch data, what it saves beside the
    run, what it says at the start, how long the KL waits, and the hooks it adds to training."""

    train: tuple[Tensor, Tensor]
    valid: tuple[Tensor, Tensor]
    kl_delay_epochs: float  # epochs trained before the KL term is turned on (0: from the start)

    def build_model(self) -> torch.nn.Module: ...

    def prepare(self, x: Tensor, epoch: int) -> Tensor: ...

    def save(self, run_dir: Path) -> None: ...

    def describe(self) -> list[str]: ...

    def callbacks(self) -> list[Callback]: ...


class ImageTask:
    """Images in [0, 1]: binarized per the config each epoch; labels for conditional models."""

    def __init__(self, config: TrainConfig):
        self.config = config
        d = config.data
        assert d is not None, "an image run has a data section"
        data = load_dataset(d.dataset, d.data_dir, d.image_size, d.channels, config.run.seed)
        self.data = data
        if config.model.image_shape is None:
            config.model.image_shape = data.shape
            config.model.num_classes = max(1, data.num_classes)
            config.class_names = list(data.class_names)
        elif tuple(config.model.image_shape) != data.shape:
            raise ValueError(f"the run was trained on images of shape {tuple(config.model.image_shape)}, but the "
                             f"data now has {data.shape}; use the same dataset and --image-size")
        train = data.train
        if d.train_on_valid:  # the protocol of IWAE and NVAE: all 60,000 MNIST training images
            train = Split(torch.cat([train.images, data.valid.images]), torch.cat([train.labels, data.valid.labels]))
        train = train.head(d.train_size)
        self.train = (train.images, train.labels)
        self.valid = eval_images(data.valid, config.data.binarization, config.data.eval_size)

    def build_model(self) -> torch.nn.Module:
        return build_model(self.config.model_config())

    def prepare(self, x: Tensor, epoch: int) -> Tensor:
        return binarize(x, self.config.data.binarization, seed=self.config.run.seed, epoch=epoch)

    kl_delay_epochs = 0.0

    def save(self, run_dir: Path) -> None:
        """Images need nothing beside config.json."""

    def describe(self) -> list[str]:
        """Where the data came from (a wrong folder must not pass unnoticed), what was chosen from it, and a
        warning for a likelihood that cannot keep colour."""
        config, data = self.config, self.data
        seen = ", which it also trains on: validation figures are not held out" if config.data.train_on_valid else ""
        lines = [f"data: {data.name} from {data.source} ({len(self.train[0]):,} training images, "
                 f"{len(self.valid[0]):,} validation{seen})"]
        lines += [f"chose {key} = {config.flat()[key]}: {why}" for key, why in (config.chosen or {}).items()]
        if config.model.likelihood == "bernoulli" and data.shape[0] == 3:
            lines.append("warning: a Bernoulli likelihood on colour images treats each channel as on/off and "
                         "reconstructions lose their colour; --likelihood discretized_logistic --binarization none "
                         "models them")
        return lines

    def callbacks(self) -> list[Callback]:
        return []


def make_task(config: TrainConfig, run_dir: Path | None = None) -> Task:
    """The task a config names; `run_dir` is given on resume so saved state (a vocabulary) is reused."""
    if config.task == "poem":
        from vaekit.poetry.task import PoemTask

        return PoemTask(config, run_dir)
    return ImageTask(config)


def _model_for_run(config: TrainConfig, run_dir: Path) -> torch.nn.Module:
    """An untrained model of the shape a saved run describes (for loading its weights)."""
    if config.task == "poem":
        from vaekit.poetry.task import poem_model_for_run

        return poem_model_for_run(config, run_dir)
    return build_model(config.model_config())


def read_settings(run_dir: str | Path) -> TrainConfig:
    """The checked settings of a run directory (config.json of either format)."""
    from vaekit.runs import read_run_config

    run_dir = Path(run_dir)
    return TrainConfig.from_dict(read_run_config(run_dir), source=str(run_dir / "config.json"))


def shipped_names() -> list[str]:
    """The names of the models shipped in the package: each poem form with a model, FORM-themed and FORM-recall."""
    from vaekit.data.poetry import FORMS
    from vaekit.poetry import VARIANTS, shipped_dir

    names = [f"{form}{'-' + variant if variant else ''}" for form in FORMS for variant in ("", *VARIANTS)]
    return [name for name in names if (shipped_dir(name) / "config.json").is_file()]


def _where(path_or_name: str | Path) -> tuple[Path, Path]:
    """The run directory a path or a shipped model's name means, and where its training lines' hashes are (a
    shipped themed or recall model shares its form's)."""
    from vaekit.data.poetry import FORMS
    from vaekit.poetry import VARIANTS, shipped_dir
    from vaekit.poetry.decode import LINES_FILE

    path = Path(path_or_name)
    form, _, variant = str(path_or_name).partition("-")
    if path.exists() or form not in FORMS or variant not in ("", *VARIANTS):  # a run directory (read_settings says
        return path, path / LINES_FILE  # plainly what is wrong with it)
    run = shipped_dir(str(path_or_name))
    if not (run / "config.json").is_file():
        what = {"themed": "themed ", "recall": "recall "}.get(variant, "")
        raise DataError(f"vaekit ships no {what}{form} model; train one with `vaekit poem train --form {form}"
                        f"{' --' + variant if variant else ''}` and pass --run DIR")
    lines = run / LINES_FILE
    if variant and not lines.is_file():  # trained on its form's stanzas: no second copy of the hashes
        lines = shipped_dir(form) / LINES_FILE
    return run, lines


def load(path_or_name: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The trained model of a run directory, or of a model shipped in the package by name ("quatrain",
    "quatrain-themed", "quatrain-recall", ...), in eval mode: the one loader, and the contract outside code relies on.
    A poem model carries its vocabulary (`.vocab`), settings (`.run_config`) and its training lines' hashes
    (`.corpus_lines`)."""
    from vaekit.poetry.decode import LineSet
    from vaekit.runs import load_weights

    run_dir, lines = _where(path_or_name)
    config = read_settings(run_dir)
    model = _model_for_run(config, run_dir)
    load_weights(model, run_dir / "model.safetensors")
    if config.task == "poem":
        model.corpus_lines = LineSet.load(lines)  # training lines a poem must not copy
    return model.to(device).eval()
