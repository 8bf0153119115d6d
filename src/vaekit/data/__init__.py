"""Datasets as tensors in memory: MNIST (embedded default), Fashion-MNIST, and folders of images."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vaekit.data.binarize import BINARIZATIONS, binarize
from vaekit.data.errors import DataError
from vaekit.data.fashion import FASHION_CLASSES, load_fashion_arrays
from vaekit.data.folder import load_folder_arrays
from vaekit.data.loader import BatchLoader
from vaekit.data.mnist import load_mnist_arrays

__all__ = ["DATASETS", "BINARIZATIONS", "BatchLoader", "DataError", "ImageDataset", "Split", "binarize",
           "load_dataset"]

DATASETS = ("mnist", "fashion-mnist", "folder")


@dataclass
class Split:
    """Images (N, C, H, W) float32 in [0, 1] and integer labels (N,)."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.images)

    def head(self, n: int | None) -> Split:
        """The first n examples (all when n is None)."""
        return self if n is None else Split(self.images[:n], self.labels[:n])


@dataclass
class ImageDataset:
    """The three splits of one dataset, plus what the rest of vaekit needs to know about it."""

    name: str
    train: Split
    valid: Split
    test: Split
    class_names: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _to_split(arrays: tuple[np.ndarray, np.ndarray]) -> Split:
    x, y = arrays
    return Split(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y.astype(np.int64)))


def _all_finite(images: Tensor) -> bool:
    """Whether no pixel is NaN or infinite: min and max carry either (one pass, no 50k-image mask to build)."""
    if images.numel() == 0:
        return True
    low, high = torch.aminmax(images)
    return bool(torch.isfinite(low)) and bool(torch.isfinite(high))


@lru_cache(maxsize=4)
def _cached(name: str, data_dir: str | None, image_size: int, channels: int, seed: int) -> ImageDataset:
    if name == "mnist":
        arrays, source = load_mnist_arrays(data_dir)
        classes = [str(i) for i in range(10)]
    elif name == "fashion-mnist":
        arrays, source = load_fashion_arrays(data_dir)
        classes = list(FASHION_CLASSES)
    elif name == "folder":
        if data_dir is None:
            raise DataError("--dataset folder needs --data-dir DIR, the folder of images to train on")
        arrays, classes = load_folder_arrays(data_dir, size=image_size, channels=channels, seed=seed)
        source = f"images in {data_dir}"
    else:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    splits = {k: _to_split(v) for k, v in arrays.items()}
    for split_name, split in splits.items():
        if len(split) == 0:
            raise DataError(f"{source}: the {split_name} split is empty; add more images")
        if not _all_finite(split.images):
            raise DataError(f"{source}: the {split_name} images contain NaN or infinite pixels; fix the data")
    return ImageDataset(name, splits["train"], splits["valid"], splits["test"], classes, source)


def load_dataset(name: str = "mnist", data_dir: str | Path | None = None, image_size: int = 28,
                 channels: int = 1, seed: int = 0) -> ImageDataset:
    """Load a dataset by name; the result is cached in-process (treat its tensors as read-only)."""
    return _cached(name, None if data_dir is None else str(data_dir), image_size, channels, seed)
