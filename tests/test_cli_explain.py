"""``cnnlab explain`` and ``cnnlab report`` on trained runs of every kind; the report's pictures of the network;
and whether the class activation maps find the objects of ``shapes``."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab import ClassifierConfig, Run, fit
from cnnlab.data.prepare import Preprocess
from cnnlab.errors import CnnlabError
from cnnlab.viz.images import save_png, tile
from tests.conftest import one_line_error, run


def _written(out: str) -> list[str]:
    return [line.split("  ")[0] for line in out.splitlines() if line.split("  ")[0].endswith(".png")]


def test_filters_features_cam_guided_and_maximize_write_pictures(runs, capsys):
    clf, img, img1 = runs / "clf", runs / "digit0.png", runs / "digit1.png"
    cases = [(("filters", clf), ["filters-features.c1.conv"]),
             (("filters", clf, "--layer", "features.c3"), ["filters-features.c3.conv"]),     # the block's conv
             (("features", clf, img, img1, "--layer", "features.c1,features.s4"),
              ["input-digit0", "features-features.c1-digit0", "features-features.s4-digit0", "input-digit1",
               "features-features.c1-digit1", "features-features.s4-digit1"]),
             (("cam", clf, img, img1, "--method", "layercam"),
              ["layercam-features.s4-predicted-digit0", "layercam-features.s4-predicted-digit1"]),
             (("cam", clf, img, "--class", "3"), ["gradcam-features.s4-class-3-digit0"]),
             (("cam", clf, img, "--method", "all"), ["all-features.s4-predicted-digit0"]),
             (("guided", clf, img, "--class", "3"), ["guided-features.s4-class-3-digit0"]),
             (("maximize", clf, "--layer", "features.c1.conv", "--channels", "0-2,5", "--steps", "3"),
              ["maximize-features.c1.conv-neuron-0-2+5"]),
             (("maximize", clf, "--class", "7", "--steps", "2"), ["maximize-class-7"])]
    for argv, names in cases:
        code, out, err = run(capsys, "explain", *map(str, argv))
        assert code == 0, (argv, err)
        assert [f.split("/")[-1] for f in _written(out)] == [f"{n}.png" for n in names], (argv, out)
        assert all((clf / "explain" / f"{n}.png").is_file() for n in names)
    code, out, _ = run(capsys, "explain", "maximize", str(clf), "--class", "7", "--steps", "2")
    assert "objective reached: class 7: " in out and out.startswith("synthesising 1 input by 2 steps")
    conv = ("--layer", "features.c1.conv")  # 6 channels
    for bad, message in [(("--class", "12"), "no class '12'"), (conv, "maximize needs --layer NAME with"),
                         ((*conv, "--channel", "0,1"), "use --channels for several"),
                         ((*conv, "--channel", "-1"), "--channel takes one channel number from 0; got '-1'"),
                         ((*conv, "--channels", "a"), "--channels takes channel numbers from 0, like 0-15"),
                         ((*conv, "--channels", "0-999999999"),  # refused before a list of 10^9 is built
                          "the layer has 6 channels (0-5); --channels 0-999999999 names channel 999999999"),
                         ((*conv, "--channel", "6"), "the layer has 6 channels (0-5); --channel 6 names channel 6"),
                         (("--layer", "nosuch", "--channel", "0"), "no layer named 'nosuch'"),
                         (("--layer", "", "--channels", "0-2"), "'' holds an empty layer name")]:
        code, out, err = run(capsys, "explain", "maximize", str(clf), *bad)
        assert code == 2 and out == "" and len(err.splitlines()) == 1, (bad, out, err)  # no announcement first
        assert message in err, (bad, err)


def test_two_images_of_one_name_in_two_folders_get_two_pictures(runs, capsys, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.png").write_bytes((runs / f"digit{'ab'.index(folder)}.png").read_bytes())
    images = [str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png")]
    for view, names in [("features", ["input-x", "features-features.c5-x", "input-x-1", "features-features.c5-x-1"]),
                        ("cam", ["gradcam-features.s4-predicted-x", "gradcam-features.s4-predicted-x-1"])]:
        layer = ("--layer", "features.c5") if view == "features" else ()
        code, out, err = run(capsys, "explain", view, str(runs / "clf"), *images, *layer, "--out", str(tmp_path / view))
        assert code == 0, err
        assert [f.split("/")[-1] for f in _written(out)] == [f"{n}.png" for n in names], out


def test_a_folder_in_the_place_of_a_picture_is_said_before_any_picture_is_written(runs, capsys, tmp_path):
    """The pictures before the blocked one were written and left behind."""
    images = [str(runs / "digit0.png"), str(runs / "digit1.png")]
    for view, blocked, layer in (("cam", "gradcam-features.s4-predicted-digit1", ()),
                                 ("features", "features-features.c5-digit1", ("--layer", "features.c5"))):
        out = tmp_path / view
        (out / f"{blocked}.png").mkdir(parents=True)
        line = one_line_error(capsys, "explain", view, str(runs / "clf"), *images, *layer, "--out", str(out))
        assert f"'{out / blocked}.png' is a folder where a picture goes; move it" in line
        assert [p.name for p in out.iterdir()] == [f"{blocked}.png"]  # nothing else written


def test_the_cam_line_names_the_class_and_the_layer(runs, capsys):
    code, out, _ = run(capsys, "explain", "cam", str(runs / "clf"), str(runs / "digit0.png"), "--class", "7",
                       "--out", str(runs / "camout"))
    assert code == 0 and re.search(r"gradcam at features\.s4 for class 7 \(score -?\d", out), out
    assert (runs / "camout" / "gradcam-features.s4-class-7-digit0.png").is_file()
    code, out, _ = run(capsys, "explain", "cam", str(runs / "clf"), str(runs / "digit0.png"), "--class", "7",
                       "--method", "all", "--out", str(runs / "camout"))
    assert code == 0 and "gradcam, gradcam++ and layercam at features.s4 for class 7 (score" in out, out
    one, three = (np.asarray(Image.open(runs / "camout" / f"{m}-features.s4-class-7-digit0.png"))
                  for m in ("gradcam", "all"))
    assert three.shape[0] == one.shape[0] and three.shape[1] > 1.9 * one.shape[1]  # the input and three maps
    assert (three[:, :one.shape[1]] == one).all()  # the input, then Grad-CAM's map first


def test_an_unknown_layer_is_one_line_listing_the_valid_ones(runs, capsys):
    line = one_line_error(capsys, "explain", "features", str(runs / "clf"), str(runs / "digit0.png"),
                          "--layer", "features.s3")
    assert "no layer named 'features.s3'" in line and "did you mean features.s4 or features.s2" in line
    assert "features.c1.conv" in line and "head.fc" in line
    line = one_line_error(capsys, "explain", "filters", str(runs / "clf"), "--layer", "features.s2")
    assert "is an AvgPool2d, not a Conv2d or Linear" in line and "valid convolution or dense layers:" in line
    for view, args in (("filters", []), ("features", [runs / "digit0.png"]), ("cam", [runs / "digit0.png"])):
        for empty in ("", "features.s2,", ","):  # was the default layer, silently
            line = one_line_error(capsys, "explain", view, str(runs / "clf"), *map(str, args), f"--layer={empty}")
            assert f"{empty!r} holds an empty layer name" in line


def test_an_unknown_layer_of_a_deep_network_lists_its_outer_layers_not_all_thousand():
    """DenseNet-201's message listed its 1,022 modules: 33 kB on one line."""
    from cnnlab.explain.layers import find_layer

    with pytest.raises(CnnlabError) as caught:
        with torch.device("meta"):
            find_layer(cnnlab.create_model("densenet201"), "layer9")
    line = str(caught.value)
    assert len(line) < 1000 and "valid layers: stem, stem.conv, stem.pool, stages, stages.0," in line
    assert "(1022 in all, nested with dots, e.g. stages.0.block.layers.0.reduce.bn)" in line


