"""Plain-text tables (plain text on purpose: it pipes, diffs and pastes cleanly, at any width)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .summary import Summary


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[bool] | None = None,
                 footer: Sequence[object] | None = None) -> str:
    """Columns padded to their widest cell; ``right[i]`` right-aligns column i (numbers)."""
    cells = [[str(c) for c in r] for r in rows]
    foot = [str(c) for c in footer] if footer is not None else None
    widths = [max(len(str(h)), *(len(r[i]) for r in cells + ([foot] if foot else []))) if cells or foot
              else len(str(h)) for i, h in enumerate(headers)]
    right = right or [False] * len(headers)

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
                         ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [line([str(h) for h in headers]), rule, *(line(r) for r in cells)]
    if foot:
        out += [rule, line(foot)]
    return "\n".join(out)


def human(n: float) -> str:
    """1234567 -> '1.23M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def _tuple(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, tuple):
        return "x".join(map(str, v)) if len(set(v)) > 1 else str(v[0])
    return str(v)


def format_summary(s: Summary) -> str:
    headers = ["layer", "type", "kernel", "stride", "pad", "dil", "output", "params", "MACs", "RF"]
    rows = [[r.name, r.type, _tuple(r.kernel), _tuple(r.stride), _tuple(r.padding), _tuple(r.dilation),
             "x".join(map(str, r.output_shape)), f"{r.params:,}", f"{r.macs:,}", _tuple(r.receptive_field)]
            for r in s.rows]
    footer = ["total", "", "", "", "", "", "x".join(map(str, s.output_shape)), f"{s.used_params:,}",
              f"{s.total_macs:,}", ""]
    table = format_table(headers, rows, [False] * 7 + [True] * 3, footer)
    if s.total_params == s.used_params:
        params = f"parameters: {s.total_params:,} ({human(s.total_params)}; trainable {s.trainable_params:,})"
    else:
        params = (f"parameters: {s.used_params:,} ({human(s.used_params)}) at inference; {s.total_params:,} in the "
                  f"model with its training-only modules (trainable {s.trainable_params:,})")
    return (f"{s.model} on {'x'.join(map(str, s.input_size))}\n{table}\n{params}  "
            f"multiply-adds: {s.total_macs:,} ({human(s.total_macs)})")
