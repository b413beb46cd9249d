"""Inspection: convolution arithmetic, per-layer model summaries and signal statistics."""

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
from .signals import SignalStats, signal_stats
from .summary import LayerRow, Summary, summary
from .table import format_table, human

__all__ = ["LayerRow", "Shape", "Summary", "axis_output", "conv_output_shape", "format_table", "human", "input_shape",
           "padding_sides", "pair", "parse_size", "pool_output_shape", "SignalStats", "signal_stats", "summary"]
