"""Plots saved as PNG (matplotlib, headless Agg backend)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

from .._io import atomic_write

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(fig, path: str | os.PathLike) -> None:
    """Save a matplotlib figure as a PNG (atomically) and close it."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png"))
    plt.close(fig)


def learning_curves_plot(history: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    """Loss (train and validation) and validation accuracy (or reconstruction PSNR) per epoch."""
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot(epochs, [h["train_loss"] for h in history], "o-", label="train", ms=3)
    ax1.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation", ms=3)
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    ax1.legend()
    ax1.grid(alpha=0.3)
    if "val_acc" in history[0]:
        if "train_acc" in history[0]:
            ax2.plot(epochs, [100 * h["train_acc"] for h in history], "o-", label="train (augmented)", ms=3)
        ax2.plot(epochs, [100 * h["val_acc"] for h in history], "o-", label="validation", ms=3)
        ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy (top-1; per pixel for segmentation)")
    else:  # a reconstruction
        ax2.plot(epochs, [h["val_psnr"] for h in history], "o-", label="validation", ms=3)
        ax2.set(xlabel="epoch", ylabel="PSNR (dB)", title="reconstruction PSNR")
    ax2.legend()
    ax2.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)


def confusion_matrix_plot(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: str | os.PathLike,
                          title: str = "confusion matrix (test)") -> None:
    """Rows are true classes, columns predicted ones; counts in the cells."""
    import numpy as np

    m = np.asarray(matrix)
    k = len(classes)
    size = min(12, 2.5 + 0.45 * k)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(m, cmap="Blues")
    long_names = max(len(c) for c in classes) > 3
    ax.set_xticks(range(k), classes, rotation=45 if long_names else 0, ha="right" if long_names else "center")
    ax.set_yticks(range(k), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    if k <= 30:
        top = m.max() if m.size else 0
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if m[i, j] > top / 2 else "black")
    save_figure(fig, path)


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
    from matplotlib.ticker import FormatStrFormatter

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
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.2g"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2g"))
        ax.set_xticks(x, [r["name"] for r in forms], fontsize=8)
        first = next(r["name"] for r in rows if r["group"] == group)
        ax.set(ylabel=f"relative to {first}", title=group)
        ax.grid(alpha=0.3, axis="y", which="both")
        ax.legend(fontsize=8)
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
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    if title:
        ax.set_title(title, fontsize=10)
    save_figure(fig, path)
