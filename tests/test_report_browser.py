"""The HTML reports, opened in a real headless Chromium: pictures decode, tables show, nothing errs or goes online.

The browser is the system's Chromium (Debian: ``apt-get install -y chromium``), driven by Playwright
(``pip install playwright``, in the dev extra) with ``executable_path``: no browser is ever downloaded. Set
``CNNLAB_CHROMIUM`` to a Chromium executable to use another one; by default ``chromium`` or ``chromium-browser`` on
PATH. Where no browser can be launched, every test here is skipped with the reason and how to install what is missing.
Screenshots (``report-desktop.png``, ``report-phone.png``) are saved next to each report, under pytest's tmp path.
"""

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from cnnlab.cli import main

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}  # an iPhone 12-15's CSS viewport
PRINTED = {"width": 718, "height": 1000}  # A4's width within the printer's margins, in CSS pixels

# Every <img>: loaded, decoded (decode() rejects a broken image) and with a width.
IMAGES_JS = """async () => Promise.all([...document.images].map(async img => ({
    src: img.currentSrc.slice(0, 60), alt: img.alt, complete: img.complete, width: img.naturalWidth,
    decoded: await img.decode().then(() => true, () => false)})))"""
# The outermost elements that stick out to the right of the viewport, for the failure message of the phone check.
OVERFLOW_JS = """() => {
    const out = e => e.getBoundingClientRect().right > innerWidth + 1;
    return [...document.body.querySelectorAll('*')].filter(e => out(e) && !out(e.parentElement)).slice(0, 8)
        .map(e => [e.tagName.toLowerCase(), e.getBoundingClientRect(), e.textContent.trim().slice(0, 60)])
        .map(([tag, box, text]) => `<${tag}> ${Math.round(box.width)}px wide, right edge at `
                                   + `${Math.round(box.right)}px: ${JSON.stringify(text)}`);
}"""

# The scrolling boxes of tables whose content is wider than the box (on paper, cut at the edge).
CLIPPED_JS = """() => [...document.querySelectorAll('.scroll')].filter(d => d.scrollWidth > d.clientWidth + 1)
    .map(d => d.textContent.trim().slice(0, 60))"""


