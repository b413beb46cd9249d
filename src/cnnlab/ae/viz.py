"""Pictures of autoencoders: reconstruction grids and samples."""

from __future__ import annotations

import os

import torch


def _grid(images: torch.Tensor, nrow: int) -> torch.Tensor:
    from torchvision.utils import make_grid

    return make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=1, pad_value=1.0)


def reconstruction_grid(clean: torch.Tensor, recon: torch.Tensor, path: str | os.PathLike,
                        noisy: torch.Tensor | None = None, title: str = "") -> None:
    """Rows: the input, the corrupted input (when denoising) and the reconstruction."""
    from ..viz.plots import _save, plt

    rows = [("input", clean)] + ([("corrupted input", noisy)] if noisy is not None else []) + \
        [("reconstruction", recon)]
    n = len(clean)
    fig, axes = plt.subplots(len(rows), 1, figsize=(max(4.0, 0.6 * n), 0.75 * len(rows) * max(1.0, 0.6 * 1) + 0.6),
                             squeeze=False)
    for ax, (label, images) in zip(axes[:, 0], rows, strict=True):
        ax.imshow(_grid(images, n).permute(1, 2, 0).numpy(), cmap="gray", interpolation="nearest")
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    _save(fig, path)


def samples_grid(images: torch.Tensor, path: str | os.PathLike, title: str = "samples from the prior") -> None:
    from ..viz.plots import _save, plt

    nrow = int(len(images) ** 0.5 + 0.999)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(_grid(images, nrow).permute(1, 2, 0).numpy(), cmap="gray", interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title)
    _save(fig, path)