@pytest.mark.parametrize("argv, message", [
    (("cam", "ae", "digit0.png"), "cam needs class scores, and an autoencoder has none"),
    (("filters", "rnn"), "a recurrent autoencoder reads its input row by row"),
    (("cam", "clf", "digit0.png", "--class", "eleven"), "no class 'eleven': the run's classes are 0, 1, 2"),
    (("cam", "clf", "digit0.png", "--class", "10"), "9 (its class names are numbers: give one of them)"),
    (("filters", "clf", "--layer", "head.fc"),
     "the dense layer's 84 weights per unit are not an image: an image has 784 values (1x28x28 pixels)"),
    (("cam", "clf", "digit0.png", "--method", "scorecam"), "--method"),
    (("maximize", "clf", "--channels", "0-3"), "maximize needs --layer NAME with --channel K"),
    (("maximize", "clf", "--layer", "features.c1", "--channels", "0-9", "--steps", "1"), "has 6 channels"),
    (("maximize", "clf", "--layer", "features.c1", "--channel", "1-2"), "--channel takes one channel"),
    (("cam", "clf", "missing.png"), "missing.png' does not exist"),
    (("cam", "clf", "digit0.png", "--layer", "features.c5"), "larger than 1x1"),
])
def test_bad_requests_are_one_line(runs, capsys, argv, message):
    view, run_name, *rest = argv
    rest = [str(runs / a) if a.endswith(".png") else a for a in rest]
    assert message in one_line_error(capsys, "explain", view, str(runs / run_name), *rest)


