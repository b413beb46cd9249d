"""The backbone/head contract shared by every classifier.

Every model splits into a backbone (``forward_features``: image -> unpooled feature map) and a head
(``forward_head``: feature map -> logits). Transfer learning, feature extraction and the inspection tools
are written once against this contract, never per architecture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import CnnlabError, InputSizeError
from ..nn.head import ClassifierHead


@dataclass(frozen=True)
class ModelMeta:
    """What is known about an architecture, as data (set on each model as ``model.meta``)."""

    name: str
    family: str
    paper: str
    torchvision: str | None = None  # the torchvision builder whose state dicts load into this model
    notes: str = ""
    # trains faster in channels-last memory on the CPUs measured (benchmarks/memory_format.py): a run's default
    # layout on a CPU (``--channels-last``, unset)
    channels_last: bool = False


@dataclass
class FeatureInfo:
    """One stage of the backbone: its output channels, its stride w.r.t. the input, and the module name."""

    num_chs: int
    reduction: int
    module: str
    extra: dict = field(default_factory=dict)

    def __getitem__(self, key: str):  # dict-style access, as timm users expect
        return getattr(self, key)


class Classifier(nn.Module):
    """Base class of cnnlab's classifiers.

    Subclasses build ``self.head`` (a :class:`ClassifierHead`), implement ``forward_features`` and set
    ``feature_info``, ``num_features``, ``in_chans``, ``default_input_size`` (C, H, W) and
    ``min_input_size`` (C, H, W). ``fixed_input_size`` marks models that take exactly one size (LeNet-5).
    """

    head: ClassifierHead
    feature_info: list[FeatureInfo]
    num_features: int
    in_chans: int
    default_input_size: tuple[int, int, int]
    min_input_size: tuple[int, int, int]
    fixed_input_size: bool = False
    aux_heads: tuple[str, ...] = ()  # auxiliary classifiers, trained with the main one (GoogLeNet: aux1, aux2)
    skips_parameters: bool = False  # a training step may leave parameters unused (FractalNet's drop-path)
    input_padding: int = 0  # zero padding the data pipeline adds around resized images (LeNet-5: 2)
    meta: ModelMeta | None = None

    # --- the contract -------------------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool and classify a feature map; ``pre_logits=True`` stops before the final linear layer."""
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.forward_head(self.forward_features(x))

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    @property
    def head_hidden_size(self) -> int:
        """Width of the ``pre_logits`` output (``num_features`` unless the head has hidden layers)."""
        return self.head.hidden_size

    def get_classifier(self) -> nn.Module:
        """The final linear layer (the part that ``reset_classifier`` replaces)."""
        return self.head.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final layer by a new, randomly initialised one with ``num_classes`` outputs, and the
        auxiliary classifiers' final layers too; ``num_classes=0`` (a feature extractor) removes them."""
        if not isinstance(num_classes, int) or isinstance(num_classes, bool):
            raise CnnlabError(f"num_classes must be an integer from 0 (no classifier), got {num_classes!r}")
        self.head.reset(num_classes)
        for name in self.aux_heads:
            aux = getattr(self, name, None)
            if aux is None:
                continue
            if num_classes == 0:
                setattr(self, name, None)
                self.aux_logits = False
            else:
                aux.reset(num_classes)

    def set_input_sizes(self, in_chans: int, small_input: bool, minimum: int = 32, small_minimum: int = 8,
                        default: int = 224, small_default: int = 32) -> None:
        """Record the input channels and the default and minimum sizes of the regular or small-input form."""
        self.in_chans, self.small_input = in_chans, small_input
        side, low = (small_default, small_minimum) if small_input else (default, minimum)
        self.default_input_size = (in_chans, side, side)
        self.min_input_size = (in_chans, low, low)

    # --- input checks ---------------------------------------------------------------------------
    def check_input(self, x: torch.Tensor) -> None:
        """Fail with a clear message on an input the model cannot take (cheap: shape checks only)."""
        name = self.meta.name if self.meta else type(self).__name__
        if x.dim() != 4:
            raise InputSizeError(f"{name} expects a batch N x C x H x W, got a tensor of shape {tuple(x.shape)}")
        if not x.is_floating_point():  # pixels as stored (uint8): the convolution would fail deep inside
            raise InputSizeError(f"{name} takes a floating-point batch, got {str(x.dtype).removeprefix('torch.')} "
                                 f"values (for 8-bit pixels: x.float() / 255, then the normalisation it was trained "
                                 f"with)")
        c, h, w = x.shape[1:]
        if c != self.in_chans and w == self.in_chans and c > 4:  # N x H x W x C, as images are often stored
            raise InputSizeError(
                f"{name} takes a batch N x C x H x W, channels first; this one ({'x'.join(map(str, x.shape))}) "
                f"has its {w} channels last: x.permute(0, 3, 1, 2) puts them first")
        if c != self.in_chans:
            raise InputSizeError(
                f"{name} was built for {self.in_chans} input channel(s) but got {c}; "
                f"create it with in_chans={c}"
            )
        _, min_h, min_w = self.min_input_size
        if self.fixed_input_size and (h, w) != (min_h, min_w):
            raise InputSizeError(
                f"{name} takes exactly {min_h}x{min_w} inputs, got {h}x{w}; pad or resize the images"
                + (" (or use small_input=True for 28x28)" if (min_h, min_w) == (32, 32) else "")
            )
        if h < min_h or w < min_w:
            raise InputSizeError(
                f"{name} needs inputs of at least {min_h}x{min_w}, got {h}x{w}; resize the images"
                + ("" if getattr(self, "small_input", True) else " or create it with small_input=True")
            )
