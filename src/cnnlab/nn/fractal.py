"""Fractal blocks and drop-path (Larsson, Maire & Shakhnarovich, "FractalNet: Ultra-Deep Neural Networks without
Residuals", ICLR 2017).

The expansion rule: ``f_1(z) = conv(z)`` and ``f_{C+1}(z) = join(f_C(f_C(z)), conv(z))``, where a join is the
element-wise mean of its inputs. Expanded, a block of ``C`` columns is a truncated fractal: column ``c``
(0-based, 0 the shallowest) is a chain of ``2^c`` conv layers, so the deepest path has ``2^(C-1)`` of them and
the block ``2^C - 1`` in all. Nested joins that meet at the same point are one join (the paper's Fig. 1): it
averages all the columns that end there with equal weight. Counting positions along the deepest column, the
join after its ``p``-th layer (``p`` even) merges every column whose layers are ``2^(C-1-c)`` positions long
and divide ``p``; the last one (``p = 2^(C-1)``) merges all ``C`` columns.

Drop-path, the paper's regulariser, drops whole inputs of the joins for one mini-batch:

- local: each join drops each of its inputs with probability ``p``, keeping at least one
  (:func:`local_drop_path_mask`);
- global: one column is used, in every block; a join where that column does not end is skipped.

A dropped input is not computed at all: the layers that only feed it are skipped, so they get no gradient.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .conv import LayerFactory, make_act, same_padding


class FractalConv(nn.Sequential):
    """The paper's conv layer: ``Conv2d 3x3 -> dropout -> norm -> activation``.

    Sub-modules are ``conv``, ``drop`` (only when ``drop_rate > 0``), ``bn`` and ``act`` (absent when
    ``norm_layer`` or ``act_layer`` is None). The dropout sits between the convolution and batch norm, where
    the authors' Caffe release puts it (the paper only gives the per-block rates). The convolution has a bias
    only without a norm layer.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, drop_rate: float = 0.0,
                 norm_layer: LayerFactory | None = nn.BatchNorm2d, act_layer: LayerFactory | None = nn.ReLU) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["conv"] = nn.Conv2d(in_chs, out_chs, kernel_size, padding=same_padding(kernel_size),
                                   bias=norm_layer is None)
        if drop_rate > 0:
            layers["drop"] = nn.Dropout(drop_rate)
        if norm_layer is not None:
            layers["bn"] = norm_layer(out_chs)
        if act_layer is not None:
            layers["act"] = make_act(act_layer)
        super().__init__(layers)
        self.in_chs, self.out_chs = in_chs, out_chs


def local_drop_path_mask(num_inputs: int, p: float) -> list[bool]:
    """Which inputs of a join survive local drop-path: each is dropped with probability ``p``; when all are
    dropped, one chosen uniformly survives. Draws from torch's global generator (CPU, no device sync)."""
    keep = (torch.rand(num_inputs, device="cpu") >= p).tolist()
    if not any(keep):
        keep[int(torch.randint(num_inputs, (), device="cpu"))] = True
    return keep


def join(inputs: list[torch.Tensor]) -> torch.Tensor:
    """The paper's join: the element-wise mean of its inputs (one input passes through unchanged)."""
    out = inputs[0]
    for x in inputs[1:]:
        out = out + x
    return out / len(inputs) if len(inputs) > 1 else out


class FractalBlock(nn.Module):
    """A fractal block of ``num_columns`` columns (the expansion rule ``f_C``), laid out column by column.

    ``columns[c]`` is a chain of ``2^c`` :class:`FractalConv` layers; the first layer of every column maps
    ``in_chs`` to ``out_chs``, the others keep ``out_chs``. ``joins`` lists, join by join, the columns each
    one averages (``C = 3``: ``[(1, 2), (0, 1, 2)]``).

    ``forward(x, column=None, drop_prob=0.0)``: all columns, every join averaging all its inputs; ``column=c``
    uses column ``c`` alone (global drop-path, or the paper's single-column evaluation); ``drop_prob > 0``
    applies local drop-path at every join. The model decides per mini-batch and passes the choice to each block.

    Args:
        in_chs, out_chs: channels in and out.
        num_columns: ``C``; the deepest column has ``2^(C-1)`` layers.
        drop_rate: dropout inside each conv layer of this block.
        norm_layer, act_layer: the layer types of :class:`FractalConv`.
    """

    def __init__(self, in_chs: int, out_chs: int, num_columns: int, drop_rate: float = 0.0,
                 norm_layer: LayerFactory | None = nn.BatchNorm2d, act_layer: LayerFactory | None = nn.ReLU) -> None:
        super().__init__()
        if num_columns < 1:
            raise ValueError(f"a fractal block has at least 1 column, got {num_columns}")
        self.in_chs, self.out_chs, self.num_columns = in_chs, out_chs, num_columns
        self.columns = nn.ModuleList(
            nn.Sequential(*[FractalConv(in_chs if i == 0 else out_chs, out_chs, 3, drop_rate, norm_layer, act_layer)
                            for i in range(2**c)])
            for c in range(num_columns)
        )
        depth = 2 ** (num_columns - 1)
        # a layer of column c spans 2^(C-1-c) positions of the deepest column; joins come every 2 positions
        self._span = [2 ** (num_columns - 1 - c) for c in range(num_columns)]
        self._every = [max(s, 2) for s in self._span]   # positions between two joins a column takes part in
        self.joins: list[tuple[int, ...]] = [tuple(c for c in range(num_columns) if p % self._every[c] == 0)
                                             for p in range(2, depth + 1, 2)]
        self._positions = list(range(2, depth + 1, 2))

    @property
    def depth(self) -> int:
        """Conv layers on the deepest path: ``2^(C-1)``."""
        return 2 ** (self.num_columns - 1)

    def _segment(self, c: int, end: int, x: torch.Tensor) -> torch.Tensor:
        """Column ``c``'s layers between its previous join and the join at position ``end``."""
        span = self._span[c]
        for i in range((end - self._every[c]) // span, end // span):
            x = self.columns[c][i](x)
        return x

    def forward(self, x: torch.Tensor, column: int | None = None, drop_prob: float = 0.0) -> torch.Tensor:
        if column is not None and not 0 <= column < self.num_columns:
            raise ValueError(f"column {column} out of range: the block has columns 0..{self.num_columns - 1}")
        if self.num_columns == 1:                       # f_1: one conv layer, no join
            return self.columns[0](x)
        inputs: list[torch.Tensor | None] = [x] * self.num_columns   # each column's input: its last join's output
        out: torch.Tensor | None = None
        for end, cols in zip(self._positions, self.joins, strict=True):
            if column is not None:
                keep = [c == column for c in cols]
            elif self.training and drop_prob > 0:
                keep = local_drop_path_mask(len(cols), drop_prob)
            else:
                keep = [True] * len(cols)
            kept = [self._segment(c, end, inputs[c]) for c, k in zip(cols, keep, strict=True) if k]
            out = join(kept) if kept else None   # nothing kept: only under global drop-path, a skipped join
            for c in cols:
                inputs[c] = out
        assert out is not None  # the last join takes every column: one of them is always kept
        return out

    def extra_repr(self) -> str:
        return f"columns={self.num_columns}, depth={self.depth}, joins={self.joins}"
