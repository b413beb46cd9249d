"""Image grids, heat-map overlays and PNG files, from tensors of images in [0, 1].

Grids are put together as arrays and written with Pillow, without a figure: a grid of a hundred tiles costs
milliseconds, which matters for the pictures every run's report carries. matplotlib is imported only for a
colour map other than "jet" (:func:`colorize`): its import, about 0.4 s, is not paid by a training run or by
the commands that draw nothing.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np
import torch

from .._io import atomic_write


def as_rgb(images: torch.Tensor) -> torch.Tensor:
    """``N x C x H x W`` images in [0, 1] as ``N x 3 x H x W``: one channel repeated, three kept, other counts
    averaged to grey."""
    images = images.detach().float().cpu().clamp(0, 1)
    if images.shape[1] == 3:
        return images
    grey = images if images.shape[1] == 1 else images.mean(1, keepdim=True)
    return grey.expand(-1, 3, -1, -1)


# "jet", the heat maps' colour map, as the value at which each of red, green and blue reaches each level between
# its knots (linear in between): the map every CAM library draws with, defined here so that a run's report,
# whose Grad-CAM pictures use it, does not import matplotlib for it (0.4 s). tests/test_viz.py checks it
# against matplotlib's own.
_JET_KNOTS = {
    "red": ((0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)),
    "green": ((0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)),
    "blue": ((0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)),
}
_LEVELS = 256  # entries of the look-up table, as matplotlib's colour maps have


def _jet_table() -> np.ndarray:
    at = np.linspace(0.0, 1.0, _LEVELS)
    return np.stack([np.interp(at, *zip(*_JET_KNOTS[c], strict=True)) for c in ("red", "green", "blue")], 1)


def colorize(values: torch.Tensor, cmap: str = "jet") -> torch.Tensor:
    """``N x H x W`` values in [0, 1] through a colour map: ``N x 3 x H x W``. "jet" is cnnlab's own (the same
    256 colours as matplotlib's, NaN black); any other name is matplotlib's."""
    v = values.detach().float().cpu().clamp(0, 1).numpy()
    if cmap == "jet":
        missing = np.isnan(v)  # black, as matplotlib draws what is not a number
        rgb = _jet_table()[np.minimum((np.where(missing, 0, v) * _LEVELS).astype(np.int64), _LEVELS - 1)]
        rgb[missing] = 0.0
    else:
        from matplotlib import colormaps

        rgb = colormaps[cmap](v)[..., :3]
    return torch.from_numpy(rgb).permute(0, 3, 1, 2).float()


def overlay(images: torch.Tensor, heat: torch.Tensor, alpha: float = 0.45, cmap: str = "jet") -> torch.Tensor:
    """Heat maps ``N x H x W`` in [0, 1] blended over images ``N x C x H x W`` (resized to them)."""
    if heat.shape[-2:] != images.shape[-2:]:
        heat = torch.nn.functional.interpolate(heat[:, None].float(), size=images.shape[-2:], mode="bilinear",
                                               align_corners=False)[:, 0]
    return (1 - alpha) * as_rgb(images) + alpha * colorize(heat, cmap)


def tile(images: torch.Tensor, ncol: int | None = None, pad: int = 1, scale: int = 1,
         background: float = 1.0) -> np.ndarray:
    """Images ``N x C x H x W`` in [0, 1] laid out in a grid (``ncol`` per row, default near-square), each
    enlarged ``scale`` times by pixel repetition, ``pad`` pixels apart: an ``H' x W' x 3`` uint8 array."""
    rgb = as_rgb(images)
    if scale > 1:
        rgb = rgb.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    n, _, h, w = rgb.shape
    ncol = ncol or max(1, int(np.ceil(np.sqrt(n))))
    nrow = -(-n // ncol)
    grid = torch.full((3, nrow * (h + pad) + pad, ncol * (w + pad) + pad), background)
    for i in range(n):
        r, c = divmod(i, ncol)
        grid[:, pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = rgb[i]
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def titled(grid: np.ndarray, titles: Sequence[str], pad: int = 1) -> np.ndarray:
    """A one-row grid of ``len(titles)`` panels, as :func:`tile` lays them out ``pad`` pixels apart, under a
    white strip with each panel's title centred over it, in black (PIL's own font: no font file is needed). A
    title wider than its panel is cut to fit; ``grid`` itself is unchanged below the strip."""
    from PIL import Image, ImageDraw, ImageFont

    height, width = grid.shape[:2]
    panel = (width - pad) // len(titles) - pad
    size = max(8, min(14, panel // 7))  # about 7 characters per panel's width at least
    try:
        font = ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # a Pillow without FreeType: its fixed bitmap font
        font = ImageFont.load_default()
    strip = Image.new("RGB", (width, size + 6), "white")
    draw = ImageDraw.Draw(strip)
    for i, text in enumerate(titles):
        while text and draw.textlength(text, font=font) > panel:
            text = text[:-1]
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        x = pad + i * (panel + pad) + (panel - (right - left)) // 2 - left
        draw.text((x, (size + 6 - (bottom - top)) // 2 - top), text, fill="black", font=font)
    return np.concatenate([np.asarray(strip, dtype=np.uint8), grid])


def upscale_to(side: int, h: int, w: int) -> int:
    """The integer enlargement that brings the larger of ``h``, ``w`` to about ``side`` pixels (at least 1)."""
    return max(1, round(side / max(h, w)))


def png_bytes(array: np.ndarray) -> bytes:
    """An ``H x W x 3`` uint8 array as PNG file contents."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="png")
    return buf.getvalue()


def save_png(array: np.ndarray, path: str | os.PathLike) -> None:
    """An ``H x W x 3`` uint8 array written as a PNG file (atomically; the folder is created)."""
    data = png_bytes(array)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    atomic_write(path, write)
