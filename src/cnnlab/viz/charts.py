"""The two charts every run draws, written as SVG: its learning curves and its confusion matrix.

Written here rather than with matplotlib, which draws every other plot of cnnlab: its import and its first
two figures took 0.65 s of the 5-s default ``cnnlab train`` (13%; AMD EPYC, 2 cores), where writing the SVG
text takes milliseconds. The charts are simple (lines with markers on linear axes, a grid of counts), and a
vector file stays sharp at any zoom in the report and in a browser. ``tests/test_viz.py`` reads the files back
and checks each point and cell against the numbers drawn.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

import numpy as np

from .._io import atomic_write_text
from ..errors import CnnlabError

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")  # one per series, in order
FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'
CHAR = 0.6  # a character's width, as a share of the font size (about the average of a sans-serif face)
TITLE, LABEL, TICK = 15, 13, 12  # font sizes in pixels: panel titles, axis labels and legends, tick labels
# ColorBrewer's nine-step "Blues", light to dark: the confusion matrix's scale, from 0 to its largest count
BLUES = ("#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b")
DRAWN = 1e200  # values beyond this (a diverged loss) are left out like the ones that are not finite
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # characters XML does not allow


@dataclass
class Panel:
    """One chart of lines: ``series`` are ``(label, xs, ys)``; points that are not finite (or ``None``) are left
    out, and the line breaks there."""

    title: str
    xlabel: str
    ylabel: str
    series: list[tuple[str, Sequence[float], Sequence[float]]] = field(default_factory=list)
    integer_x: bool = True  # epochs: no tick at 1.25


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[float]:
    """About ``count`` evenly spaced round values (steps of 1, 2, 2.5 or 5 times a power of ten; whole numbers
    where ``integer``) from at or below ``lo`` to at or above ``hi``."""
    if not hi > lo:
        lo, hi = (lo - 1, hi + 1) if integer or lo == 0 else (lo - abs(lo) * 0.05, hi + abs(hi) * 0.05)
    raw = (hi - lo) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    if integer:
        step = max(1, round(step))
    first = math.floor(lo / step + 1e-9) * step
    ticks = [first]
    while ticks[-1] < hi - step * 1e-9:
        ticks.append(first + len(ticks) * step)
    return ticks


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """The ticks' labels: as many decimals as their step needs (``0.25`` -> two, ``5`` -> none); for values too
    large or too small for that (a million or more, or a step under 1e-4), the shortest ``%g`` form that tells
    them apart."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    if max(abs(t) for t in ticks) < 1e6 and step >= 1e-4:
        decimals = 0
        while decimals < 6 and abs(step * 10 ** decimals - round(step * 10 ** decimals)) > 1e-6:
            decimals += 1
        labels = [f"{t:.{decimals}f}" for t in ticks]
    else:
        for digits in range(2, 18):
            labels = [f"{t:.{digits}g}" for t in ticks]
            if len(set(labels)) == len(labels):
                break
    return ["0" if float(label) == 0 else label for label in labels]


def _limits(values: Sequence[float], integer: bool) -> tuple[float, float]:
    """The axis's span: the values' and 5% on each side (half a step for a single whole number)."""
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.05 if hi > lo else (0.5 if integer or lo == 0 else abs(lo) * 0.05)
    return lo - pad, hi + pad


def _ticks_within(values: Sequence[float], count: int, integer: bool) -> tuple[list[float], float, float]:
    """The axis's span and the round ticks inside it: three at least where the span holds them (a finer step is
    tried when the first leaves fewer inside)."""
    a, b = _limits(values, integer)
    eps = (b - a) * 1e-9
    for n in (count, count + 2, count + 5):
        ticks = [t for t in nice_ticks(min(values), max(values), n, integer) if a - eps <= t <= b + eps]
        if len(ticks) >= 3:
            break
    return ticks, a, b


def _clean(text) -> str:
    return escape(_CONTROL.sub("?", str(text)))


