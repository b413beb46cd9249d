"""Seeing inside a network: its filters, its feature maps, class activation maps (Grad-CAM, Grad-CAM++,
LayerCAM), guided backpropagation and activation maximisation, for any model of the zoo (and any
``nn.Module`` whose layers are named).

Every function takes a model and tensors, as the model takes them; :class:`Subject` bundles what a trained
run adds (its preprocessing, its classes, the layers worth showing), and :mod:`cnnlab.explain.views` turns
each view into pictures.
"""

from .cam import (
    METHODS,
    CamResult,
    cams_by_method,
    class_activation_maps,
    class_score,
    gradient_images,
    guided,
    guided_backprop,
    normalise_maps,
    predicted_class,
)
from .layers import capture, find_layer, first_layer, stage_layers
from .maps import feature_maps, filter_images, filters, map_images
from .maximize import Maximized, maximize, parse_channels, unit_activations, unit_count

__all__ = [
    "METHODS", "CamResult", "Maximized", "cams_by_method", "capture", "class_activation_maps", "class_score",
    "feature_maps", "filter_images", "filters", "find_layer", "first_layer", "gradient_images", "guided",
    "guided_backprop", "map_images", "maximize", "normalise_maps", "parse_channels", "predicted_class",
    "stage_layers", "unit_activations", "unit_count",
]
