"""Procedurally generated shapes with per-pixel masks, at any image size and count.

Each image holds one shape (circle, square, triangle or cross) of random colour, size, position and
rotation on a random dark background. The mask gives every pixel its class: 0 for background, k + 1 for
shape class k. Generation is vectorised over the whole batch (no per-image Python loop).
"""

from __future__ import annotations

import math

import torch

SHAPES = ("circle", "square", "triangle", "cross")
MIN_SIZE = 8  # the smallest image side at which every shape covers at least one pixel


def _inside(kind: str, u: torch.Tensor, v: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Membership of rotated, centred coordinates (u, v) in a shape of radius r (all N x H x W)."""
    if kind == "circle":
        return u * u + v * v <= r * r
    if kind == "square":
        half = r / math.sqrt(2) * 1.05
        return (u.abs() <= half) & (v.abs() <= half)
    if kind == "triangle":  # equilateral, circumradius r: three half-planes
        inside = torch.ones_like(u, dtype=torch.bool)
        for k in range(3):
            a = 2 * math.pi * k / 3 + math.pi / 2
            inside &= u * math.cos(a) + v * math.sin(a) >= -r / 2
        return inside
    if kind == "cross":
        arm = r / 3
        return ((u.abs() <= arm) & (v.abs() <= r)) | ((v.abs() <= arm) & (u.abs() <= r))
    raise ValueError(kind)


def generate_shapes(
    count: int, size: int = 32, classes: tuple[str, ...] = SHAPES, seed: int = 0, channels: int = 3
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``count`` images ``N x channels x size x size`` in [0, 1], labels ``N`` and masks ``N x size x size``.

    Classes are balanced (``count`` is spread evenly over them) and shuffled.
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % len(classes)
    labels = labels[torch.randperm(count, generator=g)]
    rand = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    r = (0.18 + 0.17 * rand(count)) * size                    # radius: 18% to 35% of the image
    cx = r + (size - 2 * r) * rand(count)                     # the whole shape stays inside
    cy = r + (size - 2 * r) * rand(count)
    theta = 2 * math.pi * rand(count)
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    dx, dy = xs - cx[:, None, None], ys - cy[:, None, None]   # N x H x W
    cos, sin = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    rr = r[:, None, None].expand_as(u)
    masks = torch.zeros(count, size, size, dtype=torch.long)
    for k, kind in enumerate(classes):
        sel = labels == k
        if sel.any():
            inside = _inside(kind, u[sel], v[sel], rr[sel])
            masks[sel] = inside.long() * (k + 1)
    background = 0.25 * rand(count, channels, 1, 1)
    colour = 0.35 + 0.65 * rand(count, channels, 1, 1)
    fg = (masks > 0).unsqueeze(1).float()
    images = background * (1 - fg) + colour * fg
    images = (images + 0.03 * torch.randn(images.shape, generator=g)).clamp(0, 1)
    return images, labels, masks
