"""Semantic segmentation: a convolutional encoder-decoder that gives every pixel a class, trained by the same
engine as classifiers (``cnnlab segment train``)."""

from .models import SegNet
from .task import SegmentationTask, segmentation_metrics

__all__ = ["SegNet", "SegmentationTask", "segmentation_metrics"]
