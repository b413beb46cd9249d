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
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from .._io import atomic_write_text

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")  # one per series, in order
FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'
# ColorBrewer's nine-step "Blues", light to dark: the confusion matrix's scale, from 0 to its largest count
BLUES = ("#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b")


@dataclass
class Panel:
    """One chart of lines: ``series`` are ``(label, xs, ys)``; points that are not finite are left out."""

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


def tick_label(value: float, step: float) -> str:
    """``value`` with as many decimals as the tick step needs (``0.25`` -> two, ``5`` -> none)."""
    decimals = 0
    while decimals < 6 and abs(step * 10 ** decimals - round(step * 10 ** decimals)) > 1e-6:
        decimals += 1
    text = f"{value:.{decimals}f}"
    return "0" if float(text) == 0 else text


class _Svg:
    def __init__(self, width: float, height: float) -> None:
        self.width, self.height, self.parts = width, height, []

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(self, x: float, y: float, text: str, size: float = 11, anchor: str = "middle", extra: str = "") -> None:
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" {extra}>'
                 f'{escape(str(text))}</text>')

    def markup(self) -> str:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width:.0f}" height="{self.height:.0f}" '
                f'viewBox="0 0 {self.width:.0f} {self.height:.0f}" {FONT}>\n'
                f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(self.parts) + "\n</svg>\n")


PANEL_W, PANEL_H = 470, 340
LEFT, RIGHT, TOP, BOTTOM = 62, 18, 52, 46  # the plot area's margins inside a panel


