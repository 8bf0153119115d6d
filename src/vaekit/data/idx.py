"""Reader for the IDX format of MNIST and Fashion-MNIST (gzipped or not), with clear errors."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from vaekit.data.errors import DataError

__all__ = ["MAX_IDX_BYTES", "read_idx", "find_idx"]

# The third byte of the magic number names the element type (LeCun's format description).
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


MAX_IDX_BYTES = 2**31  # 2 GiB: MNIST-style files are tens of MB; a header declaring more is refused before reading


def _open(path: Path) -> BinaryIO:
    """The file's byte stream, decompressed on the fly when it is gzipped (never all at once)."""
    try:
        f = open(path, "rb")  # noqa: SIM115 (returned to the caller, who closes it)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; check the data folder or download the dataset again") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an IDX file; point to the files themselves") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror}); check its permissions") from None
    if f.read(2) == b"\x1f\x8b":
        f.seek(0)
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    f.seek(0)
    return f


def _read_exactly(stream: BinaryIO, n: int, path: Path) -> bytes:
    try:
        return stream.read(n)
    except (EOFError, OSError, zlib.error):
        raise DataError(f"{path}: truncated or corrupt gzip file; download it again") from None


def read_idx(path: str | Path, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read one IDX file into a numpy array of its declared shape and type.

    The header is checked against `max_bytes` and the body's real length before anything large is
    allocated, and gzip is decompressed as a stream that stops one byte past the declared size.
    """
    path = Path(path)
    with _open(path) as stream:
        magic = _read_exactly(stream, 4, path)
        if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _DTYPES:
            raise DataError(f"{path}: not an IDX file (wrong magic number {magic.hex() or 'empty'}); "
                            "point to the original MNIST-format files")
        ndim = magic[3]
        dims = _read_exactly(stream, 4 * ndim, path)
        if len(dims) < 4 * ndim:
            raise DataError(f"{path}: IDX header is truncated; download the file again")
        shape = tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
        dtype = np.dtype(_DTYPES[magic[2]])
        expected = math.prod(shape) * dtype.itemsize  # Python integers: no overflow, however large the header
        if expected > max_bytes:
            raise DataError(f"{path}: IDX header declares shape {shape} ({expected:,} bytes), beyond the "
                            f"{max_bytes:,}-byte limit; the file is corrupt, download it again")
        body = _read_exactly(stream, expected + 1, path)
    if len(body) != expected:
        size = f"{len(body)}" if len(body) <= expected else "more"
        raise DataError(f"{path}: IDX body has {size} bytes but the header promises {expected} "
                        f"for shape {shape}; the file is truncated or corrupt, download it again")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx(folder: Path, stem: str) -> Path | None:
    """The file `stem` in `folder`, gzipped or not, under the two usual spellings (`-idx3-ubyte` / `.idx3-ubyte`)."""
    variants = {stem, stem.replace("-idx", ".idx")}
    for name in variants:
        for suffix in ("", ".gz"):
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None
