"""Activation maximisation: an input synthesised by gradient ascent so that a channel (or a class) responds
as strongly as it can (Erhan et al. 2009; Olah et al. 2017, "Feature Visualization", Distill).

Plain ascent on pixels finds high-frequency noise that excites a unit without looking like anything. As in
the Distill article, three things make the result a pattern:

- a **Fourier parameterisation**: the image is the inverse FFT of learned coefficients scaled by ``1 / f``,
  so that the ascent moves all frequencies at a comparable rate instead of favouring the highest ones, and
  a sigmoid keeps pixels in [0, 1];
- **transformation robustness**: each step sees the image randomly shifted, scaled and slightly rotated,
  so that only patterns that excite the unit wherever they lie survive;
- a **total-variation** penalty against pixel-to-pixel noise.

Any number of input channels works alike (1 for digits, 3 for RGB): the parameterisation is per channel.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .._optim import Adam
from ..errors import CnnlabError
from .cam import class_score, logits_of
from .layers import LayerReached, capture, inspecting


class FourierImage(nn.Module):
    """``n`` images ``C x H x W`` in [0, 1] as 1/f-scaled Fourier coefficients (learned) through a sigmoid."""

    def __init__(self, n: int, shape: tuple[int, int, int], decay: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        c, h, w = shape
        fy = torch.fft.fftfreq(h)[:, None]
        fx = torch.fft.rfftfreq(w)[None, :]
        freq = torch.sqrt(fx * fx + fy * fy).clamp_min(1.0 / max(h, w))
        self.register_buffer("scale", freq.pow(-decay) / max(h, w))
        self.coeffs = nn.Parameter(0.01 * torch.randn(n, c, h, w // 2 + 1, 2, generator=generator))
        self.size = (h, w)

    def forward(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.coeffs) * self.scale
        return torch.sigmoid(torch.fft.irfft2(spectrum, s=self.size, norm="ortho") * 4)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels, per image."""
    return ((x[..., 1:, :] - x[..., :-1, :]).abs().mean(dim=(1, 2, 3))
            + (x[..., :, 1:] - x[..., :, :-1]).abs().mean(dim=(1, 2, 3)))


def random_transform(x: torch.Tensor, shift: float, scale: float, degrees: float,
                     generator: torch.Generator) -> torch.Tensor:
    """Each image shifted by up to ``shift`` of its side, scaled by up to ``1 +- scale``, rotated by up to
    ``degrees``, with reflected borders (one ``grid_sample`` for the batch)."""
    n = len(x)
    u = lambda: 2 * torch.rand(n, generator=generator) - 1  # noqa: E731  uniform in [-1, 1]
    s, a = 1 + scale * u(), math.radians(degrees) * u()
    tx, ty = 2 * shift * u(), 2 * shift * u()
    theta = torch.stack([torch.stack([s * torch.cos(a), -s * torch.sin(a), tx], 1),
                         torch.stack([s * torch.sin(a), s * torch.cos(a), ty], 1)], 1).to(x)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@dataclass
class Maximized:
    """The synthesised images ``N x C x H x W`` in [0, 1], what each one maximised, and the objective it
    reaches (measured on the image itself, untransformed)."""

    images: torch.Tensor
    targets: list[int]
    objective: torch.Tensor
    what: str  # "channel" or "class"
    layer: str | None
    # the targets whose objective was 0 at every step: a unit after a ReLU that never fired has no gradient, so
    # its image holds only what the regulariser made of the random start
    dead: list[int] = field(default_factory=list)


OBJECTIVES = ("neuron", "channel")


