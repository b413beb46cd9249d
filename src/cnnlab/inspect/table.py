"""Plain-text tables (plain text on purpose: it pipes, diffs and pastes cleanly, at any width)."""

from __future__ import annotations

from collections.abc import Sequence


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