def _panel(svg: _Svg, panel: Panel, x0: float, y0: float) -> None:
    finite = [[(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(x) and math.isfinite(y)]
              for _, xs, ys in panel.series]
    points = [p for s in finite for p in s]
    xs = [p[0] for p in points] or [0.0]
    ys = [p[1] for p in points] or [0.0]
    xt = nice_ticks(min(xs), max(xs), 6, panel.integer_x)
    yt = nice_ticks(min(ys), max(ys), 5)
    left, right = x0 + LEFT, x0 + PANEL_W - RIGHT
    top, bottom = y0 + TOP, y0 + PANEL_H - BOTTOM
    pad = 0.03 * (xt[-1] - xt[0])  # markers at the ends stay inside the frame
    x_lo, x_hi = xt[0] - pad, xt[-1] + pad

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * (right - left)

    def py(y: float) -> float:
        return bottom - (y - yt[0]) / (yt[-1] - yt[0]) * (bottom - top)

    svg.text((left + right) / 2, y0 + 18, panel.title, 13)
    for t in yt:
        svg.add(f'<line x1="{left:.1f}" y1="{py(t):.1f}" x2="{right:.1f}" y2="{py(t):.1f}" stroke="#e4e4e4"/>')
        svg.text(left - 6, py(t) + 4, tick_label(t, yt[1] - yt[0] if len(yt) > 1 else 1), 10, "end",
                 'class="ytick"')
    for t in xt:
        svg.add(f'<line x1="{px(t):.1f}" y1="{top:.1f}" x2="{px(t):.1f}" y2="{bottom:.1f}" stroke="#e4e4e4"/>')
        svg.text(px(t), bottom + 15, tick_label(t, xt[1] - xt[0] if len(xt) > 1 else 1), 10, "middle",
                 'class="xtick"')
    svg.add(f'<rect x="{left:.1f}" y="{top:.1f}" width="{right - left:.1f}" height="{bottom - top:.1f}" '
            f'fill="none" stroke="#333"/>')
    svg.text((left + right) / 2, bottom + 34, panel.xlabel, 11)
    svg.text(x0 + 16, (top + bottom) / 2, panel.ylabel, 11, "middle",
             f'transform="rotate(-90 {x0 + 16:.1f} {(top + bottom) / 2:.1f})"')
    legend_x = left
    for i, ((label, _, _), pts) in enumerate(zip(panel.series, finite, strict=True)):
        colour = COLOURS[i % len(COLOURS)]
        if len(pts) > 1:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
            svg.add(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        for x, y in pts:
            svg.add(f'<circle class="point" data-series="{i}" data-x="{x:g}" data-y="{y:.6g}" cx="{px(x):.2f}" '
                    f'cy="{py(y):.2f}" r="2.6" fill="{colour}"/>')
        svg.add(f'<line x1="{legend_x:.1f}" y1="{y0 + 36:.1f}" x2="{legend_x + 18:.1f}" y2="{y0 + 36:.1f}" '
                f'stroke="{colour}" stroke-width="2"/>')
        svg.text(legend_x + 23, y0 + 40, label, 10, "start")
        legend_x += 32 + 6.2 * len(label)


def line_chart(panels: Sequence[Panel], title: str = "") -> str:
    """Panels side by side, under ``title``: the SVG markup."""
    head = 26 if title else 0
    svg = _Svg(PANEL_W * len(panels), PANEL_H + head)
    if title:
        svg.text(svg.width / 2, 19, title, 14)
    for i, panel in enumerate(panels):
        _panel(svg, panel, i * PANEL_W, head)
    return svg.markup()


def _blue(fraction: float) -> str:
    """The colour of ``fraction`` (0 to 1) along :data:`BLUES`, interpolated between its steps."""
    pos = min(max(fraction, 0.0), 1.0) * (len(BLUES) - 1)
    i = min(int(pos), len(BLUES) - 2)
    a, b = (tuple(int(c[k:k + 2], 16) for k in (1, 3, 5)) for c in BLUES[i:i + 2])
    return "#" + "".join(f"{round(u + (v - u) * (pos - i)):02x}" for u, v in zip(a, b, strict=True))


def confusion_chart(matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str) -> str:
    """Rows are true classes, columns predicted ones, shaded from 0 to the largest count; the counts are written
    in the cells of a matrix of up to 30 classes. The SVG markup."""
    k = len(classes)
    cell = min(44.0, max(6.0, 460 / max(k, 1)))
    longest = max((len(str(c)) for c in classes), default=1)
    rotate = longest > 3
    label_room = min(150, 12 + 6.5 * longest)
    left, top = 34 + label_room, 40
    bottom_room = (label_room * 0.75 if rotate else 20) + 34
    svg = _Svg(left + k * cell + 20, top + k * cell + bottom_room)
    svg.text(left + k * cell / 2, 22, title, 13)
    most = max((max(row) for row in matrix if len(row)), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            x, y = left + j * cell, top + i * cell
            svg.add(f'<rect class="cell" data-row="{i}" data-col="{j}" data-count="{count}" x="{x:.1f}" '
                    f'y="{y:.1f}" width="{cell:.1f}" height="{cell:.1f}" fill="{_blue(count / most if most else 0)}"/>')
            if k <= 30:
                colour = "white" if most and count > most / 2 else "black"
                svg.text(x + cell / 2, y + cell / 2 + 4, str(count), min(11, cell * 0.4), "middle",
                         f'fill="{colour}" class="count"')
    svg.add(f'<rect x="{left:.1f}" y="{top:.1f}" width="{k * cell:.1f}" height="{k * cell:.1f}" fill="none" '
            f'stroke="#333"/>')
    size = min(10, max(5, cell * 0.5))
    for i, name in enumerate(classes):
        centre = i * cell + cell / 2
        svg.text(left - 5, top + centre + 3.5, name, size, "end")
        x, y = left + centre, top + k * cell + 13
        if rotate:
            svg.text(x + 3, y - 4, name, size, "end", f'transform="rotate(-45 {x + 3:.1f} {y - 4:.1f})"')
        else:
            svg.text(x, y, name, size)
    svg.text(left + k * cell / 2, svg.height - 10, "predicted", 11)
    svg.text(14, top + k * cell / 2, "true", 11, "middle", f'transform="rotate(-90 14 {top + k * cell / 2:.1f})"')
    return svg.markup()


def _write(markup: str, path: str | os.PathLike) -> None:
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    atomic_write_text(path, markup)


def learning_curves_plot(history: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    """Loss (train and validation) and validation accuracy (or reconstruction PSNR) per epoch, as SVG."""
    epochs = [h["epoch"] for h in history]
    column = lambda key, scale=1.0: [scale * h[key] for h in history]  # noqa: E731
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
    else:  # a reconstruction
        second = Panel("reconstruction PSNR", "epoch", "PSNR (dB)", [("validation", epochs, column("val_psnr"))])
    _write(line_chart([loss, second], title), path)


def confusion_matrix_plot(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: str | os.PathLike,
                          title: str = "confusion matrix (test)") -> None:
    """Rows are true classes, columns predicted ones; counts in the cells. As SVG."""
    _write(confusion_chart(matrix, classes, title), path)
