"""Pictures as the viewer sees them: a PNG decodes (with Pillow) to the pixels it was given, the heat maps' colour
map is matplotlib's, and the run's SVG charts, read back, put each number where their axes say."""

import io
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.errors import CnnlabError
from cnnlab.viz.charts import (
    BLUES,
    PANEL_W,
    TICK,
    confusion_matrix_plot,
    learning_curves_plot,
    nice_ticks,
    tick_labels,
)
from cnnlab.viz.images import colorize, png_bytes, save_png, tile


def test_a_png_decodes_to_the_pixels_it_was_given(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(7, 11, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(array))).convert("RGB")), array)
    save_png(array[:, ::-1], tmp_path / "sub" / "x.png")  # a strided view, into a folder made for it
    assert np.array_equal(np.asarray(Image.open(tmp_path / "sub" / "x.png").convert("RGB")), array[:, ::-1])


def test_a_tile_of_grey_images_is_their_pixels_in_rgb():
    images = torch.tensor([[[[0.0, 1.0]]], [[[0.5, 0.25]]]])  # two 1x1x2 images
    grid = tile(images, ncol=2, pad=1, background=1.0)
    assert grid.shape == (3, 7, 3) and grid.dtype == np.uint8
    assert grid[1, 1:3, 0].tolist() == [0, 255] and grid[1, 4:6, 0].tolist() == [128, 64]
    assert (grid[1, 1:3] == grid[1, 1:3, :1]).all()  # grey: the three channels equal


def test_jet_is_matplotlibs_jet():
    from matplotlib import colormaps

    values = torch.cat([torch.linspace(0, 1, 1001), torch.tensor([0.0, 1.0, 0.35, 0.66, 1e-9, 1 - 1e-9])])
    ours = colorize(values.reshape(1, 1, -1))[0, :, 0].T
    theirs = torch.from_numpy(colormaps["jet"](values.numpy())[:, :3]).float()
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


@pytest.mark.parametrize("lo,hi,integer", [(0.13, 0.97, False), (1, 15, True), (1, 1, True), (97.5, 100, False),
                                           (0.5, 0.5, False), (-3, 250, False), (0, 0, False)])
def test_nice_ticks_cover_the_range_in_equal_round_steps(lo, hi, integer):
    ticks = nice_ticks(lo, hi, 5, integer)
    assert ticks[0] <= lo and ticks[-1] >= hi and 2 <= len(ticks) <= 9
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1
    (step,) = steps
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1, 2, 2.5, 5) and (not integer or step == int(step))


def _svg(path):
    return ET.parse(path).getroot()


def _q(tag):
    return "{http://www.w3.org/2000/svg}" + tag


def _axis_map(texts, attr, cls):
    """The linear map from value to pixel that a panel's tick labels state: (slope, offset)."""
    ticks = [(float(t.text), float(t.get(attr))) for t in texts if t.get("class") == cls]
    (v0, p0), (v1, p1) = ticks[0], ticks[-1]
    slope = (p1 - p0) / (v1 - v0)
    return slope, p0 - slope * v0


def test_learning_curves_put_each_epoch_where_the_axes_say(tmp_path):
    history = [{"epoch": e, "train_loss": 2 / e, "val_loss": 1.5 / e + 0.1, "train_acc": 0.5 + e / 40,
                "val_acc": 0.45 + e / 50} for e in range(1, 13)]
    history[3]["val_loss"] = float("inf")  # not drawn
    learning_curves_plot(history, tmp_path / "lc.svg", "a title")
    root = _svg(tmp_path / "lc.svg")
    texts = list(root.iter(_q("text")))
    assert {"a title", "loss", "accuracy (top-1)", "train", "validation", "train (during the epoch)"} <= {
        t.text for t in texts}
    points = list(root.iter(_q("circle")))
    assert len(points) == 4 * 12 - 1
    # each panel's points, against that panel's own tick labels: the panels are PANEL_W pixels apart
    for panel, keys in ((0, ("train_loss", "val_loss")), (1, ("train_acc", "val_acc"))):
        inside = lambda el, a, p=panel: p * PANEL_W <= float(el.get(a)) < (p + 1) * PANEL_W  # noqa: E731
        ys = _axis_map([t for t in texts if inside(t, "x")], "y", "ytick")
        xs = _axis_map([t for t in texts if inside(t, "x")], "x", "xtick")
        mine = [c for c in points if inside(c, "cx")]
        for series, key in enumerate(keys):
            drawn = [c for c in mine if c.get("data-series") == str(series)]
            expected = [(h["epoch"], (100 if panel else 1) * h[key]) for h in history if math.isfinite(h[key])]
            assert len(drawn) == len(expected)
            for c, (epoch, value) in zip(drawn, expected, strict=True):
                assert float(c.get("cx")) == pytest.approx(xs[0] * epoch + xs[1], abs=0.05)
                # a y label sits TICK * 0.35 below its line, to centre it
                assert float(c.get("cy")) == pytest.approx(ys[0] * value + ys[1] - TICK * 0.35, abs=0.05)