@pytest.mark.parametrize("view", ["features", "cam"])
def test_a_refused_request_leaves_no_picture_and_no_folder_behind(runs, capsys, tmp_path, view):
    """`features` wrote the first image's pictures before it found the second was no image; and every view made
    its --out folder before it read the images, leaving it empty."""
    (tmp_path / "notes.png").write_text("not an image")
    out = tmp_path / "new" / "pictures"
    err = one_line_error(capsys, "explain", view, runs / "clf", runs / "digit0.png", tmp_path / "notes.png",
                         "--out", out)
    assert "cannot read image" in err and not (tmp_path / "new").exists()
    (tmp_path / "kept").mkdir()
    one_line_error(capsys, "explain", view, runs / "clf", tmp_path / "notes.png", "--out", tmp_path / "kept")
    assert (tmp_path / "kept").is_dir()  # a folder the user made stays


def test_autoencoder_and_segmentation_runs_have_their_views(runs, capsys):
    code, out, err = run(capsys, "explain", "filters", str(runs / "ae"))
    assert code == 0 and "encoder.0.conv" in out, err
    code, out, err = run(capsys, "explain", "features", str(runs / "ae"), str(runs / "digit0.png"))
    assert code == 0 and "encoder.0" in out, err
    seg_image = runs / "shape.png"
    save_png(tile(Run.open(runs / "seg").dataset().test.images[:1], pad=0), seg_image)
    code, out, err = run(capsys, "explain", "cam", str(runs / "seg"), str(seg_image), "--class", "1")
    assert code == 0 and "gradcam at bottom for class" in out, err


def test_reports_show_the_network_and_rebuild(runs, capsys):
    page = (runs / "clf" / "report.html").read_text()
    for part in ("The network", "every layer (", "features.c1.conv: 6 kernels", "Inside the network",
                 "Where the network looks", "correct: true", "confusion matrix", "gradcam at features.s4"):
        assert part in page, part
    assert len(page.encode()) < 5 * 2**20
    ae_page = (runs / "ae" / "report.html").read_text()
    for part in ("reconstructions", "code map", "interpolations", "Inside the encoder"):
        assert part in ae_page, part
    assert "Where the network looks" in (runs / "seg" / "report.html").read_text()
    (runs / "clf" / "report.html").unlink()
    code, out, _ = run(capsys, "report", str(runs / "clf"))
    assert code == 0 and out.strip().endswith("report.html") and (runs / "clf" / "report.html").read_text() == page
    assert "neither a run directory" in one_line_error(capsys, "report", str(runs))


def test_deleting_what_gradcam_points_at_costs_more_than_deleting_at_random(tmp_path):
    """The README's deletion check, as examples/explain_checks.py runs it for LeNet-5 on shapes (one seed):
    setting the top 20% Grad-CAM pixels to the data mean lowers the class logit more than 20% random pixels.
    (Where the map's peak lands, the pointing game, is printed: for LeNet-5 it varies with the seed, see the
    README.)"""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
    from explain_checks import check_cams

    fit(ClassifierConfig(model="lenet5", data="shapes:count=4000", epochs=30, run_dir=str(tmp_path / "r"),
                         quiet=True), log=lambda *a: None)
    r = check_cams(Run.open(tmp_path / "r"))
    assert r["images"] > 300                                   # most of the 400 test images looked at are right
    print({k: v for k, v in r.items() if k != "example"})
    assert r["drop_top"] > 1.3 * r["drop_random"] > 0, r
    x, maps, pre = r["example"]
    assert isinstance(pre, Preprocess) and maps.shape == (len(x), 32, 32) and torch.isfinite(maps).all()


def test_an_experiment_directory_given_as_a_run_points_to_its_runs(tmp_path, capsys):
    (tmp_path / "exp" / "runs" / "near-scratch-0.1-seed0").mkdir(parents=True)
    (tmp_path / "exp" / "experiment.json").write_text('{"experiment": "transfer", "settings": {}}')
    line = one_line_error(capsys, "explain", "filters", str(tmp_path / "exp"))
    assert "is an experiment directory, not a run" in line and "runs/near-scratch-0.1-seed0" in line
    line = one_line_error(capsys, "train", "--resume", str(tmp_path / "exp"))
    assert "is an experiment directory, not a run" in line
    assert f"continue it with cnnlab experiment transfer --resume {tmp_path / 'exp'}" in line


def test_a_transfer_run_is_explained_with_its_own_classes(runs, capsys):
    from cnnlab.cli import main

    target = runs / "tr"
    assert main(["transfer", "--from", str(runs / "clf"), "--data", "digits@classes=5-9@labels=20", "--mode",
                 "feature-extraction", "--epochs", "1", "--run-dir", str(target), "--quiet"]) == 0
    code, out, err = run(capsys, "explain", "cam", str(target), str(runs / "digit0.png"), "--class", "7")
    assert code == 0 and "for class 7" in out, err
    assert "no class '2'" in one_line_error(capsys, "explain", "cam", str(target), str(runs / "digit0.png"),
                                            "--class", "2")                 # "2" names no class here: not a position
    assert "Where the network looks" in (target / "report.html").read_text()
