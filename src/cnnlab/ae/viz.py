"""Pictures of autoencoders: rows of images (inputs, corrupted inputs, reconstructions, paths), samples,
and 2-D maps of codes."""

from __future__ import annotations

import os

import numpy as np
import torch


def _grid(images: torch.Tensor, nrow: int) -> torch.Tensor:
    """Images in [0, 1] tiled ``nrow`` to a row on a white ground, one pixel apart, always 3 channels: what
    torchvision's ``make_grid(..., padding=1, pad_value=1)`` gives (tests/test_ae.py checks it), written here
    because importing torchvision imports PyTorch's compiler, a second at the end of every run."""
    images = images.detach().float().cpu().clamp(0, 1)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    n, _, h, w = images.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    grid = torch.ones(3, rows * (h + 1) + 1, cols * (w + 1) + 1)
    for i, img in enumerate(images):
        y, x = divmod(i, cols)
        grid[:, 1 + y * (h + 1): 1 + y * (h + 1) + h, 1 + x * (w + 1): 1 + x * (w + 1) + w] = img
    return grid


def rows_grid(rows: dict[str, torch.Tensor], path: str | os.PathLike, title: str = "") -> None:
    """One labelled row per entry of ``rows`` (each a batch of images in [0, 1])."""
    from ..viz.plots import plt, save_figure

    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), 1, figsize=(max(4.0, 0.6 * n + 1.5), 0.85 * len(rows) + 0.5),
                             squeeze=False)
    for ax, (label, images) in zip(axes[:, 0], rows.items(), strict=True):
        ax.imshow(_grid(images, n).permute(1, 2, 0).numpy(), cmap="gray", interpolation="nearest")
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def reconstruction_grid(clean: torch.Tensor, recon: torch.Tensor, path: str | os.PathLike,
                        noisy: torch.Tensor | None = None, title: str = "") -> None:
    """Rows: the input, the corrupted input (when denoising) and the reconstruction."""
    rows = {"input": clean, **({"corrupted input": noisy} if noisy is not None else {}), "reconstruction": recon}
    rows_grid(rows, path, title)


def samples_grid(images: torch.Tensor, path: str | os.PathLike, title: str = "samples from the prior") -> None:
    from ..viz.plots import plt, save_figure

    nrow = int(np.ceil(np.sqrt(len(images))))
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(_grid(images, nrow).permute(1, 2, 0).numpy(), cmap="gray", interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title)
    save_figure(fig, path)


def code_maps(maps: dict[str, tuple[np.ndarray, tuple[str, str]]], labels: np.ndarray, classes: list[str],
              path: str | os.PathLike) -> None:
    """Side-by-side 2-D scatter plots, coloured by class: ``maps`` gives each one's title, its points and its
    two axis labels (:func:`cnnlab.ae.apps.projection`); the units of a projection mean nothing, so no ticks."""
    from ..viz.plots import plt, save_figure

    fig, axes = plt.subplots(1, len(maps), figsize=(5.2 * len(maps), 4.6), squeeze=False)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for ax, (title, (xy, (xlabel, ylabel))) in zip(axes[0], maps.items(), strict=True):
        for c, name in enumerate(classes):
            sel = labels == c
            ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color=cmap(c % cmap.N), label=name, alpha=0.8)
        ax.set_title(title, fontsize=10)
        ax.set(xlabel=xlabel, ylabel=ylabel)
        ax.set_xticks([])
        ax.set_yticks([])
    if len(classes) <= 20:
        axes[0][-1].legend(markerscale=2, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    save_figure(fig, path)
