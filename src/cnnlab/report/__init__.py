"""The HTML report of a run: one self-contained page (plots embedded) with the configuration, the final
metrics, the learning curves, the confusion matrix and the per-epoch table.

It renders a run it is given (a :class:`cnnlab.train.Run`: ``path``, ``title``, ``config``, ``results``,
``history``, ``plots()``) and reads no file of the run directory itself.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from .._io import atomic_write_text


def _img(path: Path, alt: str) -> str:
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>' \
           f'{html.escape(alt)}</figcaption></figure>'


def _table(rows: list[list[str]], header: list[str] | None = None) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>{head}{body}</table>"


def _epoch_cell(column: str, value) -> str:
    """A metrics.csv value rounded for reading: losses to 4 decimals, accuracies as percent with 2, the
    learning rate in scientific notation with 2 significant digits, seconds to 1 decimal."""
    if not isinstance(value, (int, float)) or column == "epoch":
        return str(value)
    if column.endswith("loss"):
        return f"{value:.4f}"
    if column.endswith(("acc", "accuracy")) or "top" in column:
        return f"{100 * value:.2f}%"
    if column == "lr":
        return f"{value:.1e}"
    if column == "seconds":
        return f"{value:.1f}"
    return f"{value:.6g}"


def _epoch_table(history: list[dict]) -> str:
    if not history:
        return "<p>no epochs</p>"
    header = list(dict.fromkeys(k for r in history for k in r))
    return _table([[_epoch_cell(c, r.get(c, "")) for c in header] for r in history], header)


def _transfer_section(results: dict) -> str:
    """What a transfer run started from, and an incremental run's accuracy on old, new and all classes."""
    t = results.get("transfer")
    if not t:
        return ""
    rows = [["source", t.get("source", "")], ["mode", t.get("mode", "")],
            ["trainable parameters", f"{t.get('trainable_parameters', 0):,} of {t.get('parameters', 0):,}"]]
    if "feature_cache" in t:
        c = t["feature_cache"]
        rows.append(["feature cache", f"{c['megabytes']} MB in {c['where']}, computed in {c['seconds']} s"])
    out = "<h2>Transfer</h2>" + _table(rows)
    inc = results.get("incremental")
    if inc:
        table = [[name, *(f"{100 * v[g]:.1f}%" for g in ("old", "new", "all"))]
                 for name, v in inc.items() if isinstance(v, dict)]
        out += ("<h2>Incremental classes</h2><p>base classes: " + html.escape(", ".join(inc["base_classes"]))
                + "; new classes: " + html.escape(", ".join(inc.get("new_classes") or [])) + "</p>"
                + _table(table, ["model", "old classes", "new classes", "all classes"]))
    return out


def write_report(run) -> Path:
    """Write ``report.html`` in the run's directory; returns its path."""
    results, title = run.results, run.title
    test = results.get("test", {})

    def shown(k, v):
        if isinstance(v, dict):  # per-class scores (segmentation)
            return ", ".join(f"{c} {x:.4f}" if isinstance(x, float) else f"{c} -" for c, x in v.items())
        return f"{100 * v:.2f}%" if k in ("accuracy", "top5") else (f"{v:.4f}" if isinstance(v, float) else v)

    summary = [[k, shown(k, v)] for k, v in test.items()]
    summary += [["epochs", results.get("epochs", "")], ["stopped early", results.get("stopped_early", "")],
                ["training time (s)", results.get("train_seconds", "")]]
    reuse = _transfer_section(results)
    plots = [_img(p, p.stem.replace("_", " ")) for p in run.plots()]
    config = run.config.to_dict() if run.config is not None else {}
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cnnlab: {html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child {{ text-align: left; }}
figure {{ display: inline-block; margin: 0 1em 1em 0; }} img {{ max-width: 100%; }}
figcaption {{ font-size: 0.85em; color: #555; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Run directory: <code>{html.escape(str(Path(run.path).resolve()))}</code></p>
<h2>Test results</h2>
{_table(summary)}
{reuse}
<h2>Pictures</h2>
{''.join(plots)}
<h2>Per epoch</h2>
{_epoch_table(run.history)}
<h2>Configuration</h2>
{_table([[k, v] for k, v in config.items()])}
</body></html>
"""
    out = Path(run.path) / "report.html"
    atomic_write_text(out, page)
    return out
