"""Pictures: learning curves, confusion matrices, image grids."""

from .plots import (
    activations_plot,
    architectures_plot,
    confusion_matrix_plot,
    depth_curves_plot,
    efficiency_plot,
    imagenet_chart_plot,
    init_signal_plot,
    learning_curves_plot,
    regularization_plot,
    transfer_curves_plot,
)

__all__ = [
    "activations_plot", "architectures_plot", "confusion_matrix_plot", "depth_curves_plot", "efficiency_plot",
    "imagenet_chart_plot", "init_signal_plot", "learning_curves_plot", "regularization_plot", "transfer_curves_plot",
]