class _Svg:
    def __init__(self, width: float, height: float) -> None:
        self.width, self.height, self.parts = width, height, []

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(self, x: float, y: float, text, size: float = LABEL, anchor: str = "middle", extra: str = "") -> None:
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}" text-anchor="{anchor}" {extra}>'
                 f"{_clean(text)}</text>")

    def markup(self) -> str:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width:.0f}" height="{self.height:.0f}" '
                f'viewBox="0 0 {self.width:.0f} {self.height:.0f}" {FONT}>\n'
                f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(self.parts) + "\n</svg>\n")


PANEL_W, PANEL_H = 520, 390
RIGHT, TOP, BOTTOM = 18, 60, 52  # the plot area's margins inside a panel (the left one fits the tick labels)


def _number(value) -> float:
    return float(value) if value is not None else math.nan


def _panel(svg: _Svg, panel: Panel, x0: float, y0: float) -> None:
    runs = []  # per series: its stretches of drawable points, split where a value is missing
    for _, xs, ys in panel.series:
        stretches, current = [], []
        for x, y in zip(xs, ys, strict=True):
            x, y = _number(x), _number(y)
            if math.isfinite(x) and math.isfinite(y) and abs(y) < DRAWN:
                current.append((x, y))
            elif current:
                stretches.append(current)
                current = []
        runs.append([*stretches, current] if current else stretches)
    points = [p for stretches in runs for stretch in stretches for p in stretch]
    all_x = [_number(x) for _, xs, _ in panel.series for x in xs if math.isfinite(_number(x))]
    xt, x_lo, x_hi = _ticks_within(all_x or [1.0], 6, panel.integer_x)
    yt, y_lo, y_hi = _ticks_within([p[1] for p in points] or [0.0, 1.0], 5, False)
    xl, yl = tick_labels(xt), tick_labels(yt)
    left = x0 + 34 + CHAR * TICK * max(len(t) for t in yl)
    right, top, bottom = x0 + PANEL_W - RIGHT, y0 + TOP, y0 + PANEL_H - BOTTOM

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * (right - left)

    def py(y: float) -> float:
        return bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top)

    svg.text((left + right) / 2, y0 + 20, panel.title, TITLE)
    for t, label in zip(yt, yl, strict=True):
        svg.add(f'<line x1="{left:.1f}" y1="{py(t):.1f}" x2="{right:.1f}" y2="{py(t):.1f}" stroke="#e4e4e4"/>')
        svg.text(left - 7, py(t) + TICK * 0.35, label, TICK, "end", 'class="ytick"')
    for t, label in zip(xt, xl, strict=True):
        svg.add(f'<line x1="{px(t):.1f}" y1="{top:.1f}" x2="{px(t):.1f}" y2="{bottom:.1f}" stroke="#e4e4e4"/>')
        svg.text(px(t), bottom + TICK + 5, label, TICK, "middle", 'class="xtick"')
    svg.add(f'<rect x="{left:.1f}" y="{top:.1f}" width="{right - left:.1f}" height="{bottom - top:.1f}" '
            f'fill="none" stroke="#333"/>')
    svg.text((left + right) / 2, bottom + 40, panel.xlabel, LABEL)
    svg.text(x0 + 16, (top + bottom) / 2, panel.ylabel, LABEL, "middle",
             f'transform="rotate(-90 {x0 + 16:.1f} {(top + bottom) / 2:.1f})"')
    legend_x = left
    for i, ((label, _, _), stretches) in enumerate(zip(panel.series, runs, strict=True)):
        colour = COLOURS[i % len(COLOURS)]
        for stretch in stretches:
            if len(stretch) > 1:
                path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in stretch)
                svg.add(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
            for x, y in stretch:
                svg.add(f'<circle class="point" data-series="{i}" data-x="{x:g}" data-y="{y:.6g}" '
                        f'cx="{px(x):.2f}" cy="{py(y):.2f}" r="2.8" fill="{colour}"/>')
        svg.add(f'<line x1="{legend_x:.1f}" y1="{y0 + 41:.1f}" x2="{legend_x + 20:.1f}" y2="{y0 + 41:.1f}" '
                f'stroke="{colour}" stroke-width="2.4"/>')
        svg.text(legend_x + 26, y0 + 41 + LABEL * 0.35, label, LABEL, "start")
        legend_x += 40 + CHAR * LABEL * len(label)


def line_chart(panels: Sequence[Panel], title: str = "") -> str:
    """Panels side by side, under ``title``: the SVG markup."""
    head = 30 if title else 0
    svg = _Svg(PANEL_W * len(panels), PANEL_H + head)
    if title:
        svg.text(svg.width / 2, 22, title, TITLE + 1)
    for i, panel in enumerate(panels):
        _panel(svg, panel, i * PANEL_W, head)
    return svg.markup()


def _blue(fraction: float) -> str:
    """The colour of ``fraction`` (0 to 1) along :data:`BLUES`, interpolated between its steps."""
    pos = min(max(fraction, 0.0), 1.0) * (len(BLUES) - 1)
    i = min(int(pos), len(BLUES) - 2)
    a, b = (tuple(int(c[k:k + 2], 16) for k in (1, 3, 5)) for c in BLUES[i:i + 2])
    return "#" + "".join(f"{round(u + (v - u) * (pos - i)):02x}" for u, v in zip(a, b, strict=True))


def _count_text(value) -> str:
    value = float(value)
    if not math.isfinite(value):
        return str(value)  # nan, inf
    return f"{value:.0f}" if value == int(value) else f"{value:.3g}"


def _compact(value) -> str:
    """A count in four characters or so: 1025376 -> ``1.03M``, 12345 -> ``12.3k``."""
    value = float(value)
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if math.isfinite(value) and abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return _count_text(value)


MAX_NAME = 32  # characters of a class name shown; longer ones end in an ellipsis


def confusion_chart(matrix, classes: Sequence[str], title: str) -> str:
    """Rows are true classes, columns predicted ones, each cell shaded by its share of its row (of the class's
    images or pixels: a segmentation's background, a million pixels, would otherwise leave every other cell
    white, as would any class far more common than the rest); the counts are written
    in the cells of a matrix of up to 30 classes (shortened, ``1.03M``, where they would not fit). A name for
    each row of ``matrix`` beyond ``classes`` is its index. The SVG markup."""
    if hasattr(matrix, "detach"):  # a tensor, on any device
        matrix = matrix.detach().cpu()
    rows = np.asarray(matrix, dtype=np.float64).reshape(len(matrix), -1).tolist() if len(matrix) else []
    k = len(rows)
    names = [str(c) for c in classes][:k] + [str(i) for i in range(len(classes), k)]
    names = [n if len(n) <= MAX_NAME else n[:MAX_NAME - 1] + "\u2026" for n in names]
    cell = min(44.0, max(4.0, 520 / max(k, 1)))
    size = min(TICK, max(6.0, cell * 0.6))
    stride = max(1, math.ceil(size * 1.3 / cell))  # every stride-th name, where the cells are too small for each
    longest = max((len(n) for n in names), default=1)
    rotate = CHAR * size * longest > cell * stride * 0.9
    left, top = 34 + CHAR * size * longest + 8, 46
    bottom_room = (CHAR * size * longest * 0.72 + 12 if rotate else size + 8) + 40
    width = max(left + k * cell + 20, CHAR * TITLE * len(title) + 40)
    svg = _Svg(width, top + k * cell + bottom_room)
    half = CHAR * TITLE * len(title) / 2  # centred over the matrix, inside the picture
    svg.text(min(max(left + k * cell / 2, half + 10), width - half - 10), 26, title, TITLE)
    for i, row in enumerate(rows):
        total = sum(v for v in row if math.isfinite(v) and v > 0)
        for j, count in enumerate(row):
            x, y = left + j * cell, top + i * cell
            share = count / total if total > 0 and math.isfinite(count) else 0.0
            fill = _blue(share)
            svg.add(f'<rect class="cell" data-row="{i}" data-col="{j}" data-count="{_count_text(count)}" '
                    f'x="{x:.1f}" y="{y:.1f}" width="{cell:.1f}" height="{cell:.1f}" fill="{fill}"/>')
            if k <= 30:
                text, font = _count_text(count), min(TICK, cell * 0.4)
                if CHAR * font * len(text) > cell * 0.9:
                    text = _compact(count)
                    font = min(font, cell * 0.9 / (CHAR * len(text)))
                colour = "white" if share > 0.5 else "black"
                svg.text(x + cell / 2, y + cell / 2 + font * 0.35, text, round(font, 1), "middle",
                         f'fill="{colour}" class="count"')
    svg.add(f'<rect x="{left:.1f}" y="{top:.1f}" width="{k * cell:.1f}" height="{k * cell:.1f}" fill="none" '
            f'stroke="#333"/>')
    for i, name in enumerate(names):
        if i % stride:
            continue
        centre = i * cell + cell / 2
        svg.text(left - 5, top + centre + size * 0.35, name, size, "end", 'class="row-name"')
        x, y = left + centre, top + k * cell + size + 4
        if rotate:
            svg.text(x + 3, y - 4, name, size, "end", f'transform="rotate(-45 {x + 3:.1f} {y - 4:.1f})" '
                                                      'class="col-name"')
        else:
            svg.text(x, y, name, size, "middle", 'class="col-name"')
    svg.text(left + k * cell / 2, svg.height - 12, "predicted", LABEL)
    svg.text(16, top + k * cell / 2, "true", LABEL, "middle", f'transform="rotate(-90 16 {top + k * cell / 2:.1f})"')
    return svg.markup()


def _write(markup: str, path: str | os.PathLike) -> None:
    if os.path.splitext(os.fspath(path))[1].lower() not in ("", ".svg"):  # they were matplotlib PNGs before
        raise CnnlabError(f"these charts are SVG: give a path ending in .svg, not '{os.fspath(path)}'")
    atomic_write_text(path, markup)  # which makes the folder


def learning_curves_plot(history: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    """Loss (train and validation) and validation accuracy (or reconstruction PSNR) per epoch, as an SVG file."""
    _write(learning_curves_chart(history, title), path)


def learning_curves_chart(history: Sequence[dict], title: str = "") -> str:
    """:func:`learning_curves_plot`'s chart as SVG markup (a report draws an unfinished run's from its
    metrics.csv)."""
    epochs = [h["epoch"] for h in history]
    column = lambda key, scale=1.0: [scale * _number(h.get(key)) for h in history]  # noqa: E731
    loss = Panel("loss", "epoch", "loss", [("train", epochs, column("train_loss")),
                                           ("validation", epochs, column("val_loss"))])
    first = history[0] if history else {}
    if "val_acc" in first:
        per_pixel = "val_miou" in first  # a segmentation run's accuracy is over pixels
        second = Panel("pixel accuracy" if per_pixel else "accuracy (top-1)", "epoch", "accuracy (%)")
        if "train_acc" in first:
            # measured on the epoch's training batches as they trained (augmentation and dropout included)
            second.series.append(("train (during the epoch)", epochs, column("train_acc", 100.0)))
        second.series.append(("validation", epochs, column("val_acc", 100.0)))
        panels = [loss, second]
    elif "val_psnr" in first:  # a reconstruction
        panels = [loss, Panel("reconstruction PSNR", "epoch", "PSNR (dB)", [("validation", epochs,
                                                                             column("val_psnr"))])]
    else:
        panels = [loss]
    return line_chart(panels, title)


def confusion_matrix_plot(matrix, classes: Sequence[str], path: str | os.PathLike,
                          title: str = "confusion matrix (test)") -> None:
    """Rows are true classes, columns predicted ones; counts in the cells. As SVG. ``matrix``: nested lists, an
    array or a tensor."""
    _write(confusion_chart(matrix, classes, title), path)
