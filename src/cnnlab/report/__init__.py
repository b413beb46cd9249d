"""The HTML report of a run: one self-contained page (plots embedded) with the configuration, the final
metrics, the learning curves, the confusion matrix and the per-epoch table."""

from __future__ import annotations

import base64
import csv
import html
import json
from pathlib import Path

import yaml

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


def _epoch_cell(column: str, text: str) -> str:
    """A metrics.csv value rounded for reading: losses to 4 decimals, accuracies as percent with 2, the
    learning rate in scientific notation with 2 significant digits, seconds to 1 decimal."""
    try:
        value = float(text)
    except ValueError:
        return text
    if column.endswith("loss"):
        return f"{value:.4f}"
    if column.endswith(("acc", "accuracy")) or "top" in column:
        return f"{100 * value:.2f}%"
    if column == "lr":
        return f"{value:.1e}"
    if column == "seconds":
        return f"{value:.1f}"
    return text


def _epoch_table(metrics: list[list[str]]) -> str:
    if len(metrics) < 2:
        return "<p>no epochs</p>"
    header = metrics[0]
    rows = [[_epoch_cell(c, v) for c, v in zip(header, row, strict=False)] for row in metrics[1:]]
    return _table(rows, header)


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


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.html`` in a run directory from what the directory holds; returns its path."""
    run = Path(run_dir)
    config = yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").is_file() else {}
    results = json.loads((run / "results.json").read_text()) if (run / "results.json").is_file() else {}
    metrics = list(csv.reader((run / "metrics.csv").open())) if (run / "metrics.csv").is_file() else []
    title = f"{config.get('model', '?')} on {config.get('data', '?')}"
    test = results.get("test", {})
    def shown(k, v):
        if isinstance(v, dict):  # per-class scores (segmentation)
            return ", ".join(f"{c} {x:.4f}" if isinstance(x, float) else f"{c} -" for c, x in v.items())
        return f"{100 * v:.2f}%" if k in ("accuracy", "top5") else (f"{v:.4f}" if isinstance(v, float) else v)

    summary = [[k, shown(k, v)] for k, v in test.items()]
    summary += [["epochs", results.get("epochs", "")], ["stopped early", results.get("stopped_early", "")],
                ["training time (s)", results.get("train_seconds", "")]]
    reuse = _transfer_section(results)
    plots = [_img(p, p.stem.replace("_", " ")) for p in sorted((run / "plots").glob("*.png"))] \
        if (run / "plots").is_dir() else []
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
<p>Run directory: <code>{html.escape(str(run.resolve()))}</code></p>
<h2>Test results</h2>
{_table(summary)}
{reuse}
<h2>Pictures</h2>
{''.join(plots)}
<h2>Per epoch</h2>
{_epoch_table(metrics)}
<h2>Configuration</h2>
{_table([[k, v] for k, v in config.items()])}
</body></html>
"""
    out = run / "report.html"
    atomic_write_text(out, page)
    return out
