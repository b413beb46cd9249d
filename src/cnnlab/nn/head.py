"""The classifier head shared by every model: pool, flatten, optional hidden layers, final linear."""

from __future__ import annotations

import torch
from torch import nn

from .conv import LayerFactory, make_act


class ClassifierHead(nn.Module):
    """``pool -> flatten -> pre_logits (hidden MLP, may be empty) -> dropout -> fc``.

    Args:
        in_chs: channels of the feature map it receives.
        num_classes: outputs of ``fc``; 0 makes ``fc`` an identity (a feature extractor).
        pool_size: adaptive average pool output size (1 = global average pooling; 7 for VGG's 7x7).
        hidden: widths of the hidden fully connected layers (VGG/AlexNet: ``(4096, 4096)``).
        drop_rate: dropout probability (in each hidden layer, or before ``fc`` when there are none).
        dropout_first: hidden layers as ``dropout -> linear -> act`` (AlexNet) instead of
            ``linear -> act -> dropout`` (VGG).
    """

    def __init__(
        self,
        in_chs: int,
        num_classes: int,
        pool_size: int = 1,
        hidden: tuple[int, ...] = (),
        drop_rate: float = 0.0,
        act_layer: LayerFactory = nn.ReLU,
        dropout_first: bool = False,
    ) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.flatten = nn.Flatten(1)
        width = in_chs * pool_size * pool_size
        layers: list[nn.Module] = []
        for h in hidden:
            linear = [nn.Linear(width, h), make_act(act_layer)]
            drop = [nn.Dropout(drop_rate)] if drop_rate > 0 else []
            layers += drop + linear if dropout_first else linear + drop
            width = h
        self.pre_logits = nn.Sequential(*layers)
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 and not hidden else nn.Identity()
        self.in_chs = in_chs
        self.hidden_size = width
        self.fc: nn.Module = nn.Identity()
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        """Replace ``fc`` by a new, randomly initialised layer with ``num_classes`` outputs."""
        if num_classes < 0:
            from ..errors import CnnlabError

            raise CnnlabError(f"num_classes must be 0 (no classifier) or more, got {num_classes}")
        ref = next(self.parameters(), None)  # keep the head on the model's device and dtype
        self.num_classes = num_classes
        self.fc = nn.Linear(self.hidden_size, num_classes) if num_classes > 0 else nn.Identity()
        if ref is not None:
            self.fc.to(device=ref.device, dtype=ref.dtype)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pre_logits(self.flatten(self.pool(x)))
        return x if pre_logits else self.fc(self.drop(x))
