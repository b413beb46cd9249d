"""Inspection: convolution arithmetic and per-layer model summaries."""

from .shapes import (
    Shape,
    axis_output,
    conv_output_shape,
    input_shape,
    padding_sides,
    pair,
    parse_size,
    pool_output_shape,
)
from .summary import LayerRow, Summary, summary
from .table import format_table, human

__all__ = ["LayerRow", "Shape", "Summary", "axis_output", "conv_output_shape", "format_table", "human", "input_shape",
           "padding_sides", "pair", "parse_size", "pool_output_shape", "summary"]
