"""A folder of the user's own images (PNG, JPEG, ...): resized, grey or RGB, labelled by subfolder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vaekit.data.errors import DataError

__all__ = ["IMAGE_SUFFIXES", "MAX_IMAGE_SIZE", "load_folder_arrays"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


MAX_IMAGE_SIZE = 512  # side in pixels: the whole dataset is held in memory as float32


def _pixels(img: Image.Image, channels: int) -> np.ndarray:
    """Intensities in [0, 1]; 16- and 32-bit grey images are scaled by their bit depth, not clipped to white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        depth = 255.0 if img.mode in ("I", "F") and arr.max(initial=0) <= 255 else 65535.0
        arr = np.clip(arr / depth, 0.0, 1.0).astype(np.float32)
        return arr[None] if channels == 1 else np.repeat(arr[None], 3, axis=0)
    arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / 255.0
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def _read_image(path: Path, size: int, channels: int) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img.load()
            if img.size != (size, size):
                resample = Image.Resampling.BILINEAR
                img = (img.convert("F") if img.mode.startswith("I;16") else img).resize((size, size), resample)
            return _pixels(img, channels)
    except Image.DecompressionBombError:
        raise DataError(f"{path}: the image is too large to decode safely (a decompression bomb?); remove it or "
                        "shrink it below 89 megapixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{path}: not a readable image ({e}); remove or replace it") from None


def _image_files(root: Path) -> list[Path]:
    """Every image file under `root`, sorted; a folder that cannot be listed (a class folder without read
    permission, say) is an error naming it, never silently skipped."""
    def refuse(e: OSError) -> None:
        where = e.filename or root
        raise DataError(f"{where}: cannot list the folder ({e.strerror}); check its permissions, or move it out "
                        f"of {root}")

    files = []
    for folder, _dirs, names in os.walk(root, onerror=refuse):
        files += [Path(folder) / n for n in names if Path(n).suffix.lower() in IMAGE_SUFFIXES]
    return sorted(p for p in files if p.is_file())


def load_folder_arrays(folder: str | Path, size: int = 28, channels: int = 1, seed: int = 0,
                       valid_fraction: float = 0.1, test_fraction: float = 0.1
                       ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    """Images (N, C, size, size) in [0, 1], split train/valid/test by a seeded shuffle.

    Labels come from first-level subfolders (class names, sorted); images directly in the folder get
    one class named after the folder.
    """
    root = Path(folder).expanduser()
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if not 4 <= size <= MAX_IMAGE_SIZE:
        raise DataError(f"image size must be between 4 and {MAX_IMAGE_SIZE} pixels, got {size}; pass another --image-size")
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found; pass an existing folder with --data-dir")
    files = _image_files(root)
    if not files:
        raise DataError(f"{root}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))}); "
                        "point --data-dir at a folder of images")
    if len(files) < 3:
        raise DataError(f"{root}: only {len(files)} image(s); at least 3 are needed for train/valid/test splits")
    class_of = [p.relative_to(root).parts[0] if len(p.relative_to(root).parts) > 1 else root.name for p in files]
    classes = sorted(set(class_of))
    index = {c: i for i, c in enumerate(classes)}
    images = np.stack([_read_image(p, size, channels) for p in files])
    labels = np.array([index[c] for c in class_of], dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(files))
    n_valid = max(1, int(round(valid_fraction * len(files))))
    n_test = max(1, int(round(test_fraction * len(files))))
    parts = {"valid": order[:n_valid], "test": order[n_valid:n_valid + n_test], "train": order[n_valid + n_test:]}
    return {k: (images[v], labels[v]) for k, v in parts.items()}, classes
