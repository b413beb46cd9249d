"""Plots saved as PNG (matplotlib, headless Agg backend)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

from .._io import atomic_write

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402


def save_figure(fig, path: str | os.PathLike) -> None:
    """Save a matplotlib figure as a PNG (atomically) and close it."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png"))
    plt.close(fig)


def transfer_curves_plot(rows: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    """Test accuracy against labels per class (log scale), one line per method, one panel per target;
    the band is one standard deviation over seeds. ``rows`` are summary rows with ``target``, ``method``,
    ``labels_per_class``, ``accuracy_mean`` and ``accuracy_std``."""
    from matplotlib.ticker import NullFormatter

    targets = list(dict.fromkeys(r["target"] for r in rows))
    fig, axes = plt.subplots(1, len(targets), figsize=(5.2 * len(targets), 4.2), squeeze=False)
    for ax, target in zip(axes[0], targets, strict=True):
        for method in dict.fromkeys(r["method"] for r in rows):
            pts = sorted((r["labels_per_class"], 100 * r["accuracy_mean"], 100 * r["accuracy_std"])
                         for r in rows if r["target"] == target and r["method"] == method)
            if not pts:
                continue
            x, y, s = zip(*pts, strict=True)
            ax.plot(x, y, "o-", label=method, ms=4)
            ax.fill_between(x, [a - b for a, b in zip(y, s, strict=True)], [a + b for a, b in zip(y, s, strict=True)],
                            alpha=0.15)
        ax.set_xscale("log")
        ticks = sorted({r["labels_per_class"] for r in rows if r["target"] == target})
        ax.set_xticks(ticks, [f"{t:.0f}" if t >= 10 else f"{t:.2g}" for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        spec = next((r.get("spec") for r in rows if r["target"] == target), None)
        ax.set(xlabel="training labels per class", ylabel="test accuracy (%)",
               title=f"{target}: {spec}" if spec else target)
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    if title:
        fig.suptitle(title)
    save_figure(fig, path)


def efficiency_plot(rows: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    """Parameters, multiply-adds and measured times of each form relative to the first of its group (one panel
    per group; log scale, so that 8x fewer and 8x more are as far from 1): ``rows`` need ``group``, ``name`` and
    ``params_ratio``, ``macs_ratio``, ``forward_ratio``, ``train_ratio``."""
    import numpy as np
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    groups = list(dict.fromkeys(r["group"] for r in rows))
    measures = [("params_ratio", "parameters"), ("macs_ratio", "multiply-adds"), ("forward_ratio", "forward time"),
                ("train_ratio", "forward + backward time")]
    fig, axes = plt.subplots(1, len(groups), figsize=(6.2 * len(groups), 4.4), squeeze=False)
    for ax, group in zip(axes[0], groups, strict=True):
        forms = [r for r in rows if r["group"] == group][1:]
        x = np.arange(len(forms))
        width = 0.8 / len(measures)
        for i, (key, label) in enumerate(measures):
            values = [r[key] for r in forms]
            bars = ax.bar(x + (i - (len(measures) - 1) / 2) * width, values, width, label=label)
            ax.bar_label(bars, [f"{v:.2f}" for v in values], fontsize=7, padding=1)
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_yscale("log")  # labelled at 1, 2 and 5 times the powers of ten: every minor tick crowds near 1
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.2g"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(x, [r["name"] for r in forms], fontsize=8)
        first = next(r["name"] for r in rows if r["group"] == group)
        ax.set(ylabel=f"relative to {first}", title=group)
        ax.grid(alpha=0.3, axis="y", which="both")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def activations_plot(curves: dict[str, Sequence[float]], norms: dict[str, Sequence[float]],
                     path: str | os.PathLike, title: str = "") -> None:
    """Two panels: the training loss per epoch of each activation, and the norm of the loss gradient with respect
    to each layer's weights after the first epoch (input layer first; log scale, where a saturating unit's
    shrinking gradient is a falling line)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for act, losses in curves.items():
        left.plot(range(1, len(losses) + 1), losses, marker=".", label=act)
    left.set(xlabel="epoch", ylabel="training loss", title="training loss")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    for act, values in norms.items():
        right.plot(range(1, len(values) + 1), values, marker="o", label=act)
    right.set(xlabel="weighted layer (input to output)", ylabel="weight-gradient norm", yscale="log",
              title="gradient per layer after epoch 1")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def regularization_plot(summary: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    """Per regulariser: training, validation and test accuracy side by side (the gap between the first two is
    the overfitting), and the weights' L2 norm and share near zero. ``summary`` rows need ``variant`` and the
    means (``train_accuracy_mean``, ... ``near_zero_mean``)."""
    import numpy as np

    names = [r["variant"] for r in summary]
    x = np.arange(len(names))
    fig, (left, mid, right) = plt.subplots(1, 3, figsize=(14, 4.2), gridspec_kw={"width_ratios": [2, 1, 1]})
    # points, not bars: the axis starts near the lowest accuracy to show a gap of a few points, where a bar's
    # length would be read from an axis that does not start at 0
    for i, (key, label) in enumerate((("train_accuracy", "train"), ("val_accuracy", "validation"),
                                      ("test_accuracy", "test"))):
        left.errorbar(x + (i - 1) * 0.22, [100 * r[key + "_mean"] for r in summary],
                      yerr=[100 * r[key + "_std"] for r in summary], fmt="o", ms=6, capsize=3, label=label)
    low = max(0, min(100 * r["val_accuracy_mean"] for r in summary) - 15)
    # room above 100% for the legend, in one row, where no point reaches; no tick beyond 100%
    left.set(ylabel="accuracy (%)", ylim=(low, 100.5 + 0.18 * (100.5 - low)), title="accuracy: the gap is the "
             "overfitting")
    left.set_yticks([t for t in left.get_yticks() if low <= t <= 100])
    left.legend(fontsize=8, loc="upper center", ncol=3)
    mid.bar(x, [r["weight_norm_mean"] for r in summary], color="tab:purple")
    mid.set(title="L2 norm of the weights")
    right.bar(x, [100 * r["near_zero_mean"] for r in summary], color="tab:gray")
    right.set(title="weights near zero (%)")
    for ax in (left, mid, right):
        ax.set_xticks(x, names, rotation=35, ha="right", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    left.set_xlim(-0.6, len(names) - 0.4)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def init_signal_plot(curves: dict[tuple[str, str, str], tuple[Sequence[float], Sequence[float]]],
                     path: str | os.PathLike, title: str = "") -> None:
    """At initialisation, per layer from input to output: each activation's standard deviation (left) and each
    weighted layer's gradient norm (right); one row per norm setting, one colour per init scheme, one line
    style per network. ``curves`` maps ``(network, norm, scheme)`` to ``(activation stds, gradient norms)``.
    Log scale: a geometric fall is a straight line; zeros (nothing flows) are not drawn."""
    import numpy as np

    norms = list(dict.fromkeys(k[1] for k in curves))
    schemes = list(dict.fromkeys(k[2] for k in curves))
    nets = list(dict.fromkeys(k[0] for k in curves))
    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(len(norms), 2, figsize=(12, 3.8 * len(norms)), squeeze=False)
    for (net, norm, scheme), (acts, grads) in curves.items():
        row = axes[norms.index(norm)]
        colour, style = f"C{schemes.index(scheme) % 10}", styles[nets.index(net) % len(styles)]
        for ax, values in zip(row, (acts, grads), strict=True):
            v = np.asarray(values, dtype=float)
            ax.plot(np.arange(1, len(v) + 1), np.where(v > 0, v, np.nan), style, color=colour, lw=1.6,
                    label=f"{scheme}, {net}")
    for norm, (left, right) in zip(norms, axes, strict=True):
        left.set(ylabel=f"norm: {norm}\nactivation std", yscale="log", xlabel="activation layer (input to output)")
        right.set(ylabel="weight-gradient norm", yscale="log", xlabel="weighted layer (input to output)")
        for ax in (left, right):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3, which="both")
            low, high = ax.get_ylim()
            if high < 100 * low:  # under two decades: matplotlib labels the minor ticks 6 x 10^-1; plain 0.6
                _plain_log_labels(ax)
    axes[0][1].legend(fontsize=9, loc="center left", bbox_to_anchor=(1.01, 0.5))
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def depth_curves_plot(curves: dict[str, Sequence[float]], path: str | os.PathLike, title: str = "") -> None:
    """Training error (in [0, 1]) per epoch of each network, as in the ResNet paper's Fig. 6: plain networks
    dashed, residual ones solid, deeper ones darker; ``curves`` maps a name (``plain56``, ``resnet20``) to its
    errors."""
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    depths = sorted({int("".join(c for c in name if c.isdigit()) or 0) for name in curves})
    for name, errors in curves.items():
        depth = int("".join(c for c in name if c.isdigit()) or 0)
        shade = 0.35 + 0.65 * (depths.index(depth) + 1) / len(depths)
        colour = plt.cm.Blues(shade) if name.startswith("plain") else plt.cm.Reds(shade)
        ax.plot(range(1, len(errors) + 1), [100 * e for e in errors], "--" if name.startswith("plain") else "-",
                color=colour, label=name, lw=1.8)
    ax.set(xlabel="epoch", ylabel="training error (%)", yscale="log")
    _plain_log_labels(ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    if title:
        ax.set_title(title, fontsize=10)
    save_figure(fig, path)


def _plain_log_labels(ax) -> None:
    """A log y axis labelled in plain numbers (60, 0.6, where matplotlib writes 6 x 10^1 or 6e-01), its minor
    ticks too where the axis spans few decades: all of them up to one decade, those at 2 and 5 up to two."""
    import math

    low, high = ax.get_ylim()
    decades = math.log10(high / low) if low > 0 else math.inf
    shown = (lambda m: True) if decades <= 1 else (lambda m: m in (2, 5)) if decades <= 2 else (lambda m: False)

    def minor(value, _):
        return f"{value:g}" if shown(round(value / 10 ** math.floor(math.log10(value) + 1e-9))) else ""

    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def _bubble(params: float) -> float:
    """Marker area (points^2) for a parameter count: 10 plus 5 per million parameters (100M: 510)."""
    return 10.0 + 5.0 * params / 1e6


def _separate_labels(ax, texts: Sequence, drop: bool = False, placed: list | None = None) -> list:
    """Move each annotation (in order: the first ones keep their place) up or down by a line or more until it
    overlaps no earlier one (nor a box in ``placed``); one that finds no free place keeps its place, or with
    ``drop`` is hidden. Returns the boxes of the labels shown."""
    renderer = ax.figure.canvas.get_renderer()
    placed = list(placed or [])
    for text in texts:
        dx, dy = text.xyann
        for shift in (0, -9, 9, -18, 18, -27, 27):
            text.xyann = (dx, dy + shift)
            box = text.get_window_extent(renderer)
            if not any(box.overlaps(b) for b in placed):
                placed.append(box)
                break
        else:
            text.xyann = (dx, dy)
            if drop:
                text.set_visible(False)
            else:
                placed.append(text.get_window_extent(renderer))
    return placed


def architectures_plot(rows: Sequence[dict], path: str | os.PathLike, title: str = "",
                       chance: float | None = None) -> None:
    """Test accuracy against multiply-adds per image (log scale), one labelled point per network, the bar one
    standard deviation over seeds and the bubble's area its parameters: ``rows`` need ``model``, ``macs``,
    ``params``, ``accuracy_mean`` and ``accuracy_std``; ``chance`` (in [0, 1]) draws the chance level."""
    fig, ax = plt.subplots(figsize=(9, 6))
    labels = []
    for i, r in enumerate(rows):
        colour = plt.cm.tab20(i % 20)
        x, y = r["macs"], 100 * r["accuracy_mean"]
        ax.scatter([x], [y], s=_bubble(r["params"]), color=colour, alpha=0.35, edgecolors=colour)
        ax.errorbar([x], [y], yerr=[100 * r["accuracy_std"]], fmt="o", ms=3, color=colour, capsize=3)
        labels.append(ax.annotate(f"{r['model']} ({r['params'] / 1e6:.2g}M)", (x, y), textcoords="offset points",
                                  xytext=(7, 4), fontsize=8))
    if chance is not None:
        ax.axhline(100 * chance, color="gray", ls="--", lw=0.8)
        ax.annotate("chance", (0.01, 100 * chance), xycoords=("axes fraction", "data"), textcoords="offset points",
                    xytext=(0, 3), fontsize=7, color="gray")
    ax.set_xscale("log")
    ax.set(xlabel="multiply-adds per image (at the input each network trained on)", ylabel="test accuracy (%)")
    ax.grid(alpha=0.3, which="both")
    if title:
        ax.set_title(title, fontsize=10)
    # room above 100% for the labels of the networks there, which crowd together; the ticks stop at 100
    low = min([0.0] + [100 * (r["accuracy_mean"] - r["accuracy_std"]) for r in rows])
    ax.set_ylim(low - 2, 120)
    ax.set_yticks(range(0, 101, 20))
    _separate_labels(ax, labels)
    save_figure(fig, path)


def imagenet_chart_plot(rows: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    """Published ImageNet top-1 accuracy against multiply-adds per image (log scale), the bubble's area the
    parameters; architectures that cnnlab's zoo has are red and named in bold. ``rows`` need ``architecture``,
    ``top1`` (%), ``gmacs``, ``params`` and ``cnnlab_model`` (empty if the zoo lacks it)."""
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(11, 7))
    labels = {}
    for zoo in (False, True):
        pts = [r for r in rows if bool(r["cnnlab_model"]) == zoo]
        ax.scatter([r["gmacs"] for r in pts], [r["top1"] for r in pts], s=[_bubble(r["params"]) for r in pts],
                   alpha=0.55 if zoo else 0.3, color="tab:red" if zoo else "tab:gray", edgecolors="black",
                   linewidths=0.4)
        labels[zoo] = [ax.annotate(r["architecture"], (r["gmacs"], r["top1"]), textcoords="offset points",
                                   xytext=(4, 3), fontsize=7.5 if zoo else 5.5, fontweight="bold" if zoo else "normal",
                                   color="black" if zoo else "dimgray") for r in pts]
    ax.set_xscale("log")
    ax.set(xlabel="multiply-adds per image, G (torchvision's \"GFLOPS\")", ylabel="top-1 accuracy (%)")
    ax.grid(alpha=0.3, which="both")
    dot = dict(marker="o", ls="", markeredgecolor="black", markeredgewidth=0.4, ms=8)
    handles = [Line2D([], [], color="tab:red", alpha=0.55, label="in cnnlab's zoo", **dot),
               Line2D([], [], color="tab:gray", alpha=0.3, label="not in cnnlab's zoo", **dot)]
    handles += [Line2D([], [], color="white", markerfacecolor="none", label=f"{n}M parameters",
                       **{**dot, "ms": _bubble(n * 1e6) ** 0.5}) for n in (10, 100)]
    ax.legend(handles=handles, loc="lower right", fontsize=8, labelspacing=1.3, borderpad=1)
    if title:
        ax.set_title(title, fontsize=10)
    # the zoo's names all stay; the others only where they overlap none
    _separate_labels(ax, labels[False], drop=True, placed=_separate_labels(ax, labels[True]))
    save_figure(fig, path)
