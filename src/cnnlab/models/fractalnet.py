"""FractalNet for CIFAR: ultra-deep networks without residuals, built by a fractal expansion rule.

Paper: Larsson, Maire & Shakhnarovich, "FractalNet: Ultra-Deep Neural Networks without Residuals", ICLR 2017.

Each block is the fractal ``f_C`` (:class:`~cnnlab.nn.fractal.FractalBlock`): ``f_1(z) = conv(z)``,
``f_{C+1}(z) = join(f_C(f_C(z)), conv(z))``, the join an element-wise mean. With ``C = 3`` columns of 1, 2 and
4 conv layers (3x3, then batch norm and ReLU), ``B = 5`` blocks and a 2x2 max-pool after each, the deepest path
has ``B * 2^(C-1) = 20`` conv layers (35 in all):

```
block1: 3 columns (1, 2, 4 convs), 64 channels     64 x 32 x 32
pool1: max 2x2                                     64 x 16 x 16
block2, pool2: 128                                 128 x 8 x 8
block3, pool3: 256                                 256 x 4 x 4
block4, pool4: 512                                 512 x 2 x 2
block5, pool5: 512                                 512 x 1 x 1
global average pooling, fully connected            num_classes
```

Training options (all off in eval mode, every join then averaging all its inputs):

- ``drop_path``: ``"none"`` (the paper's plain FractalNet, the default), ``"local"`` (each join drops each input
  with probability ``local_drop``, 0.15 in the paper, keeping at least one), ``"global"`` (one column for the
  whole network), or ``"mixed"``, the paper's: per mini-batch, global with probability ``global_share`` (0.5)
  and local otherwise. The choices draw from torch's global generator, which the training loop seeds per epoch.
- ``block_dropout``: dropout in every conv layer, ``b * block_dropout`` in block ``b = 0..4``; the paper's
  0.1 gives (0, 0.1, 0.2, 0.3, 0.4).
- ``column``: use one column alone, in training and evaluation (``column=-1``: the paper's Table 3 "deepest
  column alone", a plain 20-layer network); also :meth:`FractalNet.use_column` on a built model.

CIFAR-10 test error (paper, Table 1): 10.18% (5.22% augmented); with drop-path and dropout 7.33% (4.60%); its
deepest column alone 7.27% (4.68%).

Parameters: 33.72M. The paper's Table 1 reports 38.6M for this network ("FractalNet (20 layers, 38.6M
params)"), which no reading of its text gives: the authors' released network generator (same widths, columns
and pools) also builds 33.7M, and the closest miscount (every conv at its block's output width) 38.5M. The
count here is the layout of the text: three convs per block take the block's input channels, four keep its
width. The paper leaves open, and cnnlab chooses: convolutions have no bias (batch norm follows each;
the authors' Caffe has a bias and BN without scale, 10k parameters fewer); the join comes before the pool (the
paper swaps them in its implementation "for convenience", pooling each column); dropout sits between the
convolution and batch norm, as in the authors' release; weights start as Caffe's "xavier" filler.

``small_input=True`` makes the fifth pool an identity, so the network takes 16x16 inputs (4 pools: 16 -> 1) and
ends at 2x2 on 32x32 (averaged by the head); the paper's form needs 32x32.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import CnnlabError, unknown_name
from ..nn.conv import LayerFactory
from ..nn.fractal import FractalBlock
from ..nn.head import ClassifierHead
from ._base import Classifier, FeatureInfo
from ._registry import register_model

PAPER = "Larsson et al. 2017, FractalNet: Ultra-Deep Neural Networks without Residuals (CIFAR)"

DROP_PATH_MODES = ("none", "local", "global", "mixed")


class FractalNet(Classifier):
    """A FractalNet of ``len(widths)`` blocks of ``num_columns`` columns, each block followed by a 2x2 max-pool.

    Args:
        num_columns: ``C``, columns per block (the deepest has ``2^(C-1)`` conv layers).
        widths: channels of each block.
        drop_path: ``"none"``, ``"local"``, ``"global"`` or ``"mixed"`` (see the module docstring).
        local_drop: local drop-path's probability of dropping each input of a join.
        global_share: in ``"mixed"`` mode, the probability that a mini-batch uses global drop-path.
        block_dropout: dropout step per block: block ``b`` drops ``b * block_dropout`` in its conv layers.
        column: use this column alone (0 the shallowest, -1 the deepest), or None for the whole network.
        small_input: the last pool becomes an identity (16x16 inputs and up).
        drop_rate: dropout before the classifier.
    """

    def __init__(self, num_columns: int = 3, widths: tuple[int, ...] = (64, 128, 256, 512, 512),
                 num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0, small_input: bool = False,
                 drop_path: str = "none", local_drop: float = 0.15, global_share: float = 0.5,
                 block_dropout: float = 0.0, column: int | None = None,
                 norm_layer: LayerFactory | None = nn.BatchNorm2d, act_layer: LayerFactory = nn.ReLU) -> None:
        super().__init__()
        if drop_path not in DROP_PATH_MODES:
            raise unknown_name("drop-path mode", drop_path, DROP_PATH_MODES)
        for key, value in (("local_drop", local_drop), ("global_share", global_share)):
            if not 0.0 <= value <= 1.0:
                raise CnnlabError(f"{key} is a probability in [0, 1], got {value}")
        if not 0.0 <= block_dropout * (len(widths) - 1) < 1.0:
            raise CnnlabError(f"block_dropout * {len(widths) - 1} (the last block's dropout) must be in [0, 1), "
                              f"got block_dropout={block_dropout}")
        pools = len(widths) - 1 if small_input else len(widths)
        self.set_input_sizes(in_chans, small_input, minimum=2**len(widths), small_minimum=2**pools, default=32,
                             small_default=32)
        self.num_columns, self.drop_path = num_columns, drop_path
        self.local_drop, self.global_share = local_drop, global_share
        chs, self.feature_info = in_chans, []
        for b, width in enumerate(widths):
            block = FractalBlock(chs, width, num_columns, b * block_dropout, norm_layer, act_layer)
            self.add_module(f"block{b + 1}", block)
            self.add_module(f"pool{b + 1}", nn.MaxPool2d(2) if b < pools else nn.Identity())
            chs = width
            self.feature_info.append(FeatureInfo(chs, 2 ** min(b + 1, pools), f"pool{b + 1}"))
        self.num_blocks = len(widths)
        self.num_features = chs                                        # 512 x 1 x 1 at 32 (2 x 2 small)
        self.head = ClassifierHead(chs, num_classes, drop_rate=drop_rate)
        self.column: int | None = None
        self.use_column(column)
        self.init_weights()

    def init_weights(self) -> None:
        """The authors' Caffe filler "xavier": U(-a, a), a = sqrt(3 / fan_in); biases 0, norm layers 1 and 0."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="linear")  # bound sqrt(3 / fan_in)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # --- columns and drop-path ------------------------------------------------------------------
    def blocks(self) -> list[FractalBlock]:
        return [getattr(self, f"block{b + 1}") for b in range(self.num_blocks)]

    def use_column(self, column: int | None) -> FractalNet:
        """Run column ``column`` alone from now on (0 the shallowest, -1 the deepest), in training and in
        evaluation, or the whole network again with None; returns the model: ``model.use_column(-1).eval()``
        evaluates the paper's "deepest column alone"."""
        if column is not None:
            if isinstance(column, bool) or not isinstance(column, int) or \
                    not -self.num_columns <= column < self.num_columns:
                raise CnnlabError(f"column must be an int in [{-self.num_columns}, {self.num_columns - 1}] "
                                  f"(0 the shallowest, -1 the deepest) or None, got {column!r}")
            column %= self.num_columns
        self.column = column
        return self

    def sample_paths(self) -> tuple[int | None, float]:
        """This mini-batch's paths: (the column used alone or None, local drop-path probability). Draws from
        torch's global generator only in training with drop-path on."""
        if self.column is not None:
            return self.column, 0.0
        if not self.training or self.drop_path == "none":
            return None, 0.0
        mode = self.drop_path
        if mode == "mixed":
            mode = "global" if torch.rand((), device="cpu").item() < self.global_share else "local"
        if mode == "global":
            return int(torch.randint(self.num_columns, (), device="cpu")), 0.0
        return None, self.local_drop

    @property
    def skips_parameters(self) -> bool:
        """Whether a training step may leave parameters without a gradient: drop-path skips whole paths, and
        one column alone never uses the others (multi-process training then looks for unused parameters)."""
        return self.column is not None or self.drop_path != "none"

    def column_depths(self) -> list[int]:
        """Conv layers on each column's path through the network: ``B * 2^c``."""
        return [self.num_blocks * 2**c for c in range(self.num_columns)]

    # --- forward ----------------------------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        column, drop_prob = self.sample_paths()
        for b, block in enumerate(self.blocks()):
            x = block(x, column=column, drop_prob=drop_prob)
            x = getattr(self, f"pool{b + 1}")(x)
        return x

    def extra_repr(self) -> str:
        return f"drop_path={self.drop_path!r}, column={self.column}"


@register_model(family="fractalnet", paper=PAPER,
                notes="33.7M parameters (the paper's Table 1 says 38.6M); drop-path off by default")
def fractalnet20(**kwargs) -> FractalNet:
    """FractalNet-20 for CIFAR: 5 blocks of 3 columns, 64-128-256-512-512 channels, 20 layers deep (33.7M
    parameters). The paper's regularised form: ``drop_path="mixed", block_dropout=0.1``."""
    return FractalNet(3, (64, 128, 256, 512, 512), **kwargs)

