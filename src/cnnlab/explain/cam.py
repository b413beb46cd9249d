"""Class activation maps, guided backpropagation and guided Grad-CAM.

All three CAM methods weigh the feature maps ``A_k`` of one layer by the gradient ``g_k = d score / d A_k`` of
the class score and keep the positive part, then enlarge the map to the input:

- Grad-CAM (Selvaraju et al. 2017): ``relu(sum_k mean_ij(g_k) A_k)``;
- Grad-CAM++ (Chattopadhay et al. 2018): per-position weights ``alpha = g^2 / (2 g^2 + sum_ij(A) g^3)``
  (the paper's closed form, for the exponential of the score), ``w_k = sum_ij alpha relu(g_k)``;
- LayerCAM (Jiang et al. 2021): ``relu(sum_k relu(g_k) A_k)``, position by position: sharper in early layers.

Guided backpropagation (Springenberg et al. 2015) takes the gradient of the score with respect to the input,
letting only positive gradients back through each activation; guided Grad-CAM multiplies it by the
Grad-CAM map. The gradient is taken with ``torch.autograd.grad`` on the captured layer output: no backward
hooks on modules, so in-place activations are fine, and every hook is removed afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CnnlabError
from ..inspect.summary import unit_fields
from ..nn import ACT_LAYERS
from .layers import capture, inspecting, stage_layers

METHODS = ("gradcam", "gradcam++", "layercam")

Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def logits_of(output) -> torch.Tensor:
    """The class scores in a model's output (a tensor, or a named tuple with ``logits``)."""
    out = getattr(output, "logits", output)
    if not isinstance(out, torch.Tensor):
        raise CnnlabError(f"the model returns a {type(output).__name__}, not class scores")
    return out


def class_score(output, targets: torch.Tensor) -> torch.Tensor:
    """The score of class ``targets[n]`` for each input ``n``: its logit; a single-logit binary classifier
    scores class 1 by the logit and class 0 by its negative; per-pixel logits ``N x K x H x W`` (a
    segmentation network) give the class's mean logit over the pixels predicted as that class, or over the
    whole image where there are none (Seg-Grad-CAM, Vinogradova et al. 2020)."""
    out = logits_of(output)
    targets = targets.to(out.device)
    if out.dim() == 4:
        logit = out[torch.arange(len(out), device=out.device), targets]                       # N x H x W
        region = (out.detach().argmax(1) == targets[:, None, None]).float()
        region = torch.where(region.sum(dim=(1, 2), keepdim=True) > 0, region, torch.ones_like(region))
        return (logit * region).sum(dim=(1, 2)) / region.sum(dim=(1, 2))
    if out.dim() != 2:
        raise CnnlabError(f"class scores of shape {tuple(out.shape)}: expected N x classes or N x classes x H x W")
    if out.shape[1] == 1:
        return torch.where(targets == 1, out[:, 0], -out[:, 0])
    return out.gather(1, targets[:, None])[:, 0]


def predicted_class(output) -> torch.Tensor:
    """The class each input is given: the largest logit; per-pixel logits: the class most pixels get, not
    counting class 0 (the background) unless every pixel is background."""
    out = logits_of(output).detach()
    if out.dim() == 4:
        votes = F.one_hot(out.argmax(1), out.shape[1]).sum(dim=(1, 2))
        fg = votes[:, 1:].argmax(1) + 1
        return torch.where(votes[:, 1:].sum(1) > 0, fg, torch.zeros_like(fg))
    if out.shape[1] == 1:
        return (out[:, 0] > 0).long()
    return out.argmax(1)


@dataclass
class CamResult:
    """Maps ``N x H x W`` in [0, 1] (input size), the class each map is for, its score, and the layer."""

    maps: torch.Tensor
    targets: torch.Tensor
    scores: torch.Tensor
    layer: str
    method: str
    # per-pixel scores (segmentation): True where no pixel was predicted as the class, so the score is its mean
    # logit over the whole image (:func:`class_score`); None for a classifier
    whole_image: torch.Tensor | None = None


