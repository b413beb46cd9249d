"""Stochastic depth: a residual branch dropped for whole samples in training (Huang, Sun, Liu, Sedra &
Weinberger, "Deep Networks with Stochastic Depth", ECCV 2016)."""

from __future__ import annotations

import torch
from torch import nn


class DropPath(nn.Module):
    """Zero the branch for each sample with probability ``p`` in training, and scale the kept ones by
    ``1 / (1 - p)`` so that its expected value does not change; the identity in eval mode.

    The masks draw from torch's global generator, which the training loop seeds per epoch: a resumed run
    drops the same samples as an uninterrupted one.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop-path probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p:g}"
