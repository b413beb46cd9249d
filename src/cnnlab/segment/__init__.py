"""Semantic segmentation, a kind of run (``cnnlab segment train``): a convolutional encoder-decoder that gives
every pixel a class, trained by the same engine as classifiers.

>>> from cnnlab.segment import SegmentConfig
>>> from cnnlab.train import fit
>>> result = fit(SegmentConfig(data="shapes:size=64", skips=False))  # doctest: +SKIP
"""

from .config import SegmentConfig
from .kind import SegmenterKind, predict, score_text
from .models import SegNet
from .recipe import SegmentRecipe
from .task import SegmentationTask, segmentation_metrics

__all__ = ["SegNet", "SegmentConfig", "SegmentRecipe", "SegmentationTask", "SegmenterKind", "predict",
           "score_text", "segmentation_metrics"]
