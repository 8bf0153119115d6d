"""Figures: sample grids, reconstructions, interpolations, the latent manifold, latent scatter, curves.

Each `save_*` function takes a trained model (and data where needed), writes one PNG and returns its path.
Grids are drawn with Pillow (pixel-exact, fast); scatter plots and curves with matplotlib.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

__all__ = ["image_grid", "save_grid", "save_samples", "save_reconstructions", "save_interpolation",
           "save_manifold", "save_latent_scatter", "save_curves", "principal_axes"]


def image_grid(images: Tensor, nrow: int, pad: int = 2, scale: int = 2) -> Image.Image:
    """Tile (N, C, H, W) images in [0, 1] into one picture, `nrow` per row, with a white border."""
    images = images.detach().float().clamp(0, 1).cpu()
    n, c, h, w = images.shape
    ncol = nrow
    nrows = math.ceil(n / ncol)
    canvas = torch.ones(c, nrows * (h + pad) + pad, ncol * (w + pad) + pad)
    for i in range(n):
        r, col = divmod(i, ncol)
        canvas[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = images[i]
    array = (canvas.numpy() * 255).round().astype(np.uint8)
    img = Image.fromarray(array[0], "L") if c == 1 else Image.fromarray(array.transpose(1, 2, 0), "RGB")
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST) if scale > 1 else img


def save_grid(images: Tensor, path: str | Path, nrow: int) -> Path:
    """Write a grid of images as PNG (parent folders created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(images, nrow).save(path)
    return path


TITLE_BAND, LABEL_COLUMN, FOOTER_BAND = 26, 84, 22  # pixels a captioned figure adds to its grid
_PAD, _SCALE = 2, 2


def _font(size: int = 14) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def captioned(grid: Image.Image, title: str, tile: tuple[int, int], row_labels: list[str] | None = None,
              col_labels: dict[int, str] | None = None, footer: str | None = None) -> Image.Image:
    """The grid with its caption drawn in: a title band on top (TITLE_BAND px), row labels in a column on the
    left (LABEL_COLUMN px, when given), column labels over the first row, and a footer (FOOTER_BAND px)."""
    h, w = tile
    left = LABEL_COLUMN if row_labels else 0
    top = TITLE_BAND + (FOOTER_BAND if col_labels else 0)
    bottom = FOOTER_BAND if footer else 0
    canvas = Image.new("RGB", (grid.width + left, grid.height + top + bottom), "white")
    canvas.paste(grid.convert("RGB"), (left, top))
    draw = ImageDraw.Draw(canvas)
    title, font = _fitted(draw, title, canvas.width - 12)
    draw.text((6, 5), title, fill="black", font=font)
    step_y, step_x = (h + _PAD) * _SCALE, (w + _PAD) * _SCALE
    for r, label in enumerate(row_labels or []):
        draw.text((4, top + _PAD * _SCALE + r * step_y + h * _SCALE // 2 - 8), label, fill="#333", font=_font(13))
    for c, label in (col_labels or {}).items():
        draw.text((left + _PAD * _SCALE + c * step_x, TITLE_BAND + 2), label, fill="#333", font=_font(13))
    if footer:
        draw.text((6, canvas.height - FOOTER_BAND + 3), footer, fill="#444", font=_font(12))
    return canvas


def _fitted(draw: ImageDraw.ImageDraw, text: str, width: int) -> tuple[str, ImageFont.ImageFont]:
    """The title in the largest font (15 down to 9 px) that fits `width`; cut with an ellipsis if none does,
    so a narrow grid (a few samples of one class) still shows its title's start."""
    for size in range(15, 8, -1):
        font = _font(size)
        if draw.textlength(text, font=font) <= width:
            return text, font
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text.rstrip(" ,:") + "…", font


def save_figure(images: Tensor, path: str | Path, nrow: int, title: str, row_labels: list[str] | None = None,
                col_labels: dict[int, str] | None = None, footer: str | None = None) -> Path:
    """Write a captioned grid (see `captioned`) as PNG and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = image_grid(images, nrow, pad=_PAD, scale=_SCALE)
    captioned(grid, title, tuple(images.shape[-2:]), row_labels, col_labels, footer).save(path)
    return path


def save_samples(model: torch.nn.Module, path: str | Path, n: int = 64, label: int | None = None,
                 title: str = "", class_names: list[str] | None = None,
                 temperature: float | list[float] | None = None) -> Path:
    """A captioned grid of n samples (of one class when `label` is given and the model is conditional), at the
    model's own temperature unless `temperature` is given (one, or one a latent group)."""
    what = f"{n} samples from the model"
    if label is not None:  # the class first: a narrow grid's title may be cut short
        what = f"class {class_names[label] if class_names else label}, {n} samples"
    elif model.config.uses_labels:
        what += ", classes in turn"
    extra = {}
    if temperature is not None:
        extra["temperature"] = temperature
        what += f", temperature {temperature if isinstance(temperature, float) else ','.join(f'{t:g}' for t in temperature)}"
    return save_figure(model.sample(n, label=label, **extra).cpu(), path, nrow=int(math.ceil(math.sqrt(n))),
                       title=_title(title, what))


def _title(run_title: str, what: str) -> str:
    return f"{run_title}: {what}" if run_title else what


def _labels_for(model: torch.nn.Module, y: Tensor) -> Tensor | None:
    return y if model.config.uses_labels else None


def save_reconstructions(model: torch.nn.Module, images: Tensor, labels: Tensor, path: str | Path,
                         title: str = "") -> Path:
    """Originals on odd rows, their reconstructions on the row beneath, each row labelled."""
    device = next(model.parameters()).device
    recon = model.reconstruct(images.to(device), _labels_for(model, labels.to(device))).cpu()
    ncol = min(8, len(images))
    rows = []
    for start in range(0, len(images), ncol):  # a short last pair of rows is padded with blank tiles
        for part in (images[start:start + ncol].cpu(), recon[start:start + ncol]):
            blank = torch.ones(ncol - len(part), *part.shape[1:])
            rows.append(torch.cat([part, blank]))
    labels_ = ["input", "reconstr."] * (len(rows) // 2)
    return save_figure(torch.cat(rows), path, nrow=ncol, title=_title(title, "test images and their reconstructions"),
                       row_labels=labels_, footer="reconstruction: the mean of p(x|z) at the posterior mean of z")


def save_interpolation(model: torch.nn.Module, images: Tensor, labels: Tensor, path: str | Path,
                       steps: int = 10, title: str = "") -> Path:
    """Decode straight lines between the posterior means of consecutive image pairs, one pair a row."""
    device = next(model.parameters()).device
    x, y = images.to(device), labels.to(device)
    with torch.no_grad():
        if model.config.model == "gan":  # no encoder: walk between prior draws instead of image codes
            z = model.prior().sample((len(x),))
        else:
            z = model.posterior(x, _labels_for(model, y)).mean
    rows = []
    t = torch.linspace(0, 1, steps, device=device)[:, None]
    for i in range(0, len(z) - 1, 2):
        path_z = (1 - t) * z[i] + t * z[i + 1]
        row_y = None
        if model.config.uses_labels:  # conditioned on the first image's label along the whole line
            row_y = y[i].expand(steps)
        rows.append(model.decode(path_z, row_y).cpu())
    ends = "two prior draws" if model.config.model == "gan" else "the codes of two test images"
    return save_figure(torch.cat(rows), path, nrow=steps, title=_title(title, f"straight lines between {ends}"),
                       col_labels={0: "start", steps - 1: "end"},
                       footer=f"{steps} evenly spaced points a row, each decoded")


def principal_axes(codes: Tensor, k: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    """(mean, top-k directions (k, D), per-direction standard deviations) of a cloud of latent codes."""
    codes = codes.double()
    mean = codes.mean(0)
    _, s, vh = torch.linalg.svd(codes - mean, full_matrices=False)
    std = s[:k] / math.sqrt(max(len(codes) - 1, 1))
    return mean.float(), vh[:k].float(), std.float()


def save_manifold(model: torch.nn.Module, path: str | Path, n: int = 20, images: Tensor | None = None,
                  labels: Tensor | None = None, title: str = "") -> tuple[Path, str]:
    """Decode a 2-D grid of latent points, as in the classic figure; returns the path and what the axes are.

    With a 2-D latent the grid spans the Gaussian quantiles 5%..95% of p(z). With more dimensions it spans
    the same quantiles along the two principal axes of the test codes (needs `images`), others at the mean.
    """
    device = next(model.parameters()).device
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n))
    grid = torch.stack(torch.meshgrid(q, q.flip(0), indexing="xy"), dim=-1).reshape(-1, 2)
    d = model.latent_dim
    if d == 2:
        z, axes = grid, "z1, z2 at the 5%..95% quantiles of N(0, 1)"
    elif model.config.model == "gan":  # no encoder to find a principal plane: the first two coordinates
        z = torch.cat([grid, torch.zeros(len(grid), d - 2)], dim=1)
        axes = f"z1, z2 at the 5%..95% quantiles of N(0, 1), the other {d - 2} coordinates at 0"
    else:
        if images is None:
            raise ValueError("a latent space of more than 2 dimensions needs images to find its principal plane")
        with torch.no_grad():
            codes = model.posterior(images.to(device), _labels_for(model, labels.to(device))).mean.cpu()
        mean, dirs, std = principal_axes(codes)
        z = mean + (grid * std) @ dirs
        axes = f"the two principal axes of {len(codes)} test codes (of {d} dimensions), ±1.64 std"
    y = None
    if model.config.uses_labels:
        y = torch.zeros(len(z), dtype=torch.long, device=device)
    decoded = torch.cat([model.decode(z[i:i + 1000].to(device), None if y is None else y[i:i + 1000]).cpu()
                         for i in range(0, len(z), 1000)])  # bounded memory whatever the grid side
    ticks = {0: f"{float(q[0]):+.2f}", n // 2: f"{float(q[n // 2]):+.2f}", n - 1: f"{float(q[-1]):+.2f}"}
    out = save_figure(decoded, path, nrow=n, title=_title(title, "the latent manifold, decoded"), col_labels=ticks,
                      footer=f"axes: {axes}; left to right and bottom to top" +
                             (f"; class {0}" if y is not None else ""))
    return out, axes


def save_latent_scatter(model: torch.nn.Module, images: Tensor, labels: Tensor, path: str | Path,
                        class_names: list[str] | None = None) -> Path:
    """Posterior means of test images, coloured by label; PCA to 2-D when the latent is larger."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    device = next(model.parameters()).device
    with torch.no_grad():
        codes = model.posterior(images.to(device), _labels_for(model, labels.to(device))).mean.cpu()
    if codes.shape[1] > 2:
        mean, dirs, _ = principal_axes(codes)
        codes, xlabel, ylabel = (codes - mean) @ dirs.T, "PC 1", "PC 2"
    else:
        xlabel, ylabel = "z1", "z2"
    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    points = ax.scatter(codes[:, 0].numpy(), codes[:, 1].numpy(), c=labels.numpy(), cmap="tab10", s=4, alpha=0.8)
    handles, _ = points.legend_elements()
    names = class_names or [str(i) for i in range(len(handles))]
    ax.legend(handles, names[: len(handles)], loc="best", fontsize=8, markerscale=1.2)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=f"latent codes of {len(codes)} test images")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def save_curves(run_dir: str | Path, path: str | Path) -> Path:
    """Training loss and validation bound per epoch, read from metrics.jsonl."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(run_dir, "metrics.jsonl").read_text().splitlines() if line.strip()]
    epochs = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(epochs, [-r["train_loss"] for r in rows], label="train objective")
    key = "valid_elbo" if "valid_elbo" in rows[0] else "valid_log_likelihood"
    ax.plot(epochs, [r[key] for r in rows], label=key.replace("_", " "))
    ax.set(xlabel="epoch", ylabel="nats per image", title=str(run_dir))
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
