"""The encoder-decoder: a U-Net-style network (Ronneberger et al. 2015) with skip connections, or without them a
SegNet-style plain decoder (Badrinarayanan et al. 2017, with learned up-sampling instead of pooling indices).

```
encoder: [ConvNormAct x 2 -> max-pool 2]  x depth        width, 2 width, 4 width, ... channels
bottom:   ConvNormAct x 2                                 width x 2**depth channels, side / 2**depth
decoder: [transposed conv 2x2 stride 2 (halves channels) -> concat the encoder stage's output (skips)
          -> ConvNormAct x 2]  x depth
head:     1x1 convolution -> num_classes logits per pixel
```

Without skips the decoder sees only the bottleneck, so fine boundaries must be rebuilt from a map
``2**depth`` times smaller; the skips hand each decoder stage the encoder's map of the same size.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..errors import InputSizeError
from ..nn.conv import ConvNormAct


def _double(in_chs: int, out_chs: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(conv1=ConvNormAct(in_chs, out_chs), conv2=ConvNormAct(out_chs, out_chs)))


def size_hint(side: int, depth: int) -> str:
    """What image sides a network of ``depth`` halvings takes, near ``side``: ``"32 or 40"``."""
    step = 2 ** depth
    below, above = side // step * step, -(-side // step) * step
    return " or ".join(str(s) for s in dict.fromkeys((below, above)) if s >= step)


class SegNet(nn.Module):
    """A convolutional encoder-decoder for semantic segmentation.

    Args:
        in_chans: input channels (any).
        num_classes: classes per pixel, background included (the logits' channels).
        depth: number of halvings (and doublings); image sides must be divisible by ``2**depth``.
        width: channels of the first stage; each halving doubles them.
        skips: concatenate each encoder stage's output into the decoder stage of the same size (U-Net).
    """

    def __init__(self, in_chans: int = 3, num_classes: int = 2, depth: int = 3, width: int = 16,
                 skips: bool = True) -> None:
        super().__init__()
        if depth < 1 or width < 1 or num_classes < 2 or in_chans < 1:
            raise InputSizeError(f"SegNet needs depth, width and in_chans of at least 1 and 2 classes, got depth "
                                 f"{depth}, width {width}, in_chans {in_chans}, num_classes {num_classes}")
        self.in_chans, self.num_classes, self.depth, self.width, self.skips = in_chans, num_classes, depth, width, skips
        chans = [width * 2**i for i in range(depth + 1)]
        self.encoder = nn.ModuleList([_double(in_chans if i == 0 else chans[i - 1], chans[i]) for i in range(depth)])
        self.pool = nn.MaxPool2d(2)
        self.bottom = _double(chans[depth - 1], chans[depth])
        self.up = nn.ModuleList([nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2)
                                 for i in reversed(range(depth))])
        self.decoder = nn.ModuleList([_double(chans[i] * (2 if skips else 1), chans[i])
                                      for i in reversed(range(depth))])
        self.head = nn.Conv2d(chans[0], num_classes, 1)

    def check_size(self, h: int, w: int) -> None:
        step = 2 ** self.depth
        if h % step or w % step:
            bad = " and ".join(f"{s} (try {size_hint(s, self.depth)})" for s in dict.fromkeys((h, w)) if s % step)
            raise InputSizeError(f"a segmentation network of depth {self.depth} takes image sides divisible by "
                                 f"{step}; got {h}x{w}: side {bad}; pass --image-size or a smaller --depth")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_size(*x.shape[-2:])
        kept = []
        for stage in self.encoder:
            x = stage(x)
            kept.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, stage, skip in zip(self.up, self.decoder, reversed(kept), strict=True):
            x = up(x)
            x = stage(torch.cat([skip, x], 1) if self.skips else x)
        return self.head(x)
