"""Fashion-MNIST from IDX files: Debian's dataset-fashion-mnist, or a folder the user names."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaekit.data.errors import DataError
from vaekit.data.mnist import load_idx_splits, require_folder, resolve_data_dir

__all__ = ["DEBIAN_FASHION_DIR", "FASHION_CLASSES", "load_fashion_arrays"]

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                   "Bag", "Ankle boot")


def load_fashion_arrays(data_dir: str | Path | None = None) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """Train/valid/test splits (valid = last 10k of train) and a line saying where they came from."""
    folder, how = resolve_data_dir(data_dir)
    if folder is not None:  # a folder the user named must hold the data: no silent fallback to Debian's copy
        require_folder(folder, how)
        candidates = [folder, folder / "fashion-mnist", folder / "FashionMNIST" / "raw"]
    else:
        candidates = [DEBIAN_FASHION_DIR]
    for candidate in candidates:
        splits = load_idx_splits(candidate, "Fashion-MNIST") if candidate.is_dir() else None
        if splits is not None:
            return splits, f"IDX files in {candidate}"
    if folder is not None:
        raise DataError(f"{folder} (named by {how}) holds no Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz] "
                        "and the other three); add them, or leave it out to use Debian's dataset-fashion-mnist")
    raise DataError(f"Fashion-MNIST not found in {DEBIAN_FASHION_DIR}; install it with "
                    "`sudo apt-get install dataset-fashion-mnist`, or pass --data-dir DIR holding its IDX files")
