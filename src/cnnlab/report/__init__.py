"""The HTML report of a run or an experiment: one self-contained page (every picture embedded, no script, no
font or style sheet fetched, nothing from the network) that reads on a laptop and on a phone.

A run's page holds its test results and what it trained on, what its kind adds (:class:`Section`: for a
classifier its summary table, filters, feature maps and class activation maps; for an autoencoder its code map
and interpolations), its plots, the per-epoch table and the configuration; a run that has not finished says so
first, and its learning curves are drawn from its per-epoch record. It renders a run it is given (a
:class:`cnnlab.train.Run`: ``path``, ``title``, ``config``, ``meta``, ``sessions``, ``results``,
``result_rows()``, ``unfinished``, ``history``, ``plots()``, ``sections()`` and ``related()``) and reads no
file of the run directory itself. An experiment's page
(:func:`write_study_report`) holds its settings, its comparison table, its plots and a link to each run.
"""

from __future__ import annotations

import base64
import html
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from .._io import atomic_write_text


@dataclass
class Figure:
    """A PNG picture and its caption."""

    png: bytes
    caption: str


def figures(pictures) -> list[Figure]:
    """Pictures with an ``array`` (``H x W x 3`` uint8) and a ``caption`` as report figures (PNG)."""
    from ..viz.images import png_bytes

    return [Figure(png_bytes(p.array), p.caption) for p in pictures]


@dataclass
class Table:
    """A table of text cells; ``folded`` tables are shown on demand (a long per-layer summary)."""

    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    footer: list[str] | None = None
    folded: bool = False


@dataclass
class Section:
    """A titled part of a report: a line of text, then tables and figures in order."""

    title: str
    items: list[Figure | Table] = field(default_factory=list)
    text: str = ""


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; padding: 0 0.8em; color: #222;
       line-height: 1.4; }
