"""What the page shows of a run, computed once at start-up from the library: its latent plane and test codes.

The pad is the principal plane of the test codes (as `vaekit manifold` draws it), in units of their standard
deviation along each axis; a few further principal directions become sliders. A 2-D latent uses its own axes.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vaekit.config import shown

__all__ = ["BadRequest", "Refused", "RunView", "png_data_url", "number", "integer", "flag", "text", "EXTRA_DIRECTIONS"]

EXTRA_DIRECTIONS = 3  # sliders beyond the pad's two axes
CODES_SHOWN = 1000


class BadRequest(ValueError):
    """An input the page or a script sent that cannot be used; answered with HTTP 400 and this sentence."""


class Refused(Exception):
    """A request the server will not take (403 forbidden, 413 too large, 503 busy); answered with its status and
    this sentence."""

    def __init__(self, status: int, sentence: str):
        super().__init__(sentence)
        self.status = status


def _shown(value: Any) -> str:
    """A value for a message, cut short: a message never echoes a whole request."""
    return shown(value, 40)


def number(body: dict[str, Any], key: str, low: float, high: float, default: float | None = None) -> float:
    """A finite number in [low, high] from a JSON body."""
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise BadRequest(f"{key} must be a number between {low:g} and {high:g}; got {_shown(value)}")
    if not low <= value <= high:  # compared exactly: an integer too large for a float is out of range, not an error
        raise BadRequest(f"{key} must be between {low:g} and {high:g}; got {_shown(value)}")
    return float(value)


def integer(body: dict[str, Any], key: str, low: int, high: int, default: int | None = None) -> int:
    """A whole number in [low, high] from a JSON body."""
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{key} must be a whole number between {low} and {high}; got {_shown(value)}")
    if not low <= value <= high:
        raise BadRequest(f"{key} must be between {low} and {high}; got {_shown(value)}")
    return value


def flag(body: dict[str, Any], key: str) -> bool:
    """An optional true/false from a JSON body (false when absent)."""
    value = body.get(key)
    if value not in (None, False, True):
        raise BadRequest(f"{key} must be true or false")
    return bool(value)


def text(body: dict[str, Any], key: str, max_length: int = 64) -> str | None:
    """An optional short string from a JSON body (None when absent or blank)."""
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise BadRequest(f"{key} must be text of at most {max_length} characters")
    return value.strip() or None


def png_data_url(image: Tensor, scale: int = 1) -> str:
    """A (C, H, W) image in [0, 1] as a PNG data URL."""
    from vaekit.plots import image_grid

    buffer = io.BytesIO()
    image_grid(image[None], nrow=1, pad=0, scale=scale).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass
class RunView:
    """One served run: the model, its plane (mean, directions, spreads) and its test codes on the pad."""

    id: str
    path: Path
    model: torch.nn.Module
    config: dict[str, Any]
    class_names: list[str]
    mean: Tensor
    directions: Tensor  # (2 + extra, D)
    spreads: Tensor  # (2 + extra,)
    codes: list[list[float]]
    test_images: Tensor

    @classmethod
    def open(cls, run_id: str, path: Path) -> RunView:
        import vaekit
        from vaekit.data import load_dataset
        from vaekit.evaluate import eval_images
        from vaekit.plots import principal_axes
        from vaekit.tasks import read_settings

        config = read_settings(path).flat()
        if config.get("task") == "poem":
            raise BadRequest(f"{path} is a poem run")
        model = vaekit.load(path)
        data = load_dataset(config["dataset"], config.get("data_dir"), config["image_size"], config["channels"],
                            config["seed"])
        x, y = eval_images(data.test, config["binarization"], 2000)
        d = model.latent_dim
        has_encoder = config["model"] != "gan"
        k = min(d, 2 + EXTRA_DIRECTIONS)
        if d == 2 or not has_encoder:  # the prior's own axes, as `vaekit manifold` does
            mean, directions, spreads = torch.zeros(d), torch.eye(d)[:k], torch.ones(k)
        else:
            with torch.no_grad():
                codes = model.posterior(x, y if model.config.uses_labels else None).mean
            mean, directions, spreads = principal_axes(codes, k)
        shown: list[list[float]] = []
        if has_encoder:
            with torch.no_grad():
                z = model.posterior(x[:CODES_SHOWN], y[:CODES_SHOWN] if model.config.uses_labels else None).mean
            uv = ((z - mean) @ directions[:2].T) / spreads[:2]
            shown = [[round(float(u), 3), round(float(v), 3), int(label)] for (u, v), label in zip(uv, y[:CODES_SHOWN],
                                                                                                   strict=True)]
        return cls(run_id, path, model, config, list(data.class_names), mean, directions, spreads, shown,
                   data.test.images[:200])

    @property
    def has_encoder(self) -> bool:
        return self.config["model"] != "gan"

    @property
    def conditional(self) -> bool:
        return bool(self.model.config.uses_labels)

    def describe(self) -> dict[str, Any]:
        c, h, w = self.config["image_shape"]
        return {"id": self.id, "name": self.path.name, "model": self.config["model"], "arch": self.config["arch"],
                "dataset": self.config["dataset"], "latent_dim": self.model.latent_dim, "shape": [c, h, w],
                "classes": self.class_names, "has_encoder": self.has_encoder, "conditional": self.conditional,
                "sliders": len(self.spreads) - 2, "codes": self.codes, "groups": self.groups}

    @property
    def groups(self) -> int:
        """How many groups of latents the model draws (1 for a flat model; the pad moves through the top one)."""
        return int(getattr(self.model, "latent_group_count", 1))

    def lower_temperature(self, body: dict[str, Any]) -> float:
        """The temperature the groups below the top one are drawn at (0, the default: their prior mean)."""
        value = number(body, "lower_temperature", 0, 3, default=0.0)
        if value > 0 and self.groups == 1:
            raise BadRequest(f"{self.id} has one group of latents; lower_temperature is for a hierarchical run")
        return value

    def label(self, body: dict[str, Any]) -> Tensor | None:
        """The class asked for (a conditional model needs one; default 0)."""
        if not self.conditional:
            if body.get("label") not in (None, ""):
                raise BadRequest(f"{self.id} is not conditional; it takes no label")
            return None
        return torch.tensor([integer(body, "label", 0, len(self.class_names) - 1, default=0)])

    def point(self, body: dict[str, Any]) -> Tensor:
        """z for pad coordinates (u, v) and slider values, each in standard deviations along its direction."""
        point = body.get("point")
        if not isinstance(point, list) or len(point) != 2:
            raise BadRequest("point must be a list [u, v] of two numbers")
        sliders = body.get("sliders") or []
        if not isinstance(sliders, list) or len(sliders) > len(self.spreads) - 2:
            raise BadRequest(f"sliders must be a list of at most {len(self.spreads) - 2} numbers")
        values = ([number({"point": v}, "point", -6, 6) for v in point]
                  + [number({"sliders": v}, "sliders", -6, 6) for v in sliders])
        coords = torch.zeros(len(self.spreads))
        coords[: len(values)] = torch.tensor(values)
        return (self.mean + (coords * self.spreads) @ self.directions)[None]

    def decode(self, z: Tensor, y: Tensor | None, lower_temperature: float = 0.0, seed: int = 0) -> Tensor:
        """Images for codes z; a hierarchy's lower groups at their prior mean, or drawn at `lower_temperature`
        with noise from `seed` (so one request always gives the same images)."""
        y = None if y is None else y.expand(len(z))
        if lower_temperature == 0:
            return self.model.decode(z, y)
        return self.model.decode(z, y, lower_temperature=lower_temperature,
                                 generator=torch.Generator().manual_seed(seed))

    def to_pad(self, z: Tensor) -> list[float]:
        return [round(float(v), 3) for v in ((z - self.mean) @ self.directions[:2].T / self.spreads[:2])[0]]
