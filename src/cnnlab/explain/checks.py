"""Is a saliency map right? Two checks that need no human judge.

- The **pointing game** (Zhang et al. 2016): a map scores a hit when its maximum lies on the object (within
  ``tolerance`` pixels of it). The baseline that knows nothing of the image points at its centre.
- **Deletion** (Petsiuk et al. 2018, in one step): replace the ``fraction`` of pixels a map ranks highest by a
  neutral value and measure how much the class score falls; a map that finds the evidence makes it fall
  more than deleting as many pixels at random does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cam import class_score
from .layers import inspecting


def peaks(maps: torch.Tensor) -> torch.Tensor:
    """``N x 2``: the (row, column) of each map's maximum (the first one, if several are equal)."""
    flat = maps.flatten(1).argmax(1)
    return torch.stack([flat // maps.shape[-1], flat % maps.shape[-1]], 1)


def _near(masks: torch.Tensor, tolerance: int) -> torch.Tensor:
    m = (masks > 0).float()[:, None]
    if tolerance:
        m = F.max_pool2d(m, 2 * tolerance + 1, stride=1, padding=tolerance)
    return m[:, 0] > 0


def pointing_hits(maps: torch.Tensor, masks: torch.Tensor, tolerance: int = 0) -> torch.Tensor:
    """Whether the maximum of each map ``N x H x W`` lies on the object of its mask (``N x H x W``, object
    pixels > 0), or within ``tolerance`` pixels of it."""
    p = peaks(maps.cpu())
    return _near(masks.cpu(), tolerance)[torch.arange(len(maps)), p[:, 0], p[:, 1]]


def centre_hits(masks: torch.Tensor, tolerance: int = 0) -> torch.Tensor:
    """The baseline: whether the centre pixel of each image lies on its object (or within ``tolerance``)."""
    h, w = masks.shape[-2:]
    return _near(masks, tolerance)[:, h // 2, w // 2]


def delete(x: torch.Tensor, order: torch.Tensor, fraction: float, fill: torch.Tensor | float = 0.0) -> torch.Tensor:
    """``x`` with, per image, the ``fraction`` of pixel positions that come first in ``order`` (``N x H*W``
    indices) set to ``fill`` in every channel."""
    n, c, h, w = x.shape
    k = int(round(fraction * h * w))
    keep = torch.ones(n, h * w, dtype=x.dtype, device=x.device)
    keep.scatter_(1, order[:, :k].to(x.device), 0.0)
    keep = keep.view(n, 1, h, w)
    fill = torch.as_tensor(fill, dtype=x.dtype, device=x.device)
    return x * keep + fill * (1 - keep)


@torch.no_grad()
def deletion_drop(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor,
                  fraction: float = 0.2, fill: torch.Tensor | float = 0.0, seed: int = 0,
                  score=class_score) -> tuple[torch.Tensor, torch.Tensor]:
    """How much each image's class score falls when the top ``fraction`` of its map's pixels are deleted, and
    when as many random pixels are: ``(drop_top, drop_random)``, each ``N``. ``fill`` is the value deleted
    pixels get in the model's input (0: the mean of normalised data)."""
    top = maps.flatten(1).argsort(1, descending=True)
    g = torch.Generator().manual_seed(seed)
    rand = torch.stack([torch.randperm(top.shape[1], generator=g) for _ in range(len(x))])
    with inspecting(model, frozen=False):
        base = score(model(x), targets)
        drop_top = base - score(model(delete(x, top, fraction, fill)), targets)
        drop_random = base - score(model(delete(x, rand, fraction, fill)), targets)
    return drop_top.float().cpu(), drop_random.float().cpu()