def test_the_confusion_matrix_shades_and_writes_each_count(tmp_path):
    matrix = [[25, 0, 3], [1, 30, 0], [4, 2, 12]]
    confusion_matrix_plot(matrix, ["cat", "dog", "a long name"], tmp_path / "cm.svg")
    root = _svg(tmp_path / "cm.svg")
    cells = {(int(r.get("data-row")), int(r.get("data-col"))): r for r in root.iter(_q("rect"))
             if r.get("class") == "cell"}
    assert sorted(cells) == [(i, j) for i in range(3) for j in range(3)]
    assert all(int(cells[i, j].get("data-count")) == matrix[i][j] for i, j in cells)

    def darkness(fill):
        r, g, b = (int(fill[k:k + 2], 16) for k in (1, 3, 5))
        return 765 - r - g - b

    # shaded by each cell's share of its row (the true class): a class far more common than the others (a
    # segmentation's background) would otherwise leave every other cell white
    share = {(i, j): matrix[i][j] / sum(matrix[i]) for i, j in cells}
    by_share = sorted(cells, key=share.get)
    shades = [darkness(cells[c].get("fill")) for c in by_share]
    assert shades == sorted(shades)
    assert cells[0, 1].get("fill") == BLUES[0] and max(cells, key=lambda c: darkness(cells[c].get("fill"))) == (1, 1)
    common = tmp_path / "common.svg"
    confusion_matrix_plot([[1_000_000, 10], [2, 8]], ["background", "circle"], common)
    fills = {(int(r.get("data-row")), int(r.get("data-col"))): r.get("fill") for r in _svg(common).iter(_q("rect"))
             if r.get("class") == "cell"}
    assert darkness(fills[1, 1]) > darkness(BLUES[len(BLUES) // 2]) > darkness(fills[1, 0])  # 8 of circle's 10
    counts = [t for t in root.iter(_q("text")) if t.get("class") == "count"]
    assert sorted(int(t.text) for t in counts) == sorted(v for row in matrix for v in row)
    assert [t.get("fill") for t in counts if t.text == "30"] == ["white"]
    assert {"cat", "dog", "a long name", "predicted", "true"} <= {t.text for t in root.iter(_q("text"))}


def test_jet_draws_what_is_not_a_number_black():
    rgb = colorize(torch.tensor([[[float("nan"), 1.0]]]))
    assert rgb[0, :, 0, 0].tolist() == [0.0, 0.0, 0.0] and rgb[0, :, 0, 1].tolist() == [0.5, 0.0, 0.0]


def test_a_missing_value_breaks_the_line_and_is_not_drawn(tmp_path):
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1 / e} for e in range(1, 7)]
    history[2]["train_loss"] = float("nan")
    history[3]["train_loss"] = None
    history[4]["val_loss"] = 1e300  # diverged: off any useful scale
    learning_curves_plot(history, tmp_path / "lc.svg")
    root = _svg(tmp_path / "lc.svg")
    train = [c for c in root.iter(_q("circle")) if c.get("data-series") == "0"]
    assert [float(c.get("data-x")) for c in train] == [1, 2, 5, 6]
    # train: lines 1-2 and 5-6; validation: 1-4, and 6 a point alone
    assert len(list(root.iter(_q("polyline")))) == 3
    ytexts = [float(t.text) for t in root.iter(_q("text")) if t.get("class") == "ytick"]
    assert max(ytexts) < 2  # the 1e300 left out of the scale too


@pytest.mark.parametrize("scale", [1e-7, 1e12, 1.0])
def test_tick_labels_tell_every_tick_apart_at_any_scale(scale):
    ticks = nice_ticks(3 * scale, 7.5 * scale, 5)
    labels = tick_labels(ticks)
    assert len(set(labels)) == len(labels) and all(len(label) <= 12 for label in labels)
    assert [float(label) for label in labels] == pytest.approx(ticks, rel=1e-6, abs=1e-15)


def test_one_epoch_has_one_epoch_tick(tmp_path):
    learning_curves_plot([{"epoch": 1, "train_loss": 0.5, "val_loss": 0.4, "val_acc": 0.9}], tmp_path / "lc.svg")
    xticks = [t.text for t in _svg(tmp_path / "lc.svg").iter(_q("text")) if t.get("class") == "xtick"]
    assert xticks == ["1", "1"]  # one per panel


