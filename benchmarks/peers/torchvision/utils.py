"""torchvision.utils.save_image: a grid of images (2-pixel padding, nrow per row) saved as a PNG."""

import math

import torch
from PIL import Image


def save_image(tensor, fp, nrow=8, padding=2, **kwargs):
    n, c, h, w = tensor.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = torch.zeros(c, rows * (h + padding) + padding, cols * (w + padding) + padding)
    for i in range(n):
        r, col = divmod(i, cols)
        grid[:, padding + r * (h + padding):padding + r * (h + padding) + h,
             padding + col * (w + padding):padding + col * (w + padding) + w] = tensor[i]
    arr = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()
    Image.fromarray(arr[:, :, 0] if c == 1 else arr).save(fp)
