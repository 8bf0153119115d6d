"""Reader for the IDX format of MNIST and Fashion-MNIST (gzipped or not), with clear errors."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from vaekit.data.errors import DataError

__all__ = ["read_idx", "find_idx"]

# The third byte of the magic number names the element type (LeCun's format description).
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; check the data folder or download the dataset again") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror}); check its permissions") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error):
            raise DataError(f"{path}: truncated or corrupt gzip file; download it again") from None
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file into a numpy array of its declared shape and type."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError(f"{path}: not an IDX file (wrong magic number {data[:4].hex() or 'empty'}); "
                        "point to the original MNIST-format files")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: IDX header is truncated; download the file again")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(f"{path}: IDX body has {len(data) - header} bytes but the header promises {expected} "
                        f"for shape {shape}; the file is truncated or corrupt, download it again")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx(folder: Path, stem: str) -> Path | None:
    """The file `stem` in `folder`, gzipped or not, under the two usual spellings (`-idx3-ubyte` / `.idx3-ubyte`)."""
    variants = {stem, stem.replace("-idx", ".idx")}
    for name in variants:
        for suffix in ("", ".gz"):
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None
