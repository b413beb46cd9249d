"""Activations that PyTorch does not have, and every activation by name (for configs and command lines)."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import unknown_name


class ScaledTanh(nn.Module):
    """LeNet-5's squashing function ``A * tanh(S * x)`` with ``A = 1.7159``, ``S = 2/3`` (LeCun et al. 1998,
    App. A): about 1 at 1 and -1 at -1, with the largest gain where inputs are.

    In float32 on a CPU it is computed through the logistic function, ``tanh(u) = 2 sigmoid(2u) - 1``: the same
    function (values and gradients within 1e-6 of ``A * torch.tanh(S * x)``; tests/test_blocks.py), because
    PyTorch's CPU kernel for float ``tanh`` is about three times slower than its ``sigmoid`` (0.49 against 0.15 ms
    on LeNet-5's C1 maps at batch 64, AMD EPYC, 2 threads), which made the activations a sixth of a LeNet-5
    training step. Other precisions and devices use ``torch.tanh``."""

    A, S = 1.7159, 2.0 / 3.0

    def __init__(self, inplace: bool = False) -> None:  # ``inplace`` as nn.ReLU takes it; there is no saving here
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or x.device.type != "cpu":
            # the difference cancels near 0: in bf16 it would err by 1e-2 where tanh errs by 3e-4; and a GPU's
            # tanh is as fast as its sigmoid
            return self.A * torch.tanh(x * self.S)
        # sub_ works on mul's fresh output, which no backward step needs (sigmoid's backward keeps its own)
        return torch.sigmoid(x * (2 * self.S)).mul(2 * self.A).sub_(self.A)


ACT_LAYERS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "selu": nn.SELU,
    "gelu": nn.GELU, "silu": nn.SiLU, "mish": nn.Mish, "softplus": nn.Softplus, "hardswish": nn.Hardswish,
    "hardsigmoid": nn.Hardsigmoid, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "scaled_tanh": ScaledTanh,
}


def get_act_layer(name: str) -> type[nn.Module]:
    """The activation class called ``name`` in :data:`ACT_LAYERS` (``"relu"``, ``"sigmoid"``, ``"tanh"``, ...)."""
    if name not in ACT_LAYERS:
        raise unknown_name("activation", name, ACT_LAYERS)
    return ACT_LAYERS[name]
