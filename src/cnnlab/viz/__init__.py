"""Pictures: learning curves, confusion matrices, image grids.

The plots are loaded on first use (PEP 562): they import matplotlib's pyplot, about 0.3 s, which every
command would otherwise pay at start-up through :mod:`cnnlab.viz.images`, ``--help`` and commands that draw
nothing included.
"""

_PLOTS = (
    "activations_plot", "architectures_plot", "confusion_matrix_plot", "depth_curves_plot", "efficiency_plot",
    "imagenet_chart_plot", "init_signal_plot", "learning_curves_plot", "regularization_plot", "transfer_curves_plot",
)
__all__ = list(_PLOTS)


def __getattr__(name: str):
    if name in _PLOTS:
        from . import plots

        return getattr(plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PLOTS])