h1 { font-size: 1.5em; overflow-wrap: anywhere; } h2 { font-size: 1.2em; margin-top: 1.6em; }
code { overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 0.5em 0 1.2em; font-size: 0.88em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.55em; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } td:first-child, th:first-child, .text { text-align: left; }
tfoot td { font-weight: 600; background: #fafafa; }
table.pairs td { text-align: left; white-space: normal; overflow-wrap: anywhere; }
table.pairs td:first-child { white-space: nowrap; overflow-wrap: normal; }
figure { display: inline-block; margin: 0 1em 1em 0; max-width: 100%; vertical-align: top; }
img { max-width: 100%; height: auto; image-rendering: pixelated; }
img.plot { image-rendering: auto; }
@media (max-width: 600px) {  /* a phone: a chart keeps its own size, legible, and scrolls sideways in its box */
  figure.plot { display: block; margin-right: 0; overflow-x: auto; } img.plot { max-width: none; }
}
figcaption { font-size: 0.85em; color: #555; max-width: 20em; }
figure.plot figcaption { max-width: none; }
details summary { cursor: pointer; color: #335; margin: 0.3em 0; }
.notice { border-left: 4px solid #c80; background: #fff6e5; padding: 0.5em 0.8em; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 10pt; }
  .scroll { overflow: visible; }
  table { font-size: 0.78em; }
  td, th { white-space: normal; overflow-wrap: anywhere; }
  h2 { break-after: avoid; }
  figure, tr { break-inside: avoid; }
  details::details-content { content-visibility: visible; display: block; }
}
"""


def _esc(value) -> str:
    return html.escape(str(value))


def _image(data: bytes, alt: str, plot: bool = False, mime: str = "image/png") -> str:
    """A PNG (or, with ``mime``, an SVG) as an image embedded in the page."""
    cls = ' class="plot"' if plot else ""
    return (f'<figure{cls}><img{cls} alt="{_esc(alt)}" src="data:{mime};base64,{base64.b64encode(data).decode()}">'
            f"<figcaption>{_esc(alt)}</figcaption></figure>")


def _plot(path: Path) -> str:
    """A PNG or SVG plot file as an image of the page (an SVG as an image, never as markup: no script in it
    runs)."""
    mime = "image/svg+xml" if path.suffix.lower() == ".svg" else "image/png"
    return _image(path.read_bytes(), path.stem.replace("_", " "), plot=True, mime=mime) if path.is_file() else ""


_NUMBER = re.compile(r"[-+]?[\d.,/]+(e[-+]?\d+)?\s*(%|x|[KMG]|ms|s|dB)?( ± .*)?")  # 98.15%, 1.2e-05, 3/5, 28.90M


def _table(rows: Sequence[Sequence], header: Sequence[str] | None = None, footer: Sequence[str] | None = None) -> str:
    """The first column and those that hold no number (names, forms, methods) left-aligned, numbers right."""
    text = {i for i in range(1, max((len(r) for r in rows), default=0))
            if not any(i < len(r) and _NUMBER.fullmatch(str(r[i]).strip()) for r in rows)}
    cell = lambda tag, i, c: f'<{tag} class="text">{_esc(c)}</{tag}>' if i in text else f"<{tag}>{_esc(c)}</{tag}>"  # noqa: E731
    head = "<thead><tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr></thead>" if header else ""
    body = "<tbody>" + "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(r)) + "</tr>" for r in rows) \
        + "</tbody>"
    foot = "<tfoot><tr>" + "".join(f"<td>{_esc(c)}</td>" for c in footer) + "</tr></tfoot>" if footer else ""
    pairs = header is None and all(len(r) == 2 for r in rows)  # names and values: read as lines, wrapped
    table = '<table class="pairs">' if pairs else "<table>"
    return f'<div class="scroll">{table}{head}{body}{foot}</table></div>'


def _item(item: Figure | Table) -> str:
    if isinstance(item, Figure):
        return _image(item.png, item.caption)
    table = _table(item.rows, item.header, item.footer)
    caption = f"<p>{_esc(item.caption)}</p>" if item.caption else ""
    if item.folded:
        return f"<details><summary>{_esc(item.caption or 'table')}</summary>{table}</details>"
    return caption + table


def _section(s: Section) -> str:
    text = f"<p>{_esc(s.text)}</p>" if s.text else ""
    return f"<h2>{_esc(s.title)}</h2>{text}" + "".join(_item(i) for i in s.items)


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cnnlab: {_esc(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{_esc(title)}</h1>
{body}
</body></html>
"""


def _epoch_cell(column: str, value) -> str:
    """A metrics.csv value rounded for reading: losses, IoU, Dice and SSIM to 4 decimals, squared errors to 5,
    PSNR to 2, accuracies as percent with 2, the learning rate in scientific notation with 2 significant digits,
    seconds to 1 decimal."""
    if not isinstance(value, (int, float)) or column == "epoch":
        return str(value)
    if column.endswith(("loss", "miou", "dice", "ssim")):
        return f"{value:.4f}"
    if column.endswith("mse"):
        return f"{value:.5f}"
    if column.endswith("psnr"):
        return f"{value:.2f}"
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


def _as_run(config: dict, meta: dict, sessions: list[dict]) -> dict:
    """The configuration as asked, with what the run resolved beside the options left to it (``auto``
    precision, the unset memory layout): ``auto (ran: fp32)``, ``None (ran: true)``; where the run measured its
    step to choose the precision, what it measured: ``auto (ran: bf16; bf16's step 1.93x as fast as fp32's)``,
    ``auto (ran: fp32; its step too short for bf16 to pay, not tried)``, ``auto (ran: fp32; a step in bf16
    failed)``. A run resumed on another device or in another precision says what each session ran:
    ``auto (ran: bf16 on cuda from epoch 1, fp32 on cpu from epoch 6)``. A distributed run's batch size is each
    process's: ``32 per process (2 processes: 64 images a step)``."""
    shown = dict(config)
    processes = meta.get("processes", 1)
    if isinstance(processes, int) and processes > 1 and isinstance(shown.get("batch_size"), int):
        shown["batch_size"] = (f"{shown['batch_size']} per process ({processes} processes: "
                               f"{shown['batch_size'] * processes} images a step)")
    for key in ("precision", "channels_last"):
        if key in shown and key in meta and meta[key] != shown[key]:
            shown[key] = f"{shown[key]} (ran: {str(meta[key]).lower()})"
    devices = list(dict.fromkeys(s["device"] for s in sessions))
    if "device" in shown and devices and devices != [shown["device"]]:
        shown["device"] = f"{shown['device']} (ran: {', '.join(devices)})"
    size = (meta.get("preprocess") or {}).get("size")
    if "image_size" in shown and shown["image_size"] is None and isinstance(size, list):
        shown["image_size"] = f"None (ran: {'x'.join(map(str, size))})"  # the model's input, as the data gave it
    if "precision" in shown and len({(s["device"], s["precision"]) for s in sessions}) > 1:
        ran = ", ".join(f"{s['precision']} on {s['device']} from epoch {s['from_epoch']}" for s in sessions)
        shown["precision"] = f"{config['precision']} (ran: {ran})"
    measured = meta.get("precision_measured")
    if measured is not None and str(shown.get("precision", "")).endswith(")"):
        said = (f"bf16's step {measured['fp32'] / measured['bf16']:.2f}x as fast as fp32's" if "bf16" in measured
                else "a step in bf16 failed" if measured else "its step too short for bf16 to pay, not tried")
        shown["precision"] = shown["precision"][:-1] + f"; {said})"
    return shown


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
        out += ("<h2>Incremental classes</h2><p>base classes: " + _esc(", ".join(inc["base_classes"]))
                + "; new classes: " + _esc(", ".join(inc.get("new_classes") or [])) + "</p>"
                + _table(table, ["model", "old classes", "new classes", "all classes"]))
    return out


def _machines(sessions: list[dict]) -> str:
    """What the run trained on, per session where they differ: ``AMD EPYC, AVX-512, 2 cores; 2 threads; torch
    2.14.1`` or ``from epoch 1: ...; from epoch 6: ...`` ('' for a run written before sessions said it)."""
    said = [s for s in sessions if s.get("machine")]
    if len({s["machine"] for s in said}) <= 1:
        return said[0]["machine"] if said else ""
    return "; ".join(f"from epoch {s['from_epoch']}: {s['machine']}" for s in said)


def _results(run, finished: bool) -> str:
    """The test results and the training's length and time, or a line saying the run is not tested yet."""
    if not finished:
        return "<p>Not tested yet: the test split is evaluated when the run finishes.</p>"
    results, history = run.results, run.history
    rows = [list(r) for r in run.result_rows()]
    stopped = " (stopped early)" if results.get("stopped_early") else ""
    rows.append(["epochs", f"{results.get('epochs', '')}{stopped}"])
    total = results.get("train_seconds")
    if isinstance(total, (int, float)):
        steps = sum(r["seconds"] for r in history if isinstance(r.get("seconds"), (int, float)))
        rest = steps and total - steps >= max(0.1, 0.05 * total)  # said where it is more than rounding
        rows.append(["training time", f"{total:.1f} s" + (f" ({steps:.1f} s in the epochs; the rest choosing the "
                                                          f"precision, preparing and saving)" if rest else "")])
    checkpoint = results.get("checkpoint")
    if checkpoint:
        rows.append(["tested", f"the {checkpoint} checkpoint" + (" (best validation)" if checkpoint == "best" else
                                                                  " (the last epoch's)")])
    sessions = run.sessions
    if len(sessions) > 1:
        rows.append(["resumed", "at epoch " + ", ".join(str(s["from_epoch"]) for s in sessions[1:])])
    machine = _machines(sessions)
    if machine:
        rows.append(["trained on", machine])
    return _table(rows)


def write_report(run) -> Path:
    """Write ``report.html`` in the run's directory; returns its path."""
    results, title = run.results, run.title
    unfinished = run.unfinished
    plots = [p for p in run.plots() if not (unfinished and p.stem in ("learning_curves", "confusion_matrix"))]
    pictures = "".join(_plot(p) for p in plots)
    if unfinished and run.history:  # the curves so far, from metrics.csv (the run draws its own when it ends)
        from ..viz.charts import learning_curves_chart

        pictures = _image(learning_curves_chart(run.history, title).encode(), "learning curves", plot=True,
                          mime="image/svg+xml") + pictures
    try:
        sections = "".join(_section(s) for s in run.sections())
    except Exception as e:  # noqa: BLE001  the run is trained and its results written: the page still comes
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        warnings.warn(f"the report's pictures of the network could not be drawn: {first}", stacklevel=2)
        sections = _section(Section("Pictures of the network", [], f"not drawn: {first}"))
    config = _as_run(run.config.to_dict() if run.config is not None else {}, run.meta or {}, run.sessions)
    notice = (f'<p class="notice"><strong>Not finished.</strong> {_esc(unfinished)}; the pictures below come '
              f'from that checkpoint.</p>' if unfinished else "")
    here = Path(run.path).resolve()
    related = [f'<a href="{_esc(quote(os.path.relpath(page, here)))}">{_esc(what)}</a>'
               for what, page in run.related()]
    see = f"<p>See also {', '.join(related)}.</p>" if related else ""
    body = f"""{notice}<p>Run directory: <code>{_esc(here)}</code></p>{see}
<h2>Test results</h2>
{_results(run, not unfinished)}
{_transfer_section(results)}
{"<h2>Pictures</h2>" if pictures else ""}
{pictures}
{sections}
<h2>Per epoch</h2>
{_epoch_table(run.history)}
<h2>Configuration</h2>
{_table([[k, v] for k, v in config.items()])}
"""
    out = Path(run.path) / "report.html"
    atomic_write_text(out, _page(title, body))
    return out


def _setting(value) -> str:
    """A setting as it would be typed: lists joined by commas, NAME=VALUE pairs, 'default' for None."""
    if value is None:
        return "default"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def write_study_report(path: str | Path, title: str, settings: dict, table: Table, plots: list[Path],
                       runs: list[Path]) -> Path:
    """Write ``report.html`` of an experiment directory: its settings, its comparison ``table``, its plots and a
    link to each run's own report (relative, so that the directory can move)."""
    path = Path(path)
    links = "".join(f'<li><a href="{_esc(quote(r.relative_to(path).as_posix()))}/report.html">{_esc(r.name)}</a>'
                    f'</li>' for r in runs if (r / "report.html").is_file())  # quoted: a '#' or '?' in a name
    body = f"""<p>Experiment directory: <code>{_esc(path.resolve())}</code></p>
<h2>Results</h2>
{_item(table)}
<h2>Plots</h2>
{''.join(_plot(p) for p in plots)}
<h2>Settings</h2>
{_table([[k, _setting(v)] for k, v in settings.items()])}
{f"<h2>Runs</h2><ul>{links}</ul>" if links else ""}
"""
    out = path / "report.html"
    atomic_write_text(out, _page(title, body))
    return out


__all__ = ["Figure", "Section", "Table", "figures", "write_report", "write_study_report"]
