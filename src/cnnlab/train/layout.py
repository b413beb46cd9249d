"""Memory layout: whether a run keeps its images and weights channels-last (NHWC) or contiguous (NCHW)."""

from __future__ import annotations

import torch
from torch import nn


def resolve_channels_last(asked: bool | None, model: nn.Module, device: torch.device) -> bool:
    """The layout a run uses: what ``--channels-last`` / ``--no-channels-last`` asked, else, on a CPU, what the
    model's registration declares (``model.meta.channels_last``: the models that trained at least 1.10x faster
    channels-last on the Intel Xeon, and not slower on the AMD EPYC where measured there; VGG, AlexNet,
    ZFNet, FractalNet, PyramidNet-110, ResNet-18/34 and the ResNets wider than WRN-k-4 were slower or within noise;
    the README's Memory layout section, and ``benchmarks/memory_format.py`` on the CPU at hand). Contiguous
    elsewhere: on a GPU the layout has not been measured by this project, and a model without a registration (an
    autoencoder, a U-Net) declares nothing."""
    if asked is not None:
        return asked
    return device.type == "cpu" and bool(getattr(getattr(model, "meta", None), "channels_last", False))


def match_state_layout(optimizer: torch.optim.Optimizer) -> None:
    """Lay out each of ``optimizer``'s state tensors (Adam's moments, SGD's momentum) as its parameter is.

    ``load_state_dict`` keeps the strides the state was saved with, and the fused CPU kernels walk a parameter and
    its state in memory order without checking that they agree: a run saved contiguous and continued
    channels-last (or the other way round) would pair each moment with another weight's gradient. A state
    tensor the shape of its parameter but with other strides is copied into the parameter's layout."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            for key, value in state.items():
                if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                    state[key] = torch.empty_strided(p.size(), p.stride(), dtype=value.dtype,
                                                     device=value.device).copy_(value)
