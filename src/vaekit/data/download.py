"""Fetch Fashion-MNIST's four IDX files from the dataset's canonical host when Debian's package is absent.

Each file is checked against its published size and MD5 (the ones Zalando lists and torchvision uses)
before it is renamed into place; a failed or corrupt download leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from vaekit.data.errors import DataError
from vaekit.runs import new_temporary

__all__ = ["FASHION_MIRRORS", "FASHION_FILES", "download_fashion_mnist"]

FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                   "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/")
FASHION_FILES = {  # name: (bytes, md5)
    "train-images-idx3-ubyte.gz": (26_421_880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    "train-labels-idx1-ubyte.gz": (29_515, "25c81989df183df01b3e8a0aad5dffbe"),
    "t10k-images-idx3-ubyte.gz": (4_422_102, "bef4ecab320f06d8554ea6380940ec79"),
    "t10k-labels-idx1-ubyte.gz": (5_148, "bb300cfdad3c16e7a12a480ee83cd310"),
}
TIMEOUT_S = 60


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(name: str, size: int, md5: str, dest: Path) -> None:
    errors = []
    for mirror in FASHION_MIRRORS:
        tmp = new_temporary(dest, f".{name}.")
        try:
            with urllib.request.urlopen(mirror + name, timeout=TIMEOUT_S) as response, open(tmp, "wb") as out:
                while block := response.read(1 << 20):
                    out.write(block)
                    if out.tell() > size:
                        break
            got = tmp.stat().st_size
            if got != size or _md5(tmp) != md5:
                errors.append(f"{mirror}: {got:,} bytes, not the {size:,} published (or the MD5 differs)")
                continue
            os.replace(tmp, dest / name)
            return
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            errors.append(f"{mirror}: {getattr(e, 'reason', e)}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError(f"could not download {name} ({'; '.join(errors)}); check the network, or install Debian's "
                    "dataset-fashion-mnist")


def download_fashion_mnist(dest: str | Path) -> list[Path]:
    """Make sure `dest` holds the four Fashion-MNIST files, downloading the missing ones; returns their paths."""
    dest = Path(dest).expanduser()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{dest}: cannot create the data folder ({e.strerror}); pass another --data-dir") from None
    for name, (size, md5) in FASHION_FILES.items():
        if not (dest / name).is_file() and not (dest / name.removesuffix(".gz")).is_file():
            print(f"downloading {name} ({size / 2**20:.1f} MB) into {dest}", flush=True)
            _fetch(name, size, md5, dest)
    return [dest / name for name in FASHION_FILES]
