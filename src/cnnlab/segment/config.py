"""The configuration of a segmentation run (``cnnlab segment train``).

Its defaults differ from a classifier's: the shapes masks at 64x64, six epochs of small batches (1,400 training
images give 88 steps an epoch), no label smoothing (a pixel's class is not ambiguous) and no augmentation (the
generated shapes already vary in position, size and rotation).
"""

from __future__ import annotations

from dataclasses import dataclass

from .._options import like, option
from ..train import RunConfig


@dataclass
class SegmentConfig(RunConfig):
    """A convolutional encoder-decoder that classifies every pixel; the options of ``cnnlab segment train``."""

    data: str = like(RunConfig, "data", "shapes:size=64", help="dataset spec with per-pixel masks (e.g. "
                                                              "shapes:size=64)", fixed=True)
    epochs: int = like(RunConfig, "epochs", 6)
    batch_size: int = like(RunConfig, "batch_size", 16)
    channels_last: bool | None = like(RunConfig, "channels_last", None,
                                      unset="off: the segmentation network declares no layout")
    augment: bool = like(RunConfig, "augment", False, help="random crop and flip while training (each mask moves "
                                                         "with its image)")
    monitor: str = like(RunConfig, "monitor", "val_loss", choices=("val_loss", "val_acc", "val_miou", "val_dice"))
    label_smoothing: float = option(0.0, "label smoothing of the pixel targets", low=0, below=1)
    skips: bool = option(True, "U-Net-style skip connections from each encoder stage to the decoder (--no-skips: a "
                               "SegNet-style plain decoder)", fixed=True)
    depth: int = option(3, "halvings of the image in the encoder; image sides must be divisible by 2**depth",
                        low=1, high=6, fixed=True)
    width: int = option(16, "channels of the first stage, doubled at every halving", low=1, high=256, fixed=True)

    @property
    def name(self) -> str:
        """``unet`` with skip connections, ``segnet`` without."""
        return "unet" if self.skips else "segnet"