def test_the_confusion_matrix_fits_its_counts_names_and_title(tmp_path):
    # pixel counts of a segmentation run, as a tensor; more rows than names; a control character in a name
    matrix = torch.tensor([[1025376, 12], [3, 45678], [0, 1]])
    confusion_matrix_plot(matrix, ["background", "a\x01b"], tmp_path / "cm.svg", title="a long title " * 4)
    root = _svg(tmp_path / "cm.svg")  # parses: the control character is replaced
    width = float(root.get("width"))
    assert width >= 0.6 * 15 * len("a long title " * 4)
    counts = {t.text: float(t.get("font-size")) for t in root.iter(_q("text")) if t.get("class") == "count"}
    assert "1.03M" in counts and "1025376" not in counts  # shortened to fit its cell
    assert all(0.6 * size * len(text) <= 44 * 0.9 + 0.1 for text, size in counts.items())  # every count inside
    assert {t.text for t in root.iter(_q("text")) if t.get("class") == "row-name"} == {"background", "a?b", "2"}


def test_many_classes_show_names_that_do_not_overlap(tmp_path):
    k = 100
    matrix = np.eye(k, dtype=int) * 3
    confusion_matrix_plot(matrix, [f"c{i}" for i in range(k)], tmp_path / "cm.svg")
    root = _svg(tmp_path / "cm.svg")
    rows = [t for t in root.iter(_q("text")) if t.get("class") == "row-name"]
    ys = sorted(float(t.get("y")) for t in rows)
    size = float(rows[0].get("font-size"))
    assert 5 <= len(rows) < k and min(b - a for a, b in zip(ys, ys[1:], strict=False)) >= size
    cols = [t for t in root.iter(_q("text")) if t.get("class") == "col-name"]
    assert len(cols) == len(rows)
    xs = sorted(float(t.get("x")) for t in cols)
    spacing = min(b - a for a, b in zip(xs, xs[1:], strict=False))
    if all(t.get("transform") for t in cols):  # at 45 degrees: parallel names a spacing * sin 45 apart
        assert spacing * math.sin(math.pi / 4) >= size
    else:  # side by side: each name narrower than its spacing
        assert spacing >= 0.6 * size * max(len(t.text) for t in cols)


def test_counts_that_are_not_numbers_are_written_as_such(tmp_path):
    confusion_matrix_plot([[1.0, float("nan")], [float("inf"), 2.0]], ["a", "b"], tmp_path / "cm.svg")
    counts = [t.text for t in _svg(tmp_path / "cm.svg").iter(_q("text")) if t.get("class") == "count"]
    assert sorted(counts) == ["1", "2", "inf", "nan"]


def test_a_chart_asked_for_as_png_is_refused_in_one_line(tmp_path):
    with pytest.raises(CnnlabError, match="these charts are SVG: give a path ending in .svg"):
        learning_curves_plot([{"epoch": 1, "train_loss": 1.0, "val_loss": 1.0}], tmp_path / "lc.png")
    assert not (tmp_path / "lc.png").exists()


def test_an_axis_has_three_ticks_at_least():
    # 47 to 87.5: round steps of 20 would leave only 60 and 80 inside the span
    from cnnlab.viz.charts import _ticks_within

    ticks, lo, hi = _ticks_within([47.0, 87.5], 5, False)
    assert len(ticks) >= 3 and all(lo <= t <= hi for t in ticks)


def test_log_axes_are_labelled_in_plain_numbers_minor_ticks_where_few_decades():
    """matplotlib labelled a narrow log axis 6 x 10^1 or 6e-01, on the depth and init charts."""
    from cnnlab.viz.plots import _plain_log_labels, plt

    def labels(low, high):
        fig, ax = plt.subplots()
        ax.set_yscale("log")
        ax.set_ylim(low, high)
        _plain_log_labels(ax)
        fig.canvas.draw()
        shown = [t.get_text() for t in ax.get_yticklabels(minor=False) + ax.get_yticklabels(minor=True)
                 if t.get_text() and low <= t.get_position()[1] <= high]
        plt.close(fig)
        return sorted(shown, key=float)

    assert labels(50, 85) == ["50", "60", "70", "80"]
    assert labels(0.55, 1.0) == ["0.6", "0.7", "0.8", "0.9", "1"]
    assert labels(0.3, 25) == ["0.5", "1", "2", "5", "10", "20"]
    assert labels(0.2, 100) == ["1", "10", "100"]
