"""What a network has learned, read directly: the kernels of a layer and the feature maps it produces.

The first layer's kernels act on pixels, so they can be looked at as small images (Krizhevsky et al. 2012,
Fig. 3; Zeiler & Fergus 2014): colour where the input is RGB. A dense first layer (a dense autoencoder's)
has one weight per input pixel, so each unit's weights are an image too.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import CnnlabError
from .layers import capture, find_layer, first_layer, inspecting, stage_layers

WEIGHTED = (nn.Conv2d, nn.Linear)


def weighted_layer(model: nn.Module, layer: str | None = None) -> str:
    """The name of the convolution (or dense layer) ``layer`` means, default the model's first: a block that holds
    one convolution as ``conv`` (``ConvNormAct``: ``layer1.0.conv1``) means that convolution."""
    if layer is None:
        return first_layer(model, WEIGHTED)
    modules = dict(model.named_modules())
    if not isinstance(modules.get(layer), WEIGHTED) and isinstance(modules.get(f"{layer}.conv"), nn.Conv2d):
        return f"{layer}.conv"
    find_layer(model, layer, WEIGHTED, "convolution or dense layer")
    return layer


def filters(model: nn.Module, layer: str | None = None) -> torch.Tensor:
    """The weights of a convolution (default: the model's first) as ``out x in x kh x kw``, or of a dense layer
    as ``out x in``."""
    return dict(model.named_modules())[weighted_layer(model, layer)].weight.detach().float().cpu()


def filter_images(weights: torch.Tensor, input_shape: tuple[int, int, int] | None = None,
                  max_inputs: int = 16, max_outputs: int = 64) -> tuple[torch.Tensor, int]:
    """Kernels as images in [0, 1] to tile, and the number of columns of their grid.

    Kernels on 1 or 3 input channels give one tile per kernel (grey or colour); kernels on more channels one
    grey tile per (kernel, input channel) pair, a kernel per row. Dense weights ``out x in`` are shown as
    images of ``input_shape`` (``C x H x W`` with ``C * H * W == in``). All tiles share one scale, centred on
    zero (mid-grey), so that signs and magnitudes compare across tiles.
    """
    w = weights[:max_outputs]
    if w.dim() == 2:
        if input_shape is None or w.shape[1] != input_shape[0] * input_shape[1] * input_shape[2]:
            size = (f": an image has {input_shape[0] * input_shape[1] * input_shape[2]} values "
                    f"({'x'.join(map(str, input_shape))} pixels)" if input_shape else "")
            raise CnnlabError(f"the dense layer's {w.shape[1]} weights per unit are not an image{size}; show a "
                              f"convolution, or a dense layer that reads the image")
        w = w.reshape(len(w), *input_shape)
    if w.dim() != 4:
        raise CnnlabError(f"weights of shape {tuple(weights.shape)} are not convolution kernels")
    scale = w.abs().max().clamp_min(1e-12)
    w = 0.5 + 0.5 * w / scale
    out, cin = w.shape[:2]
    if cin in (1, 3):
        return w, max(1, min(16, int(out ** 0.5 + 0.999)))
    cin = min(cin, max_inputs)
    return w[:, :cin].reshape(out * cin, 1, *w.shape[2:]), cin


@torch.no_grad()
def feature_maps(model: nn.Module, x: torch.Tensor, layers: list[str] | None = None) -> dict[str, torch.Tensor]:
    """The output of each of ``layers`` (a name or a list of names; default: one per stage of ``feature_info``)
    for inputs ``x``, in the order given."""
    names = [layers] if isinstance(layers, str) else list(layers) if layers else stage_layers(model)
    with inspecting(model, frozen=False), capture(model, names) as out:
        model(x)
    missing = [n for n in names if n not in out]
    if missing:
        raise CnnlabError(f"layer(s) {', '.join(missing)} did not run in the forward pass (a training-only "
                          f"branch?); choose another layer")
    return {n: out[n].detach().float().cpu() for n in names}


def map_images(maps: torch.Tensor, max_channels: int = 64) -> torch.Tensor:
    """One image's feature maps ``C x H x W`` (or a vector ``C``) as grey tiles in [0, 1], each channel
    stretched to its own range (a channel that is constant everywhere stays black); 1x1 maps and vectors,
    whose channels are single values, share one range."""
    if maps.dim() == 1:
        maps = maps[:, None, None]
    if maps.dim() != 3:
        raise CnnlabError(f"a feature map of shape {tuple(maps.shape)} cannot be shown as images")
    m = maps[:max_channels].float()
    dims = (1, 2) if m.shape[1] * m.shape[2] > 1 else (0, 1, 2)  # single values: one scale for all channels
    low = m.amin(dim=dims, keepdim=True)
    span = (m.amax(dim=dims, keepdim=True) - low)
    return torch.where(span > 1e-12, (m - low) / span.clamp_min(1e-12), torch.zeros_like(m))[:, None]
