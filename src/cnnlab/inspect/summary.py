"""Per-layer summary of a model: output shapes, parameters, multiply-adds and receptive fields.

Rows are the leaf modules in the order they run on one input (a module called twice gives two rows).
Multiply-adds (MACs) count convolutions and linear layers per image, the usual convention; other layers
add comparatively little. The receptive field of a layer is the side of the input window that one of its
output units sees, through every path of the network: residual additions and Inception concatenations
take the largest field of their inputs, and a squeeze-and-excitation gate (a global pool) lets every unit after
it see the whole image. It is not capped at the image size.

The summary runs the model once in eval mode; on the ``meta`` device it needs no memory and no compute.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import CnnlabError
from .shapes import parse_size
from .table import format_table, human


@dataclass
class LayerRow:
    """One leaf module call."""

    name: str
    type: str
    kernel: tuple[int, ...] | None
    stride: tuple[int, ...] | None
    padding: tuple[int, ...] | str | None
    dilation: tuple[int, ...] | None
    output_shape: tuple[int, ...]
    params: int
    macs: int
    receptive_field: tuple[int, int] | None


@dataclass
class Summary:
    """The rows and totals of :func:`summary`; ``str()`` renders a text table."""

    model: str
    input_size: tuple[int, int, int]
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    total_macs: int
    output_shape: tuple[int, ...] = field(default=())
    other_params: int = 0  # held by modules with children that ran (a layer scale, a learned constant): on no row
    stages: list[dict[str, Any]] = field(default_factory=list)  # the backbone's stages (feature_info), in order

    @property
    def used_params(self) -> int:
        """Parameters of the modules that ran (fewer than ``total_params`` when some run only in training)."""
        return sum(r.params for r in self.rows) + self.other_params

    def to_dicts(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.rows]

    def __str__(self) -> str:
        return format_summary(self)

    def table(self) -> tuple[list[str], list[list[str]], list[str]]:
        """The header, one row per layer and the totals row, as text cells (what ``str()`` lays out)."""
        headers = ["layer", "type", "kernel", "stride", "pad", "dil", "output", "params", "MACs", "RF"]
        rows = [[r.name, r.type, _tuple(r.kernel), _tuple(r.stride), _tuple(r.padding), _tuple(r.dilation),
                 "x".join(map(str, r.output_shape)), f"{r.params:,}", f"{r.macs:,}", _tuple(r.receptive_field)]
                for r in self.rows]
        footer = ["total", "", "", "", "", "", "x".join(map(str, self.output_shape)), f"{self.used_params:,}",
                  f"{self.total_macs:,}", ""]
        return headers, rows, footer

    def totals(self) -> str:
        """Parameters and multiply-adds in one line."""
        if self.total_params == self.used_params:
            params = f"parameters: {self.total_params:,} ({human(self.total_params)}; trainable " \
                     f"{self.trainable_params:,})"
        else:
            params = (f"parameters: {self.used_params:,} ({human(self.used_params)}) at inference; "
                      f"{self.total_params:,} in the model with its training-only modules (trainable "
                      f"{self.trainable_params:,})")
        return f"{params}  multiply-adds: {self.total_macs:,} ({human(self.total_macs)})"


# --- receptive-field tracking -------------------------------------------------------------------------
# Each 4-D activation carries (rf_h, rf_w, jump_h, jump_w): the field of one unit and the input-pixel
# distance between neighbouring units. A TorchFunctionMode sees every op, including the functional ones
# inside forward() (torch.cat, +), which module hooks alone would miss.

# Matched by name: PyTorch routes these through different Python and C entry points across versions.
_SPATIAL = {"conv2d": "conv", "max_pool2d": "pool", "max_pool2d_with_indices": "pool", "avg_pool2d": "pool",
            "conv_transpose2d": "tconv"}
_ADAPTIVE = {"adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_max_pool2d_with_indices"}


def _two(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[-1]))


class _FieldTracker(TorchFunctionMode):
    """Follows every 4-D activation's units: ``(rf_h, rf_w, jump_h, jump_w, start_h, start_w, g_h, g_w)``, the
    side of the window one unit sees, the input-pixel distance between neighbouring units, the input coordinate
    of the centre of unit 0 (pixel ``i`` has its centre at ``i``), and the side of a region every unit sees
    besides its window (0 if none), by the usual receptive-field arithmetic (Araujo et al. 2019, "Computing
    Receptive Fields of Convolutional Neural Networks", Distill): ``rf += d (k - 1) jump``,
    ``start += jump (d (k - 1) / 2 - p)``, ``jump *= s``.

    The region ``g`` comes from a gate computed on a global pool and broadcast over a map (squeeze-and-excitation,
    in MobileNet v3 and EfficientNet): it is the same region for every unit, so the convolutions after it do not
    widen it, as they widen the window. Up-sampling (``F.interpolate``) brings units closer by its scale and
    widens the window by the inputs one output reads; where a convolution then reads several up-sampled units,
    the arithmetic gives a window of their average spacing, which can fall short of the widest by one unit of
    the coarser map (attention56's first mask branch at 640x640: 363 against the 387 pixels its gradient spans)."""

    def __init__(self) -> None:
        super().__init__()
        self.info: dict[int, tuple[float, ...]] = {}

    def set(self, t: torch.Tensor, info: tuple[float, ...]) -> None:
        key = id(t)
        if key not in self.info:  # an id is reused once its tensor is freed: forget the entry then
            weakref.finalize(t, self.info.pop, key, None)
        self.info[key] = info

    def get(self, t: Any) -> tuple[float, ...] | None:
        return self.info.get(id(t)) if isinstance(t, torch.Tensor) else None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = _shape_only(func, args) if func is F.batch_norm else None
        if out is None:
            out = func(*args, **kwargs)
        inputs = [a for a in _flat(args) + _flat(list(kwargs.values())) if isinstance(a, torch.Tensor)]
        known = [(t, self.get(t)) for t in inputs if self.get(t) is not None]
        if not known or not isinstance(out, (torch.Tensor, tuple, list)):
            return out
        src, (_, _, jh, jw, sh, sw, _, _) = _layout_source(known, out)  # its places; the fields from every input
        laid_out = [i for t, i in known if t.shape[-2:] == src.shape[-2:]]
        rh, rw = max(i[0] for i in laid_out), max(i[1] for i in laid_out)  # a residual sum: the largest field
        # an input broadcast over the map (a squeeze-and-excitation gate, 1x1 from a global pool) is the same
        # region of the input for every unit: it joins the region all of them see, which convolutions do not grow
        gh, gw = (max(max(i[d], i[6 + d]) if t.shape[-2:] != src.shape[-2:] else i[6 + d] for t, i in known)
                  for d in (0, 1))
        fname = getattr(func, "__name__", "")
        kind = _SPATIAL.get(fname)
        if kind is not None:
            def arg(i, name, default):
                return _arg(args, kwargs, i, name, default)
            if kind in ("conv", "tconv"):
                k = tuple(args[1].shape[-2:])
                s, d = _two(arg(3, "stride", 1)), _two(arg(5, "dilation", 1) if kind == "conv" else 1)
            else:
                k = _two(arg(1, "kernel_size", 1))
                s = _two(arg(2, "stride", None) or k)
                d = _two(arg(4, "dilation", 1)) if fname.startswith("max") else (1, 1)
            pad = arg(4 if kind == "conv" else 3, "padding", 0)
            p = tuple(d[i] * (k[i] - 1) / 2 for i in range(2)) if pad == "same" else \
                (0, 0) if pad == "valid" else _two(pad)
            if kind == "tconv":  # each output sees ceil(k / s) inputs; units get closer by s
                rh, rw = rh + (math.ceil(k[0] / s[0]) - 1) * jh, rw + (math.ceil(k[1] / s[1]) - 1) * jw
                sh, sw = sh + jh * (p[0] - (k[0] - 1) / 2) / s[0], sw + jw * (p[1] - (k[1] - 1) / 2) / s[1]
                jh, jw = jh / s[0], jw / s[1]
            else:
                rh, rw = rh + (d[0] * (k[0] - 1)) * jh, rw + (d[1] * (k[1] - 1)) * jw
                sh, sw = sh + jh * (d[0] * (k[0] - 1) / 2 - p[0]), sw + jw * (d[1] * (k[1] - 1) / 2 - p[1])
                jh, jw = jh * s[0], jw * s[1]
        elif fname == "interpolate" and isinstance(out, torch.Tensor) and out.dim() == 4 == src.dim():
            mode, corners = _arg(args, kwargs, 3, "mode", "nearest"), bool(_arg(args, kwargs, 4, "align_corners", None))
            (rh, sh, jh), (rw, sw, jw) = (_resampled(rh, sh, jh, src.shape[i], out.shape[i], mode, corners)
                                          for i in (-2, -1))
        elif fname == "pad" and isinstance(out, torch.Tensor) and out.dim() == 4 == src.dim():
            pad = tuple(_arg(args, kwargs, 1, "pad", ()))
            # (left, right, top, bottom): the padded map's unit 0 lies that many units before the input's
            sw, sh = sw - jw * (pad[0] if len(pad) > 0 else 0), sh - jh * (pad[2] if len(pad) > 2 else 0)
        elif fname == "__getitem__" and isinstance(out, torch.Tensor) and out.dim() == 4 == src.dim() \
                and (crop := _spatial_slices(args[1] if len(args) > 1 else None, src.shape[-2:])) is not None:
            (start_h, step_h), (start_w, step_w) = crop   # a crop or a strided subsampling, x[:, :, ::2, ::2]
            sh, sw = sh + jh * start_h, sw + jw * start_w
            jh, jw = jh * step_h, jw * step_w
        elif fname in _ADAPTIVE or (isinstance(out, torch.Tensor) and out.dim() < src.dim() and src.dim() == 4):
            # global pooling or flattening: a unit sees every position of its input
            ih, iw = src.shape[-2:]
            if isinstance(out, torch.Tensor) and out.dim() == 4:
                # PyTorch's window i: from floor(i * in / out) to ceil((i + 1) * in / out); where out does not
                # divide in, some windows are one wider than ceil(in / out)
                oh, ow = out.shape[-2:]
                kh, kw = _widest_window(ih, oh), _widest_window(iw, ow)
                rh, rw = rh + (kh - 1) * jh, rw + (kw - 1) * jw
                sh, sw = sh + jh * (math.ceil(ih / oh) - 1) / 2, sw + jw * (math.ceil(iw / ow) - 1) / 2
                jh, jw = jh * ih / oh, jw * iw / ow
            else:
                rh, rw = max(rh + (ih - 1) * jh, gh), max(rw + (iw - 1) * jw, gw)
                sh, sw = sh + jh * (ih - 1) / 2, sw + jw * (iw - 1) / 2
                gh, gw = 0.0, 0.0
        for t in _flat(out if isinstance(out, (tuple, list)) else [out]):
            if isinstance(t, torch.Tensor):
                self.set(t, (rh, rw, jh, jw, sh, sw, gh, gw))
        return out


_PIXEL = (1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)  # an input pixel: its own field, one pixel from the next


def _field(info: tuple[float, ...]) -> tuple[float, float]:
    """The side of a unit's receptive field: its own window, or the region a broadcast gate brought in."""
    return max(info[0], info[6]), max(info[1], info[7])


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any) -> Any:
    """Argument ``i`` of a call, given by position or by ``name``."""
    return args[i] if len(args) > i else kwargs.get(name, default)


def _layout_source(known: list[tuple[torch.Tensor, tuple[float, ...]]], out: Any) -> tuple[torch.Tensor, tuple]:
    """The input whose units the output's units are: among inputs of the output's height and width (a 1x1 gate
    broadcast over a map has no places of its own), the one with the smallest field: the most direct path (a
    shortcut, an attention module's trunk), whose places took the fewest steps of arithmetic. Where every step
    is exact the paths agree; an up-sampling's places are an average (:func:`_resampled`)."""
    if isinstance(out, torch.Tensor) and out.dim() == 4:
        laid_out = [(t, i) for t, i in known if t.dim() == 4 and t.shape[-2:] == out.shape[-2:]]
        known = laid_out or known
    return min(known, key=lambda p: p[1][0] * p[1][1])


def _widest_window(size: int, out: int) -> int:
    """The widest window of an adaptive pooling from ``size`` to ``out`` positions (PyTorch's windows)."""
    return max(-(-(i + 1) * size // out) - i * size // out for i in range(out))


def _resampled(rf: float, start: float, jump: float, size: int, out: int, mode: str,
               corners: bool) -> tuple[float, float, float]:
    """``(rf, start, jump)`` along one axis after ``F.interpolate`` from ``size`` to ``out`` positions: output unit
    ``i`` reads input units near ``i * size / out`` (``nearest``: the one at ``floor``; ``bilinear``: the two
    around it; ``bicubic``: four); with ``align_corners`` the ends meet the ends. Antialiased down-sampling
    (``antialias=True``) reads more inputs and is counted as without."""
    taps = {"nearest": 1, "nearest-exact": 1, "bilinear": 2, "linear": 2, "bicubic": 4, "area": None}.get(mode, 2)
    if taps is None:  # area: adaptive average pooling
        taps = _widest_window(size, out)
    if out == size:
        return rf, start, jump
    if corners and out > 1:
        scale = (size - 1) / (out - 1)
        offset = 0.0
    else:
        scale = size / out
        # the others sample at (i + 0.5) * scale - 0.5; nearest reads floor(i * scale): i * scale when it
        # down-samples by a whole factor, i * scale + (scale - 1) / 2 on average when it up-samples
        offset = 0.0 if mode == "nearest" and scale >= 1 else 0.5 * scale - 0.5
    return rf + (taps - 1) * jump, start + offset * jump, jump * scale


def _spatial_slices(index: Any, size: torch.Size) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """``((start, step), (start, step))`` of the height and width when ``index`` only slices (``x[:, :, ::2,
    ::2]``, ``x[..., 1:, 1:]``); None for any other index."""
    items = list(index) if isinstance(index, tuple) else [index]
    if not all(isinstance(i, slice) or i is Ellipsis for i in items) or items.count(Ellipsis) > 1:
        return None
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items = items[:at] + [slice(None)] * (4 - len(items) + 1) + items[at + 1:]
    items += [slice(None)] * (4 - len(items))
    if len(items) != 4:
        return None
    return tuple((items[d].indices(n)[0], items[d].indices(n)[2]) for d, n in zip((2, 3), size, strict=True))


def _shape_only(func, args) -> torch.Tensor | None:
    """Batch norm's output on the meta device: a tensor like its input. PyTorch computes it there through a
    Python decomposition, which took more than half of a summary's time for networks full of batch norm."""
    x = args[0] if args else None
    return torch.empty_like(x) if isinstance(x, torch.Tensor) and x.is_meta else None


def _flat(items: Any) -> list[Any]:
    out: list[Any] = []
    for a in items:
        if isinstance(a, (list, tuple)):
            out.extend(_flat(a))
        else:
            out.append(a)
    return out


def _macs(module: nn.Module, inputs: Any, output: torch.Tensor) -> int:
    """Multiply-adds of one call, per image."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return module.weight[0].numel() * output[0].numel()  # (C_in / groups * prod(kernel)) per output
    if isinstance(module, nn.ConvTranspose2d):  # each input value is spread over C_out/groups * kh * kw outputs
        return module.weight[0].numel() * inputs[0][0].numel()
    if isinstance(module, nn.Linear):
        return module.in_features * output[0].numel()
    return 0


def unit_fields(model: nn.Module, x: torch.Tensor, layers: list[str]) -> dict[str, tuple[float, ...]]:
    """For each named layer (any module, not only leaves), run on input ``x``: the receptive field of one of its
    output units, the distance between neighbouring units and where the centre of unit (0, 0) lies, in input
    pixels: ``(rf_h, rf_w, jump_h, jump_w, start_h, start_w)``. A layer whose output is not a spatial map (or
    that does not run) is left out."""
    tracker = _FieldTracker()
    found: dict[str, tuple[float, float, float, float]] = {}
    modules = dict(model.named_modules())

    def hook(name: str):
        def keep(module, inputs, output):
            info = tracker.get(output)
            if info is not None and output.dim() == 4:
                found[name] = (*_field(info), *info[2:6])
        return keep

    handles = [modules[n].register_forward_hook(hook(n)) for n in layers if n in modules]
    was_training = model.training
    model.eval()
    try:
        with tracker, torch.no_grad():
            x = x.detach().clone()
            tracker.set(x, _PIXEL)
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return found


def summary(
    model: nn.Module,
    input_size: str | tuple[int, ...] | None = None,
    device: str | torch.device = "meta",
) -> Summary:
    """Summarise ``model`` on one input of ``input_size`` (C x H x W; the model's default if None).

    Args:
        model: any ``nn.Module``; cnnlab models supply their default input size.
        input_size: ``(3, 224, 224)`` or ``"3x224x224"``.
        device: where to probe a model that has no parameters; otherwise the probe runs where the model
            lives (build it under ``torch.device("meta")`` to get shapes with no memory and no compute).

    Returns:
        :class:`Summary` with one :class:`LayerRow` per leaf-module call, and totals.
    """
    if input_size is None:
        input_size = getattr(model, "default_input_size", None)
        if input_size is None:
            raise CnnlabError("summary needs input_size for a model without a default_input_size")
    size = parse_size(input_size, "input size", "3x224x224")
    if len(size) == 2:
        size = (getattr(model, "in_chans", 3), *size)
    if len(size) != 3 or min(size) < 1:
        raise CnnlabError(f"input size must be CxHxW, e.g. 3x224x224, got {input_size!r}")
    chans = getattr(model, "in_chans", None)
    if chans is not None and size[0] != chans and size[2] == chans and size[0] > 4:  # HxWxC
        raise CnnlabError(f"input size is CxHxW, channels first: {size[2]}x{size[0]}x{size[1]}, not "
                          f"{'x'.join(map(str, size))}")
    param = next(model.parameters(), None)
    dev = param.device if param is not None else torch.device(device)
    names = {m: n for n, m in model.named_modules()}
    rows: list[LayerRow] = []
    seen: set[nn.Module] = set()
    tracker = _FieldTracker()

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        out = output[0] if isinstance(output, (tuple, list)) else output
        if not isinstance(out, torch.Tensor):
            return
        params = 0 if module in seen else sum(p.numel() for p in module.parameters(recurse=False))
        seen.add(module)
        info = tracker.get(out)
        rows.append(LayerRow(
            name=names.get(module, "?"),
            type=type(module).__name__,
            kernel=_attr(module, "kernel_size"),
            stride=_attr(module, "stride"),
            padding=_attr(module, "padding"),
            dilation=_attr(module, "dilation"),
            output_shape=tuple(out.shape[1:]),
            params=params,
            macs=_macs(module, inputs, out),
            receptive_field=tuple(round(f) for f in _field(info)) if info and out.dim() == 4 else None,
        ))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    ran: set[nn.Module] = set()  # of the modules with children that hold parameters of their own
    holders = [m for m in model.modules() if list(m.children()) and next(m.parameters(recurse=False), None) is not None]
    handles += [m.register_forward_hook(lambda m, i, o: ran.add(m)) for m in holders]
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros((1, *size), device=dev)
        with tracker, torch.no_grad():
            tracker.set(x, _PIXEL)
            out = model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    name = getattr(getattr(model, "meta", None), "name", type(model).__name__)
    out_shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else ()
    other = sum(p.numel() for m in ran for p in m.parameters(recurse=False))
    stages = [{"stage": i, "module": f.module, "channels": f.num_chs, "reduction": f.reduction}
              for i, f in enumerate(getattr(model, "feature_info", None) or [], 1)]
    return Summary(name, tuple(size), rows, total, trainable, sum(r.macs for r in rows), out_shape, other, stages)


def _attr(module: nn.Module, name: str) -> Any:
    value = getattr(module, name, None)
    if value is None or isinstance(value, str):
        return value
    return _two(value) if isinstance(value, int) else tuple(value)


def _tuple(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, tuple):
        return "x".join(map(str, v)) if len(set(v)) > 1 else str(v[0])
    return str(v)


def format_summary(s: Summary) -> str:
    """The text table of a summary: one row per layer, totals, parameters and multiply-adds."""
    headers, rows, footer = s.table()
    table = format_table(headers, rows, [False] * 7 + [True] * 3, footer)
    text = f"{s.model} on {'x'.join(map(str, s.input_size))}\n{table}\n{s.totals()}"
    if s.stages:  # what `cnnlab transfer --freeze-stages K` counts: it freezes stages 1..K (the stem is in stage 1)
        text += "\nstages (transfer --freeze-stages K freezes 1..K): " + ", ".join(
            f"{g['stage']} {g['module']} ({g['channels']} ch, /{g['reduction']})" for g in s.stages)
    return text
