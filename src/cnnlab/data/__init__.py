"""Datasets: built-in ones that ship inside packages, and readers for the formats users have on disk.

>>> from cnnlab.data import load_dataset
>>> data = load_dataset("digits", seed=0)
>>> data.describe()
'digits: 1257/270/270 train/val/test images, 1x8x8, 10 classes'
"""

from .._images import decode_image, read_image_file
from . import builtin, formats  # noqa: F401  (registration)
from ._base import ImageData, ImageSet, memory_limit, split_dataset, stratified_split
from ._registry import DatasetInfo, list_datasets, parse_spec, register_dataset, train_defaults
from .load import absolute_spec, load_dataset
from .shapes import generate_shapes

__all__ = ["DatasetInfo", "ImageData", "ImageSet", "absolute_spec", "decode_image", "generate_shapes", "list_datasets",
           "load_dataset", "memory_limit", "parse_spec", "read_image_file", "register_dataset", "split_dataset",
           "stratified_split", "train_defaults"]
