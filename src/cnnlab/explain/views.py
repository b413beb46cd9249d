"""Each view of a trained network as pictures: what ``cnnlab explain`` writes and a run's report embeds.

A :class:`Subject` is a trained network with what its run knows: how pixels become its input (the run's
resizing, padding and normalisation), its class names, the layers worth showing by default. Each kind of
run builds its own (``Kind.explain_subject``); the views below work on any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .._options import option
from ..data import read_image_file
from ..data.prepare import Preprocess
from ..errors import CnnlabError
from ..viz.images import as_rgb, overlay, tile, titled, upscale_to
from .cam import (
    METHODS,
    CamResult,
    cams_by_method,
    class_activation_maps,
    gradient_images,
    guided_backprop,
    predicted_class,
)
from .maps import feature_maps, filter_images, filters, map_images, weighted_layer
from .maximize import OBJECTIVES, maximize


@dataclass
class CamOptions:
    """How ``cnnlab explain cam`` maps (the Python views take the same)."""

    method: str = option("gradcam", "the CAM method; all: each method beside the others, from the same "
                                     "passes", choices=(*METHODS, "all"))


@dataclass
class MaximizeOptions:
    """How ``cnnlab explain maximize`` synthesises its inputs."""

    steps: int = option(256, "steps of gradient ascent", low=1, high=100_000)
    objective: str = option("neuron", "a channel's unit at the centre (the pattern it sees), or its mean over all "
                                      "positions (a texture)", choices=OBJECTIVES)
    seed: int = option(0, "seed of the starting noise and of the random transformations", low=0, high=2**32 - 1)


SIDE = 128  # pixels a displayed image is enlarged to (by whole multiples), so that 28x28 inputs stay visible


@dataclass
class Picture:
    """An ``H x W x 3`` uint8 image with what it shows (a caption) and a file name stem."""

    array: np.ndarray
    caption: str
    name: str


@dataclass
class Subject:
    """A trained network and what its run knows about its inputs and outputs."""

    model: nn.Module
    preprocess: Preprocess                    # pixels in [0, 1] (any size) -> the model's input
    holds: str = "classifier"                 # what it is, for messages
    classes: list[str] | None = None          # class names; None: it has no class scores (an autoencoder)
    stages: list[str] = field(default_factory=list)  # the layers `features` shows by default
    cam_layer: str | None = None              # the layer `cam` uses by default
    filter_layer: str | None = None           # the layer `filters` shows by default (None: the first)

    @property
    def in_chans(self) -> int:
        return len(self.preprocess.mean)

    @property
    def pixel_shape(self) -> tuple[int, int, int]:
        """``C x H x W`` of the pixels that become the model's input (inside any padding)."""
        h, w = self.preprocess.size
        p = self.preprocess.pad
        return self.in_chans, h - 2 * p, w - 2 * p

    def read(self, paths: list[str]) -> torch.Tensor:
        """Image files as the model's input batch."""
        return torch.cat([self.preprocess(read_image_file(p, self.in_chans).unsqueeze(0)) for p in paths])

    def show(self, x: torch.Tensor) -> torch.Tensor:
        """The model's input back as pixels in [0, 1] (padding included)."""
        return self.preprocess.unnormalise(x.detach().float().cpu())

    def class_name(self, k: int) -> str:
        return str(self.classes[k]) if self.classes and 0 <= k < len(self.classes) else str(k)

    def class_index(self, name: str) -> int:
        """A class given by name or number, checked against the run's classes."""
        if self.classes is None:
            raise CnnlabError(f"{self.holds} has no classes; --class applies to classifiers and segmentation runs")
        names = [str(c) for c in self.classes]
        if name in names:
            return names.index(name)
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        if any(n.isdigit() for n in names):  # "5" names a class: a number is never a position then
            raise CnnlabError(f"no class {name!r}: the run's classes are {shown} (its class names are numbers: "
                              f"give one of them)")
        if name.isdigit() and int(name) < len(names):
            return int(name)
        raise CnnlabError(f"no class {name!r}: the run's classes are {shown} (give a name or a number 0-"
                          f"{len(names) - 1})")

    def need_classes(self, view: str) -> None:
        if self.classes is None:
            raise CnnlabError(f"{view} needs class scores, and {self.holds} has none; use it on a classifier, "
                              f"transfer or segmentation run (an autoencoder's views are filters, features and "
                              f"maximize of a layer's channels)")


def _scale(h: int, w: int) -> int:
    return upscale_to(SIDE, h, w)