def _targets(targets, n: int, output, offset: int = 0) -> torch.Tensor:
    """The class of each of the ``len(output)`` images from ``offset`` on: the predicted one, or those given
    (one for all ``n`` images, or one each), checked against the classes the output has."""
    out = logits_of(output)
    if targets is None:
        return predicted_class(output)
    if isinstance(targets, (str, bytes)):
        raise CnnlabError(f"target classes are class indices, one for all images or one per image; got {targets!r} "
                          f"(a class name: its index is its place in the run's classes)")
    given = torch.as_tensor(targets)
    if given.dim() > 1 or given.is_floating_point() and not torch.equal(given, given.round()) \
            or given.is_complex() or given.dtype == torch.bool:  # not what truncation or flattening should mend
        shown = given.tolist() if given.numel() <= 8 else f"a {given.dtype} tensor of shape {tuple(given.shape)}"
        raise CnnlabError(f"target classes are class indices, one for all images or one per image; got {shown}")
    t = given.to(torch.long).flatten()
    if t.numel() == 1:
        t = t.expand(n)
    if len(t) != n:
        raise CnnlabError(f"{len(t)} target classes for {n} images: give one class, or one per image")
    classes = 2 if out.dim() == 2 and out.shape[1] == 1 else out.shape[1]
    if t.min() < 0 or t.max() >= classes:
        raise CnnlabError(f"target class {int(t.max() if t.max() >= classes else t.min())} does not exist: the "
                          f"model has {classes} classes (0-{classes - 1})")
    return t[offset:offset + len(out)]


