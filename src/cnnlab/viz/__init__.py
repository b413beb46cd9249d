"""Pictures: learning curves, confusion matrices, image grids, the experiments' plots.

Every run's two charts are SVG written by :mod:`cnnlab.viz.charts`, without matplotlib. The other plots are
loaded on first use (PEP 562): they import matplotlib's pyplot, about 0.4 s, which every command would
otherwise pay at start-up, ``--help`` and commands that draw nothing included.
"""

from .charts import confusion_matrix_plot, learning_curves_chart, learning_curves_plot

_PLOTS = (
    "activations_plot", "architectures_plot", "depth_curves_plot", "efficiency_plot", "imagenet_chart_plot",
    "init_signal_plot", "regularization_plot", "transfer_curves_plot",
)
__all__ = ["confusion_matrix_plot", "learning_curves_chart", "learning_curves_plot", *_PLOTS]


def __getattr__(name: str):
    if name in _PLOTS:
        from . import plots

        return getattr(plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PLOTS])
