"""Convolution and pooling arithmetic: the output size of a layer, with the reason when it is impossible.

For one axis of size ``n`` with kernel ``k``, stride ``s``, dilation ``d`` and padding ``p_lo + p_hi``::

    effective kernel  k_eff = d * (k - 1) + 1
    output            floor((n + p_lo + p_hi - k_eff) / s) + 1     (ceil instead of floor with ceil_mode)

and the layer is impossible when that is less than 1 (the kernel does not fit in the padded input).

Padding is one number (all sides), two (vertical, horizontal) or four (top, bottom, left, right).
Asymmetric padding is what ``F.pad`` followed by an unpadded layer computes; pooling with ``ceil_mode``
follows PyTorch's rule that the last window must start inside the input or its left padding.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import NamedTuple

from ..errors import ShapeArithmeticError

IntOrPair = int | Sequence[int]


class Shape(NamedTuple):
    """An image shape, height x width x channels."""

    height: int
    width: int
    channels: int

    def __str__(self) -> str:
        return f"{self.height}x{self.width}x{self.channels}"


def parse_size(text: str | Sequence[int], what: str = "input", example: str = "224x224x3") -> tuple[int, ...]:
    """Parse ``"224x224x3"`` (or ``"32x32"``, ``"28"``) into integers; a number or a sequence of whole numbers
    passes through."""
    if not isinstance(text, str):
        try:
            values = tuple(text) if hasattr(text, "__iter__") else (text,)
            if not values or any(isinstance(v, bool) for v in values):
                raise TypeError
            return tuple(operator.index(v) for v in values)  # an int, numpy's too; not 2.5
        except TypeError:
            raise ShapeArithmeticError(f"{what} takes whole numbers, like {example}; got {text!r}") from None
    try:
        values = tuple(int(v) for v in text.lower().replace(",", "x").split("x"))
    except ValueError:
        raise ShapeArithmeticError(f"{what} '{text}' is not a size like {example}") from None
    return values


def pair(value: IntOrPair, name: str) -> tuple[int, int]:
    """One number or two (vertical, horizontal): ``3``, ``"3x5"``, ``(3, 5)`` -> a (vertical, horizontal) pair."""
    values = parse_size(value, name, "3 or 3x5")
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise ShapeArithmeticError(f"{name} takes one number or two (vertical, horizontal), got {len(values)}")


def padding_sides(padding: IntOrPair) -> tuple[int, int, int, int]:
    """One number, (vertical, horizontal) or (top, bottom, left, right) -> (top, bottom, left, right); text
    may separate them with commas or x, as the lecture writes them (``"0,1,1,0"``)."""
    values = parse_size(padding, "padding", "1 or 0,1,1,0")
    if len(values) == 1:
        values = values * 4
    elif len(values) == 2:
        values = (values[0], values[0], values[1], values[1])
    elif len(values) != 4:
        raise ShapeArithmeticError(
            f"padding takes 1, 2 (vertical, horizontal) or 4 (top, bottom, left, right) numbers, got {len(values)}"
        )
    if min(values) < 0:
        given = ",".join(map(str, padding)) if isinstance(padding, (tuple, list)) else padding
        raise ShapeArithmeticError(f"padding must not be negative, got {given}")
    return values  # type: ignore[return-value]


def input_shape(input_size: str | Sequence[int]) -> Shape:
    """``"224x224x3"`` (HxWxC), ``"32x32"`` (one channel) or ``"28"`` (square) -> Shape."""
    values = parse_size(input_size)
    if len(values) == 1:
        values = (values[0], values[0], 1)
    elif len(values) == 2:
        values = (*values, 1)
    if len(values) != 3:
        raise ShapeArithmeticError(f"input takes HxWxC, HxW (one channel) or N (square), e.g. 224x224x3; "
                                   f"got {input_size!r}")
    if min(values) < 1:
        raise ShapeArithmeticError(f"input sizes must be positive, got {'x'.join(map(str, values))}")
    return Shape(*values)


def axis_output(
    n: int, k: int, s: int, p_lo: int, p_hi: int, d: int = 1, ceil_mode: bool = False, axis: str = "height",
    explicit_padding: bool = False,
) -> int:
    """Output length along one axis; raises :class:`ShapeArithmeticError` with the reason if impossible.

    ``explicit_padding``: the padding was applied to the input beforehand (``F.pad``), so with ``ceil_mode``
    a window may start anywhere in it; otherwise it is the layer's own (symmetric) padding.
    """
    if k < 1:
        raise ShapeArithmeticError(f"kernel must be at least 1, got {k}")
    if s < 1:
        raise ShapeArithmeticError(f"stride must be at least 1, got {s}"
                                   + (" (a stride of 0 never moves the kernel)" if s == 0 else ""))
    if d < 1:
        raise ShapeArithmeticError(f"dilation must be at least 1, got {d}")
    k_eff = d * (k - 1) + 1
    padded = n + p_lo + p_hi
    # PyTorch's formula; with ceil_mode a last, partial window may hang over the end of the input
    out = (padded - k_eff + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p_lo + (p_hi if explicit_padding else 0):
        out -= 1  # the last window must start inside the input or its left padding
    if out < 1:
        what = f"kernel {k}" if d == 1 else f"kernel {k} with dilation {d} (effective {k_eff})"
        raise ShapeArithmeticError(
            f"{what} is larger than the padded {axis} {padded} ({n} + padding {p_lo + p_hi}); "
            f"use a smaller kernel or more padding"
        )
    return out


def conv_output_shape(
    input_size: str | Sequence[int],
    kernel: IntOrPair = 3,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    filters: int | None = None,
    groups: int = 1,
) -> Shape:
    """Output shape (H, W, C) of a 2-D convolution on an ``H x W x C`` input.

    >>> conv_output_shape("224x224x3", kernel=3, filters=32)
    Shape(height=222, width=222, channels=32)
    """
    h, w, c = input_shape(input_size)
    (kh, kw), (sh, sw), (dh, dw) = pair(kernel, "kernel"), pair(stride, "stride"), pair(dilation, "dilation")
    top, bottom, left, right = padding_sides(padding)
    filters = c if filters is None else filters
    if filters < 1:
        raise ShapeArithmeticError(f"filters must be at least 1, got {filters}")
    if groups < 1:
        raise ShapeArithmeticError(f"groups must be at least 1, got {groups}")
    if c % groups or filters % groups:
        raise ShapeArithmeticError(f"groups={groups} must divide both input channels {c} and filters {filters}")
    return Shape(axis_output(h, kh, sh, top, bottom, dh, axis="height"),
                 axis_output(w, kw, sw, left, right, dw, axis="width"), filters)


def pool_output_shape(
    input_size: str | Sequence[int],
    kernel: IntOrPair = 2,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
    kind: str = "max",
) -> Shape:
    """Output shape (H, W, C) of max or average pooling; ``stride`` defaults to the kernel size."""
    if kind not in ("max", "avg"):
        raise ShapeArithmeticError(f"pool must be 'max' or 'avg', got '{kind}'")
    h, w, c = input_shape(input_size)
    (kh, kw), (dh, dw) = pair(kernel, "kernel"), pair(dilation, "dilation")
    sh, sw = (kh, kw) if stride is None else pair(stride, "stride")
    top, bottom, left, right = padding_sides(padding)
    if kind == "avg" and (dh, dw) != (1, 1):
        raise ShapeArithmeticError("average pooling has no dilation; use dilation 1 or max pooling")
    explicit = (top, left) != (bottom, right)  # asymmetric: F.pad, then an unpadded pool
    for lo, k in ((top, kh), (left, kw)):
        if not explicit and lo > k // 2:
            raise ShapeArithmeticError(
                f"pooling padding {lo} is more than half the kernel ({k}); PyTorch refuses it: use padding "
                f"<= {k // 2}, or pad explicitly (asymmetric padding)"
            )
    return Shape(axis_output(h, kh, sh, top, bottom, dh, ceil_mode, "height", explicit),
                 axis_output(w, kw, sw, left, right, dw, ceil_mode, "width", explicit), c)