def _chromium() -> str:
    """The Chromium executable to launch, or skip the test saying what is missing."""
    named = os.environ.get("CNNLAB_CHROMIUM")
    if named:
        if not (os.path.isfile(named) and os.access(named, os.X_OK)):
            pytest.skip(f"CNNLAB_CHROMIUM={named} is not an executable file; point it at a Chromium executable, or "
                        "unset it to use chromium from PATH (Debian: apt-get install -y chromium)")
        return named
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("no Chromium: neither chromium nor chromium-browser is on PATH; install it (Debian: apt-get "
                    "install -y chromium) or set CNNLAB_CHROMIUM to a Chromium executable")
    return found


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module, launched once; skips every test here if it cannot be."""
    executable = _chromium()
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("the Python package playwright is missing: pip install -e '.[dev]' (or pip install playwright); "
                    "no browser download is needed, the system Chromium is used")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=executable, headless=True)
        except Error as e:
            lines = str(e).strip().splitlines()  # the first line, and the browser's own words (stderr, exit status)
            said = list(dict.fromkeys(line.strip(" -") for line in lines if "[err]" in line or "did exit" in line))[:4]
            pytest.skip(f"Chromium at {executable} could not be launched: {'; '.join(lines[:1] + said)}")
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """``reports(kind)``: the report.html of a tiny run of that kind, trained on first use (1 epoch, small data)."""
    root, made = tmp_path_factory.mktemp("browser"), {}

    def train(*argv):
        assert main([str(a) for a in argv]) == 0, argv

    def make(kind: str) -> Path:
        if kind in made:
            return made[kind]
        if kind == "classifier":
            train("train", "--epochs", "1", "--run-dir", root / "classifier", "--quiet")
            made[kind] = root / "classifier" / "report.html"
        elif kind == "autoencoder":
            train("ae", "train", "--epochs", "1", "--run-dir", root / "autoencoder", "--quiet")
            made[kind] = root / "autoencoder" / "report.html"
        elif kind == "segmentation":
            train("segment", "train", "--data", "shapes:size=16,count=60", "--depth", "2", "--width", "4",
                  "--epochs", "1", "--run-dir", root / "segmentation", "--quiet")
            made[kind] = root / "segmentation" / "report.html"
        elif kind in ("experiment", "transfer"):
            if "experiment-dir" not in made:
                train("experiment", "transfer", "--from", make("classifier").parent, "--target",
                      "near=digits@classes=5-9", "--budgets", "0.1", "--seeds", "0", "--methods",
                      "scratch,feature-extraction", "--epochs", "1", "--run-dir", root / "experiment")
                made["experiment-dir"] = root / "experiment"
            made["experiment"] = made["experiment-dir"] / "report.html"
            made["transfer"] = made["experiment-dir"] / "runs" / "near-feature-extraction-0.1-seed0" / "report.html"
        else:
            raise ValueError(kind)
        return made[kind]

    return make


def _report(reports, kind) -> Path:
    path = reports(kind)
    assert path.is_file(), (f"{kind}: no report.html was written: {path} does not exist ({path.parent} holds "
                            f"{', '.join(sorted(p.name for p in path.parent.iterdir()))})")
    return path


def _open(browser, report: Path, viewport: dict):
    """A page with ``report`` loaded offline; returns (page, console errors, page errors, requested URLs)."""
    context = browser.new_context(viewport=viewport, offline=True)  # a request that leaves fails at once
    page = context.new_page()
    console, errors, requests = [], [], []
    page.on("console", lambda m: console.append(f"{m.text} ({m.location.get('url', '')[:80]})")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri(), wait_until="load")
    return page, console, errors, requests


def _screenshot(page, path: Path):
    page.screenshot(path=path, full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000, path


KINDS = ["classifier", "autoencoder", "segmentation", "transfer", "experiment"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_report_renders_in_a_real_browser(browser, reports, kind):
    report = _report(reports, kind)
    page, console, errors, requests = _open(browser, report, DESKTOP)
    try:
        images = page.evaluate(IMAGES_JS)
        tables = page.locator("table").count()
        links = page.evaluate("[...document.links].map(a => a.href)")
        _screenshot(page, report.with_name("report-desktop.png"))
    finally:
        page.context.close()
    assert images, f"{kind}: the report shows no picture"
    broken = [i for i in images if not (i["complete"] and i["decoded"] and i["width"] > 0)]
    assert not broken, f"{kind}: pictures that did not decode: {broken}"
    assert tables >= 1, f"{kind}: the report has no <table>"
    assert not console, f"{kind}: console errors: {console}"
    assert not errors, f"{kind}: uncaught page errors: {errors}"
    online = [u[:100] for u in requests if not u.startswith(("file:", "data:"))]
    assert not online, f"{kind}: the report reaches for the network: {online}"
    missing = sorted({p for u in links if u.startswith("file:") and not Path(p := unquote(urlsplit(u).path)).exists()})
    assert not missing, f"{kind}: the report links to files that do not exist: {missing}"


@pytest.mark.parametrize("kind", KINDS)
def test_the_report_fits_a_phone_screen_without_sideways_scrolling(browser, reports, kind):
    report = _report(reports, kind)
    page, console, errors, _ = _open(browser, report, PHONE)
    try:
        width, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        wide = page.evaluate(OVERFLOW_JS) if width > inner + 1 else []
        _screenshot(page, report.with_name("report-phone.png"))
    finally:
        page.context.close()
    assert not console and not errors, f"{kind}: console errors {console}, page errors {errors}"
    assert width <= inner + 1, (f"{kind}: the page is {width}px wide on a {inner}px phone viewport (screenshot: "
                                f"{report.with_name('report-phone.png')}); too wide: " + "; ".join(wide))


@pytest.mark.parametrize("kind", KINDS)
def test_the_printed_report_shows_every_column(browser, reports, kind):
    """On paper nothing scrolls: a wide table was cut at the page's edge (the last columns of an experiment's
    table, the per-layer table's receptive fields)."""
    report = _report(reports, kind)
    page, console, errors, _ = _open(browser, report, PRINTED)
    try:
        page.emulate_media(media="print")
        width, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        clipped = page.evaluate(CLIPPED_JS)
        wide = page.evaluate(OVERFLOW_JS) if width > inner + 1 else []
    finally:
        page.context.close()
    assert not console and not errors, f"{kind}: console errors {console}, page errors {errors}"
    assert not clipped, f"{kind}: printed tables cut at the edge: {clipped}"
    assert width <= inner + 1, f"{kind}: the printed page is {width}px wide on {inner}px: " + "; ".join(wide)


def test_a_folded_table_prints_whole_and_links_to_runs_with_odd_names_resolve(browser, tmp_path):
    """A folded table (a long per-layer summary) printed as its one-line summary; an experiment's link to a run
    whose name holds '#' or '?' (``--target "near #1?=..."``) was not URL-quoted and led nowhere."""
    from cnnlab.report import Table, write_study_report

    run = tmp_path / "runs" / "near #1?-scratch-seed0"
    run.mkdir(parents=True)
    (run / "report.html").write_text("<!doctype html><title>run</title>")
    rows = [[f"layer{i}", "Conv2d", *("1234567" for _ in range(12))] for i in range(80)]
    report = write_study_report(tmp_path, "experiment x", {"seeds": [0]},
                                Table(["layer", "type", *(f"column {j}" for j in range(12))], rows,
                                      "every layer (80 rows)", folded=True), [], [run])
    page, console, errors, _ = _open(browser, report, PRINTED)
    try:
        page.emulate_media(media="print")
        folded = page.evaluate("[...document.querySelectorAll('details table')].map(t => t.checkVisibility())")
        clipped = page.evaluate(CLIPPED_JS)
        links = page.evaluate("[...document.links].map(a => a.href)")
    finally:
        page.context.close()
    assert not console and not errors
    assert folded == [True], "the folded table is left out of the printed page"
    assert not clipped, f"printed tables cut at the edge: {clipped}"
    assert [Path(unquote(urlsplit(u).path)) for u in links] == [run / "report.html"]