def _weigh(method: str, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    if method == "gradcam":
        return (g.mean(dim=(2, 3), keepdim=True) * a).sum(1)
    if method == "gradcam++":
        # alpha = g^2 / (2 g^2 + sum_ij(A) g^3): at most 1/2 for the non-negative maps (after a ReLU) the paper
        # assumes; clamped to [0, 1/2], so that maps with negative values (after a tanh) cannot blow it up
        g2, g3 = g.pow(2), g.pow(3)
        denom = 2 * g2 + a.sum(dim=(2, 3), keepdim=True) * g3
        alpha = (g2 / torch.where(denom != 0, denom, torch.ones_like(denom))).clamp(0, 0.5)
        return ((alpha * F.relu(g)).sum(dim=(2, 3), keepdim=True) * a).sum(1)
    if method == "layercam":
        return (F.relu(g) * a).sum(1)
    raise CnnlabError(f"unknown CAM method '{method}'; methods: {', '.join(METHODS)}")


def normalise_maps(maps: torch.Tensor) -> torch.Tensor:
    """Each map ``H x W`` of ``N x H x W`` scaled to [0, 1] by its own minimum and maximum (a flat map: 0)."""
    low = maps.amin(dim=(1, 2), keepdim=True)
    span = maps.amax(dim=(1, 2), keepdim=True) - low
    return torch.where(span > 0, (maps - low) / span.clamp_min(1e-12), torch.zeros_like(maps))


def place(maps: torch.Tensor, size: tuple[int, int], jump: tuple[float, float] | None = None,
          start: tuple[float, float] | None = None) -> torch.Tensor:
    """Maps ``N x h x w`` of a layer's units laid over the input (``size``): each value at the centre of its
    unit's receptive field, bilinear in between, constant beyond the outermost centres.

    Unit ``(i, j)`` is centred on input pixel ``start + jump * (i, j)`` (the layer's total stride, and where its
    first unit lies, from the receptive-field arithmetic of :func:`cnnlab.inspect.summary.unit_fields`). A
    plain resize of the map to the image assumes ``jump = H / h`` and ``start = (jump - 1) / 2``, which holds for
    few networks: LeNet-5's ``features.s4`` units sit from pixel 7.5 to 23.5, 4 pixels apart (valid
    convolutions); a ResNet's stride-2 convolutions with one pixel of padding put unit 0 on pixel 0, so at
    224x224 its last stage's map lies 15.5 pixels up and left of where a resize puts it. Without ``jump`` and
    ``start``: the resize's.
    """
    n, h, w = maps.shape
    big_h, big_w = size
    jh, jw = jump if jump is not None else (big_h / h, big_w / w)
    sh, sw = start if start is not None else ((jh - 1) / 2, (jw - 1) / 2)

    def axis(big: int, small: int, j: float, s: float) -> torch.Tensor:
        u = (torch.arange(big, dtype=torch.float32) - s) / j           # the fractional unit index of each pixel
        return 2 * u / (small - 1) - 1 if small > 1 else torch.zeros(big)

    gy, gx = torch.meshgrid(axis(big_h, h, jh, sh), axis(big_w, w, jw, sw), indexing="ij")
    grid = torch.stack([gx, gy], -1).to(maps)[None].expand(n, -1, -1, -1)
    return F.grid_sample(maps[:, None].float(), grid, mode="bilinear", padding_mode="border", align_corners=True)[:, 0]


def _last_spatial(names: list[str], acts: dict[str, torch.Tensor]) -> str:
    """The last stage whose output still has a map (more than one position): LeNet-5's last stage is 1x1,
    where a CAM could only be flat."""
    spatial = [n for n in names if n in acts and acts[n].dim() == 4 and acts[n].shape[-2:].numel() > 1]
    return spatial[-1] if spatial else names[-1]


def _default_layer(model: nn.Module, x: torch.Tensor) -> str:
    """The last stage of ``feature_info`` whose output is larger than 1x1, found by one pass on ``x``."""
    stages = stage_layers(model)
    with torch.no_grad(), capture(model, stages) as acts:
        model(x)
    return _last_spatial(stages, acts)


def class_activation_maps(model: nn.Module, x: torch.Tensor, targets=None, method: str = "gradcam",
                          layer: str | None = None, score: Score = class_score, batch_size: int = 64) -> CamResult:
    """CAMs of ``x`` (``N x C x H x W``, as the model takes it) for one class per image: ``targets`` (an int, or
    one per image; default the predicted class) at ``layer`` (default the last stage of ``feature_info`` whose
    output is larger than 1x1), ``batch_size`` images at a time. Works on frozen models too: the gradient is
    taken with respect to the layer's output only.

    >>> from cnnlab import create_model
    >>> cam = class_activation_maps(create_model("resnet18", num_classes=3, small_input=True),
    ...                             torch.rand(2, 3, 32, 32), method="layercam")
    >>> cam.maps.shape
    torch.Size([2, 32, 32])
    """
    return cams_by_method(model, x, targets, (method,), layer, score, batch_size)[method]


def cams_by_method(model: nn.Module, x: torch.Tensor, targets=None, methods: tuple[str, ...] = METHODS,
                   layer: str | None = None, score: Score = class_score,
                   batch_size: int = 64) -> dict[str, CamResult]:
    """The CAMs of :func:`class_activation_maps` for each of ``methods``, by method name, from the same forward
    and backward passes: the methods differ only in how they weigh the layer's maps by its gradient, so
    comparing them costs what one of them does."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        got = f"a tensor of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise CnnlabError(f"class activation maps take a batch N x C x H x W, got {got}")
    if len(x) == 0:
        raise CnnlabError("class activation maps take at least one image; got an empty batch (0 x C x H x W)")
    methods = (methods,) if isinstance(methods, str) else tuple(dict.fromkeys(methods or ()))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise CnnlabError(f"unknown CAM method '{unknown[0]}'; methods: {', '.join(METHODS)}" if unknown else
                          f"no CAM method given; methods: {', '.join(METHODS)}")
    maps: dict[str, list[torch.Tensor]] = {m: [] for m in methods}
    chosen, scores, whole = [], [], []
    with inspecting(model):
        name = _default_layer(model, x[:1]) if layer is None else layer  # ('' is a name: an unknown one)
        fields = unit_fields(model, x[:1], [name]).get(name)  # where each unit of the layer sits on the input
        for i in range(0, len(x), batch_size):
            chunk = x[i:i + batch_size]
            with torch.enable_grad(), capture(model, [name], grad=True) as acts:
                output = model(chunk)
                if name not in acts:
                    raise CnnlabError(f"layer '{name}' did not run in the forward pass; choose another layer")
                a = acts[name]                                                   # N x K x h x w
                if a.dim() != 4 or a.shape[-2:].numel() == 1:
                    raise CnnlabError(f"layer '{name}' gives an output of shape {tuple(a.shape[1:])}; a class "
                                      f"activation map needs a spatial one, larger than 1x1: choose an earlier "
                                      f"convolutional layer")
                t = _targets(targets, len(x), output, i)
                s = score(output, t)
                if not s.requires_grad:
                    raise CnnlabError(f"the class scores do not depend on layer '{name}'; choose a layer the "
                                      f"output is computed from")
                (g,) = torch.autograd.grad(s.sum(), a)                            # N x K x h x w
            a, g = a.detach().float(), g.float()
            for method in methods:
                cam = F.relu(_weigh(method, a, g))                                # N x h x w
                maps[method].append(place(cam, x.shape[-2:], fields[2:4] if fields else None,
                                          fields[4:6] if fields else None).cpu())
            chosen.append(t.cpu())
            scores.append(s.detach().float().cpu())
            out = logits_of(output).detach()
            if out.dim() == 4:
                whole.append(~(out.argmax(1) == t.to(out.device)[:, None, None]).flatten(1).any(1).cpu())
    chosen_all, scores_all = torch.cat(chosen), torch.cat(scores)
    whole_all = torch.cat(whole) if whole else None
    return {m: CamResult(normalise_maps(torch.cat(maps[m])), chosen_all, scores_all, name, m, whole_all)
            for m in methods}


class _PositiveGradient(torch.autograd.Function):
    """Identity forward; backward lets only positive gradients through (the guided rule)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp_min(0)


class _Guided(nn.Module):
    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.act = act

    def forward(self, x):
        return _PositiveGradient.apply(self.act(x))


# every activation a model of the zoo can be built with (act_layer=...; SELU and Softplus were missing, and a
# network of them was refused as having none), and the ones torch users build with besides
ACTIVATIONS = (*dict.fromkeys(ACT_LAYERS.values()), nn.PReLU, nn.Hardtanh, nn.CELU, nn.Softsign, nn.Tanhshrink)


@contextmanager
def guided(model: nn.Module) -> Iterator[int]:
    """Within the block every activation module of ``model`` passes only positive gradients back (for a ReLU:
    Springenberg et al.'s guided backpropagation; other activations keep their own derivative as well).
    Yields how many activations were changed; they are restored afterwards, also on an error."""
    swapped = []
    try:
        for parent in list(model.modules()):
            for key, child in list(parent.named_children()):
                if isinstance(child, ACTIVATIONS):
                    setattr(parent, key, _Guided(child))
                    swapped.append((parent, key, child))
        yield len(swapped)
    finally:
        for parent, key, child in swapped:
            setattr(parent, key, child)


def guided_backprop(model: nn.Module, x: torch.Tensor, targets=None, score: Score = class_score) -> torch.Tensor:
    """Guided backpropagation: the input gradient of each image's class score (``N x C x H x W``)."""
    with inspecting(model), guided(model) as n:
        if n == 0:
            raise CnnlabError(f"{type(model).__name__} has no activation modules; guided backpropagation needs them")
        inp = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            output = model(inp)
            s = score(output, _targets(targets, len(x), output))
            (g,) = torch.autograd.grad(s.sum(), inp)
    return g.detach().float().cpu()


def gradient_images(grads: torch.Tensor) -> torch.Tensor:
    """Input gradients as images in [0, 1]: zero is mid-grey, three standard deviations of each image's
    gradient reach black or white (the usual way of showing them)."""
    g = grads - grads.mean(dim=(1, 2, 3), keepdim=True)
    std = g.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
    return (0.5 + 0.5 * g / (3 * std)).clamp(0, 1)
