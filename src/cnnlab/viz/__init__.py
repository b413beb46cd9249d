"""Pictures: learning curves, confusion matrices, image grids."""

from .plots import confusion_matrix_plot, depth_curves_plot, efficiency_plot, learning_curves_plot, transfer_curves_plot

__all__ = ["confusion_matrix_plot", "depth_curves_plot", "efficiency_plot", "learning_curves_plot",
           "transfer_curves_plot"]