def unit_activation(act: torch.Tensor, units: torch.Tensor, objective: str = "neuron") -> torch.Tensor:
    """For each image ``n``, the activation of unit ``units[n]`` of a layer's output: for a feature map
    ``N x C x H x W``, the channel's value at the centre position (``neuron``: what one unit sees, the pattern
    in its receptive field) or its mean over all positions (``channel``: a texture that fills the image); for a
    vector ``N x C``, the unit's value."""
    picked = act[torch.arange(len(act)), units.to(act.device)]
    if picked.dim() == 1:
        return picked
    if objective == "neuron":
        return picked[:, picked.shape[1] // 2, picked.shape[2] // 2]
    return picked.flatten(1).mean(1)


def _named(layer: str | None) -> list[str]:
    """The layers to capture: ``layer``, or none for a class score (an empty name is a name: an unknown layer)."""
    return [] if layer is None else [layer]


@torch.no_grad()
def unit_count(model: nn.Module, shape: tuple[int, int, int], layer: str | None = None,
               prepare: Callable[[torch.Tensor], torch.Tensor] | None = None) -> int:
    """How many units :func:`maximize` can choose from: the channels of ``layer``'s output, or the model's
    classes (``layer`` None; a single-logit binary model has two), from one forward pass of a grey image of
    ``shape`` stopped at the layer. An unknown layer is a one-line error."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.full((1, *shape), 0.5, device=device)
    with inspecting(model), capture(model, _named(layer), stop=True) as acts:
        try:
            out = model((prepare or (lambda t: t))(x))
        except LayerReached:
            out = None
        return _activation(acts, layer).shape[1] if layer is not None else max(logits_of(out).shape[1], 2)


def maximize(model: nn.Module, shape: tuple[int, int, int], *, layer: str | None = None,
             channels: list[int] | None = None, classes: list[int] | None = None,
             prepare: Callable[[torch.Tensor], torch.Tensor] | None = None, steps: int = 256, lr: float = 0.05,
             objective: str = "neuron", tv: float = 0.25, shift: float = 0.06, scale: float = 0.08,
             degrees: float = 8.0, decay: float = 1.0, seed: int = 0, score=class_score) -> Maximized:
    """Synthesise one input per channel of ``layer`` (``channels``) or per class (``classes``).

    ``shape`` is ``C x H x W`` of the images as pixels in [0, 1]; ``prepare`` turns them into what the model
    takes (a run's resizing, padding and normalisation; default: nothing). The ascent maximises the channel's
    activation (``objective``: see :func:`unit_activation`) or the class score, minus ``tv`` times the total
    variation, with Adam at ``lr`` for ``steps`` steps. The forward pass stops at ``layer``: maximising an early
    layer of a large network costs only the layers before it.
    """
    if objective not in OBJECTIVES:
        raise CnnlabError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if (channels is None) == (classes is None):
        raise CnnlabError("maximize needs channels of a layer or classes, one of the two")
    if channels is not None and layer is None:
        raise CnnlabError("maximizing channels needs the layer they belong to")
    if steps < 1:
        raise CnnlabError(f"steps must be at least 1, got {steps}")
    units = torch.as_tensor(channels if channels is not None else classes, dtype=torch.long)
    if units.dim() != 1 or len(units) == 0:
        raise CnnlabError("give at least one channel or class")
    if units.min() < 0:
        raise CnnlabError(f"channels and classes are numbered from 0; got {int(units.min())}")
    prepare = prepare or (lambda x: x)
    count = unit_count(model, shape, layer, prepare)  # checked before one image is allocated per unit
    if units.max() >= count:
        raise CnnlabError(f"class {int(units.max())} does not exist: the model has {count} classes" if layer is None
                          else f"layer '{layer}' has {_channels(count)}; channel {int(units.max())} does not exist")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    g = torch.Generator().manual_seed(seed)
    image = FourierImage(len(units), shape, decay, g).to(device)
    opt = Adam(image.parameters(), lr=lr)  # torch.optim.Adam without importing the compiler
    with inspecting(model), torch.enable_grad(), capture(model, _named(layer), stop=True) as acts:
        def value_of(x: torch.Tensor) -> torch.Tensor:
            try:
                out = model(prepare(x))
            except LayerReached:
                out = None
            if layer is None:
                return score(out, units)
            return unit_activation(_activation(acts, layer), units, objective)

        fired = torch.zeros(len(units), dtype=torch.bool, device=device)
        for _ in range(steps):
            x = image()
            value = value_of(random_transform(x, shift, scale, degrees, g))
            fired |= value.detach() != 0
            loss = (-value + tv * total_variation(x)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            final = image()
            reached = value_of(final)
            fired |= reached != 0
    return Maximized(final.detach().cpu(), units.tolist(), reached.detach().float().cpu(),
                     "channel" if channels is not None else "class", layer,
                     [int(u) for u, f in zip(units.tolist(), fired.tolist(), strict=True) if not f])


@torch.no_grad()
def unit_activations(model: nn.Module, x: torch.Tensor, layer: str | None, units: list[int],
                     objective: str = "neuron", batch_size: int = 256, score=class_score) -> torch.Tensor:
    """``N x len(units)``: the activation of each unit (by ``objective``, see :func:`unit_activation`; a class
    score when ``layer`` is None) for every input of ``x`` (as the model takes it), to compare with
    :func:`maximize`."""
    u = torch.as_tensor(units, dtype=torch.long)
    out = []
    with inspecting(model, frozen=False), capture(model, _named(layer), stop=True) as acts:
        for i in range(0, len(x), batch_size):
            batch = x[i:i + batch_size]
            try:
                y = model(batch)
            except LayerReached:
                y = None
            cols = []
            for k in u:
                idx = k.expand(len(batch))
                cols.append(score(y, idx) if layer is None else unit_activation(_activation(acts, layer), idx,
                                                                                objective))
            out.append(torch.stack(cols, 1).float().cpu())
    return torch.cat(out)


def _activation(acts: dict[str, torch.Tensor], layer: str) -> torch.Tensor:
    if layer not in acts:
        raise CnnlabError(f"layer '{layer}' did not run in the forward pass (a training-only branch?); choose "
                          f"another layer")
    return acts[layer]


def _channels(count: int) -> str:
    return "1 channel (0)" if count == 1 else f"{count} channels (0-{count - 1})"


def parse_channels(text: str, count: int | None = None, flag: str = "channels") -> list[int]:
    """``"0-15"``, ``"3"`` or ``"0,4,9-11"`` as a list of channel numbers; with ``count`` (the layer's channels),
    a number from ``count`` on is an error before any range is expanded. ``flag`` names the option in errors."""
    parts: list[tuple[int, int]] = []
    for part in text.split(","):
        try:
            a, dash, b = part.strip().partition("-")
            first, last = int(a), int(b) if dash else int(a)
            if last < first or first < 0:
                raise ValueError
        except ValueError:
            raise CnnlabError(f"{flag} takes channel numbers from 0, like 0-15, 3 or 0,4,9-11; got {text!r}"
                              if flag.endswith("channels") else f"{flag} takes one channel number from 0; got {text!r}"
                              ) from None
        if count is not None and last >= count:
            raise CnnlabError(f"the layer has {_channels(count)}; {flag} {text} names channel {last}")
        parts.append((first, last))
    out = [c for first, last in parts for c in range(first, last + 1)]
    if len(set(out)) != len(out):
        raise CnnlabError(f"{flag} must name each channel once; got {text!r}")
    return out
