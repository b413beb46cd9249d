"""Pictures of segmentations: masks in colour, overlays on the image, and the image / truth / prediction grid."""

from __future__ import annotations

import os

import numpy as np
import torch

# class 0 (background) is black in a mask and left uncoloured in an overlay; then matplotlib's tab10 colours
PALETTE = np.array([(0, 0, 0), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)],
                   dtype=np.float32) / 255


def colours(k: int) -> np.ndarray:
    """``k x 3`` RGB colours in [0, 1] for classes 0..k-1 (cycling after ten foreground classes)."""
    return np.array([PALETTE[0] if c == 0 else PALETTE[1 + (c - 1) % (len(PALETTE) - 1)] for c in range(k)])


def colour_mask(mask: torch.Tensor, k: int) -> np.ndarray:
    """An ``H x W`` class map as an ``H x W x 3`` picture."""
    return colours(k)[mask.cpu().numpy()]


def _rgb(image: torch.Tensor) -> np.ndarray:
    """``C x H x W`` in [0, 1] -> ``H x W x 3`` (gray repeated; other channel counts: their mean)."""
    x = image.detach().float().cpu().clamp(0, 1)
    if x.shape[0] != 3:
        x = x.mean(0, keepdim=True).repeat(3, 1, 1)
    return x.permute(1, 2, 0).numpy()


def overlay(image: torch.Tensor, mask: torch.Tensor, k: int, alpha: float = 0.6) -> np.ndarray:
    """The image with every foreground pixel blended with its class colour, ``H x W x 3`` in [0, 1]."""
    rgb = _rgb(image)
    fg = (mask.cpu().numpy() > 0)[..., None]
    return np.where(fg, (1 - alpha) * rgb + alpha * colour_mask(mask, k), rgb)


def overlay_grid(images: torch.Tensor, truth: torch.Tensor, pred: torch.Tensor, classes: list[str],
                 path: str | os.PathLike) -> None:
    """One row per image: the image, its true mask and the predicted mask (class colours, background black),
    with a colour key."""
    from matplotlib.patches import Patch

    from ..viz.plots import plt, save_figure

    n, k = len(images), len(classes)
    fig, axes = plt.subplots(n, 3, figsize=(6, 2 * n + 0.6), squeeze=False)
    for i in range(n):
        panels = (_rgb(images[i]), colour_mask(truth[i], k), colour_mask(pred[i], k))
        for j, (ax, panel) in enumerate(zip(axes[i], panels, strict=True)):
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(("image", "true mask", "predicted mask")[j], fontsize=10)
    cols = colours(k)
    fig.legend(handles=[Patch(color=cols[c], label=classes[c]) for c in range(1, k)], loc="lower center",
               ncol=min(k - 1, 5), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.35 / (2 * n + 0.6), 1, 1))
    save_figure(fig, path)