def filters_view(s: Subject, layer: str | None = None) -> Picture:
    """The kernels of a convolution (default the first), one tile each (colour for RGB kernels)."""
    name = weighted_layer(s.model, s.filter_layer if layer is None else layer)
    w = filters(s.model, name)
    tiles, ncol = filter_images(w, s.pixel_shape)
    shown = min(len(w), 64)
    inputs = "" if w.dim() != 4 or w.shape[1] in (1, 3) or w.shape[1] <= 16 else \
        ", a row per kernel: its first 16 input channels"
    caption = (f"{name}: {len(w)} kernel{'s' if len(w) > 1 else ''} of {w.shape[1]} x {w.shape[2]} x {w.shape[3]}"
               if w.dim() == 4 else f"{name}: the weights of {len(w)} units as images") + \
        (f" (the first {shown})" if shown < len(w) else "") + inputs + "; grey is 0, one scale for all"
    return Picture(tile(tiles, ncol, pad=1, scale=_scale(*tiles.shape[-2:]) // 2 or 1, background=1.0), caption,
                   f"filters-{name}")


def features_view(s: Subject, x: torch.Tensor, layers: list[str] | None = None,
                  max_channels: int = 32) -> list[Picture]:
    """The input and, per layer (default: one per stage), its first ``max_channels`` feature maps for one
    input ``x`` (``1 x C x H x W`` as the model takes it)."""
    names = list(layers) if layers else (s.stages or None)
    maps = feature_maps(s.model, x[:1], names)
    img = s.show(x[:1])
    out = [Picture(tile(img, 1, pad=0, scale=_scale(*img.shape[-2:])), "input", "input")]
    for name, m in maps.items():
        tiles = map_images(m[0], max_channels)
        shape = "x".join(str(v) for v in m.shape[1:])
        shown = f", the first {len(tiles)}" if len(tiles) < m.shape[1] else ""
        scaled = "one range for all" if tiles.shape[-1] * tiles.shape[-2] == 1 else "each map scaled to its own range"
        out.append(Picture(tile(tiles, min(8, len(tiles)), pad=1, scale=max(1, _scale(*tiles.shape[-2:]) // 2)),
                           f"{name}: {shape}{shown} ({scaled})", f"features-{name}"))
    return out


def cam_view(s: Subject, x: torch.Tensor, method: str = "gradcam", target: int | None = None,
             layer: str | None = None) -> tuple[list[Picture], dict[str, CamResult]]:
    """For each input: the input beside its class activation map over it, for the predicted class (or
    ``target``); ``method="all"``: beside the map of each method in turn, all from the same passes. Returns the
    pictures and each method's :class:`~cnnlab.explain.CamResult`, by name."""
    s.need_classes("cam")
    methods = METHODS if method == "all" else (method,)
    cams = cams_by_method(s.model, x, target, methods, layer or s.cam_layer)
    first = cams[methods[0]]
    named = methods[0] if len(methods) == 1 else f"{', '.join(methods[:-1])} and {methods[-1]}"
    img = s.show(x)
    scale = _scale(*img.shape[-2:])
    pics = [Picture(titled(tile(torch.cat([as_rgb(img[i:i + 1]), *(overlay(img[i:i + 1], cams[m].maps[i:i + 1])
                                                                   for m in methods)]),
                                1 + len(methods), pad=2, scale=scale), ["input", *methods], pad=2),
                    f"{named} at {first.layer} for class {s.class_name(int(first.targets[i]))} "
                    f"(score {float(first.scores[i]):.2f}"
                    + (f"; no pixel predicted as {s.class_name(int(first.targets[i]))}: its mean logit over the "
                       f"whole image)" if first.whole_image is not None and first.whole_image[i] else ")"),
                    f"{method}-{first.layer}-{_target_name(s, target)}-{i}")
            for i in range(len(x))]
    return pics, cams


def guided_view(s: Subject, x: torch.Tensor, target: int | None = None,
                layer: str | None = None) -> list[Picture]:
    """For each input: the input, its guided backpropagation and its guided Grad-CAM, for the predicted class
    (or ``target``)."""
    s.need_classes("guided")
    with torch.no_grad():
        t = predicted_class(s.model(x)) if target is None else torch.full((len(x),), target)
    grads = guided_backprop(s.model, x, t)
    cam = class_activation_maps(s.model, x, t, "gradcam", layer or s.cam_layer)
    img = s.show(x)
    scale = _scale(*img.shape[-2:])
    out = []
    for i in range(len(x)):
        g = grads[i:i + 1]
        row = torch.cat([as_rgb(t) for t in (img[i:i + 1], gradient_images(g),
                                             gradient_images(g * cam.maps[i][None, None]))])
        out.append(Picture(titled(tile(row, 3, pad=2, scale=scale), ["input", "guided backprop", "guided Grad-CAM"],
                                  pad=2),
                           f"class {s.class_name(int(t[i]))}: input, guided backpropagation, guided Grad-CAM "
                           f"(at {cam.layer})", f"guided-{cam.layer}-{_target_name(s, target)}-{i}"))
    return out


def maximize_view(s: Subject, layer: str | None = None, channels: list[int] | None = None,
                  classes: list[int] | None = None, steps: int = 256, seed: int = 0,
                  objective: str = "neuron") -> tuple[Picture, object]:
    """Inputs synthesised to excite each channel of ``layer`` (or each class), in one grid."""
    if classes is not None:
        s.need_classes("maximize --class")
    result = maximize(s.model, s.pixel_shape, layer=layer, channels=channels, classes=classes, prepare=s.preprocess,
                      steps=steps, seed=seed, objective=objective)
    plural = "s" if len(result.targets) > 1 else ""
    what = f"channel{plural} {_ranges(result.targets)} of {layer} ({objective})" if channels is not None else \
        f"class{'es' if plural else ''} " + ", ".join(s.class_name(k) for k in result.targets)
    ncol = min(8, len(result.targets))
    return Picture(tile(result.images, ncol, pad=2, scale=_scale(*result.images.shape[-2:])),
                   f"inputs that maximise {what} ({steps} steps of gradient ascent)",
                   f"maximize-{layer}-{objective}-{_ranges(result.targets).replace(', ', '+')}" if layer else
                   "maximize-class-" + "+".join(s.class_name(k) for k in result.targets)), result


def _target_name(s: Subject, target: int | None) -> str:
    return "predicted" if target is None else f"class-{s.class_name(target)}"


def _ranges(values: list[int]) -> str:
    """[0, 1, 2, 5] as '0-2, 5'."""
    out, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            out.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ", ".join(out)
