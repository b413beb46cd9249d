"""Segmentation: the encoder-decoder, IoU/Dice, training through the engine, the run directory and the CLI."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.classify import ClassifierConfig
from cnnlab.cli import main
from cnnlab.data.loader import Augment
from cnnlab.data.shapes import generate_shapes
from cnnlab.errors import CnnlabError
from cnnlab.run import Run, fit
from cnnlab.segment import SegmentationTask, SegmentConfig, SegNet, segmentation_metrics
from cnnlab.segment.recipe import MaskLoader
from cnnlab.segment.task import confusion
from tests.conftest import one_line_error, run

# Measured over seeds 0-4 (Intel Xeon, 2 cores): this fit reaches a test mean IoU of 0.30 to 0.60 and a pixel
# accuracy 8 to 13 points above the background's share (about 84%); predicting background everywhere scores a mean
# IoU of 0. (At 5e-3 and width 8, the mean IoU ranged from 0.09 to 0.42: too close to chance for a test.)
FIT = dict(data="shapes:size=32,count=400", epochs=8, batch_size=16, lr=2e-3, augment=False, label_smoothing=0.0,
           quiet=True, depth=3, width=16)
MIN_MEAN_IOU = 0.2






@pytest.mark.parametrize("skips", [True, False])
@pytest.mark.parametrize("in_chans,depth,size", [(1, 1, (6, 10)), (3, 2, (16, 16)), (4, 3, (8, 24))])
def test_model_maps_every_pixel_to_class_logits(skips, in_chans, depth, size):
    model = SegNet(in_chans, num_classes=5, depth=depth, width=4, skips=skips)
    x = torch.rand(2, in_chans, *size)
    out = model(x)
    assert out.shape == (2, 5, *size)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_skips_widen_the_decoder_and_sizes_must_halve():
    with_skips, without = SegNet(3, 5, 3, 8, skips=True), SegNet(3, 5, 3, 8, skips=False)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(with_skips) > count(without)
    with pytest.raises(CnnlabError, match="divisible by 8; got 20x32: side 20 \\(try 16 or 24\\)"):
        with_skips(torch.rand(1, 3, 20, 32))


def test_a_training_step_lowers_the_loss():
    images, _, masks = generate_shapes(32, 16, seed=1)
    model, task = SegNet(3, 5, depth=2, width=8), SegmentationTask(["background", "a", "b", "c", "d"])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        loss = task.loss(model(images), masks)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.8, losses


def test_iou_and_dice_on_hand_made_masks():
    classes = ["background", "circle", "square", "absent"]
    truth = torch.tensor([[0, 0, 1, 1],
                          [0, 0, 1, 1],
                          [2, 2, 0, 0],
                          [2, 2, 0, 0]])
    pred = torch.tensor([[0, 0, 1, 1],
                         [0, 1, 1, 1],   # one background pixel called circle
                         [2, 0, 0, 0],   # one square pixel called background
                         [2, 2, 0, 0]])
    m = segmentation_metrics(confusion(pred[None], truth[None], 4), classes)
    # circle: TP 4, FP 1, FN 0; square: TP 3, FP 0, FN 1; background: TP 7, FP 1, FN 1
    assert m["iou"]["circle"] == pytest.approx(4 / 5) and m["dice"]["circle"] == pytest.approx(8 / 9)
    assert m["iou"]["square"] == pytest.approx(3 / 4) and m["dice"]["square"] == pytest.approx(6 / 7)
    assert m["iou"]["background"] == pytest.approx(7 / 9) and m["dice"]["background"] == pytest.approx(14 / 16)
    assert m["iou"]["absent"] is None and m["dice"]["absent"] is None  # in neither: no score, not in the means
    assert m["mean_iou"] == pytest.approx((4 / 5 + 3 / 4) / 2)       # over the foreground classes only
    assert m["mean_dice"] == pytest.approx((8 / 9 + 6 / 7) / 2)
    assert m["accuracy"] == pytest.approx(14 / 16)
    # a class predicted but not true (or true but missed) scores 0 and counts
    wrong = segmentation_metrics(confusion(torch.full((1, 4, 4), 3), truth[None], 4), classes)
    assert wrong["iou"]["absent"] == 0 and wrong["mean_iou"] == 0 and wrong["iou"]["background"] == 0


def test_augmentation_moves_each_mask_with_its_image():
    masks = generate_shapes(16, 16, seed=2)[2]
    images = masks[:, None].float().repeat(1, 3, 1, 1)  # the image is its mask: any misalignment shows
    loader = MaskLoader(images, masks, 8, shuffle=True, augment=Augment(crop_pad=3, hflip=True, vflip=True))
    moved = 0
    for x, m in loader:
        assert torch.equal(x[:, 0].long(), m) and torch.equal(x[:, 2].long(), m)
        moved += 1
    assert moved == 2


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("seg") / "run"
    result = fit(SegmentConfig(run_dir=str(path), **FIT))
    return path, result


def test_fit_segments_shapes_far_better_than_all_background(trained):
    path, result = trained
    t = result.test
    print("measured mean IoU", t["mean_iou"], "pixel accuracy", t["accuracy"])
    assert t["mean_iou"] > MIN_MEAN_IOU
    background_share = sum(t["confusion_matrix"][0]) / sum(map(sum, t["confusion_matrix"]))
    assert t["accuracy"] > background_share + 0.05
    saved = json.loads((path / "results.json").read_text())
    assert saved["classes"] == ["background", "circle", "square", "triangle", "cross"]
    assert set(saved["test"]["iou"]) == set(saved["classes"]) and saved["test"]["mean_dice"] > 0
    assert saved["segment"] == {"in_chans": 3, "num_classes": 5, "depth": 3, "width": 16, "skips": True}
    header = (path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "val_miou", "val_dice"} <= set(header)
    for f in ("plots/overlays.png", "plots/learning_curves.svg", "plots/confusion_matrix.svg", "report.html",
              "checkpoints/state.pt", "config.yaml"):
        assert (path / f).is_file(), f
    saved = SegmentConfig.load(path / "config.yaml")
    assert (saved.depth, saved.width, saved.skips, saved.run_kind) == (3, 16, True, "segmenter")


def test_evaluate_reproduces_results_json(trained, capsys):
    path, _ = trained
    saved = json.loads((path / "results.json").read_text())["test"]
    code, out, _ = run(capsys, "segment", "evaluate", path, "--format", "json")
    got = json.loads(out)
    assert code == 0 and got["count"] == saved["count"]
    assert got["mean_iou"] == pytest.approx(saved["mean_iou"], abs=1e-6)
    assert got["accuracy"] == pytest.approx(saved["accuracy"], abs=1e-6)
    for c, v in saved["iou"].items():
        assert got["iou"][c] == pytest.approx(v, abs=1e-6)
    code, out, _ = run(capsys, "segment", "evaluate", path)
    assert code == 0 and "mean (foreground)" in out and "triangle" in out and "pixel accuracy" in out
    back = Run.open(path, holds="segmenter")
    assert isinstance(back.model, SegNet) and back.meta["kind"] == "segmenter"
    assert back.evaluate()["mean_iou"] == pytest.approx(saved["mean_iou"], abs=1e-6)


def test_evaluating_on_a_dataset_too_small_for_the_runs_splits_points_to_split_all(trained, capsys):
    path, _ = trained
    code, _, err = run(capsys, "segment", "evaluate", path, "--data", "shapes:size=32,count=8")
    assert code == 2 and err.startswith("cnnlab: error: shapes: 8 image(s) leave the validation split empty")
    assert err.rstrip().endswith("or evaluate all its images (--split all)") and len(err.strip().splitlines()) == 1
    code, out, _ = run(capsys, "segment", "evaluate", path, "--data", "shapes:size=32,count=8", "--split", "all",
                       "--format", "json")
    assert code == 0 and json.loads(out)["count"] == 8


def test_predict_writes_overlays_and_pixel_shares(trained, tmp_path, capsys):
    path, _ = trained
    images, _, masks = generate_shapes(2, 40, seed=7)  # another size than the run's: resized there and back
    files = []
    for i, im in enumerate(images):
        files.append(tmp_path / f"img{i}.png")
        Image.fromarray((im.permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(files[-1])
    code, out, _ = run(capsys, "segment", "predict", path, *files, "--out", tmp_path / "o", "--format", "json")
    assert code == 0
    results = json.loads(out)
    for r, f in zip(results, files, strict=True):
        assert sum(r["shares"].values()) == pytest.approx(1.0) and r["shares"]["background"] > 0.3
        overlay = Image.open(r["overlay"])
        assert overlay.size == Image.open(f).size and overlay.mode == "RGB"
    code, out, _ = run(capsys, "segment", "predict", path, files[0], "--out", tmp_path / "o2")
    assert code == 0 and "background" in out and (tmp_path / "o2" / "img0_overlay.png").is_file()


def test_cli_trains_resumes_and_refuses_changes(tmp_path, capsys):
    argv = ["segment", "train", "--data", "shapes:size=16,count=60", "--depth", "2", "--width", "4", "--epochs", "1",
            "--run-dir", tmp_path / "r", "--quiet"]
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "test mean IoU" in out and "IoU triangle" in out
    code, out, _ = run(capsys, "segment", "train", "--resume", tmp_path / "r", "--epochs", "2", "--quiet")
    assert code == 0 and len((tmp_path / "r" / "metrics.csv").read_text().splitlines()) == 3
    err = one_line_error(capsys, "segment", "train", "--resume", tmp_path / "r", "--epochs", "3", "--no-skips")
    assert "cannot change --skips" in err
    code, out, _ = run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "3", "--quiet")  # any kind's run
    assert code == 0 and len((tmp_path / "r" / "metrics.csv").read_text().splitlines()) == 4 and "mean IoU" in out
    err = one_line_error(capsys, "train", "--resume", tmp_path / "r", "--epochs", "4", "--model", "resnet18")
    assert "is a run of kind segmenter, which has no --model; continue it with cnnlab segment train" in err


def _fake_run(path, kind: str):
    from cnnlab.train.checkpoint import save_weights

    meta = {"kind": kind, "model": "lenet5", "model_kwargs": {"in_chans": 1, "num_classes": 10}}
    save_weights(path / "checkpoints" / "best.safetensors", torch.nn.Linear(2, 2), meta)
    return path / "checkpoints" / "best.safetensors"


@pytest.mark.parametrize("argv,message", [
    (["segment", "train", "--data", "digits"], "has no per-pixel masks"),
    (["segment", "train", "--data", "shapes:size=20,count=40", "--depth", "3"], "divisible by 8"),
    (["segment", "train", "--data", "shapes:size=16,count=40", "--image-size", "12", "--depth", "3"],
     "--image-size 12x12: use --image-size 8 or 16"),
    (["segment", "train", "--depth", "9"], "argument --depth: must be an integer from 1 to 6, got 9"),
    (["segment"], "cnnlab segment train"),
])
def test_bad_training_input_is_one_line(tmp_path, capsys, argv, message):
    err = one_line_error(capsys, *argv, "--epochs", "1", "--run-dir", tmp_path / "bad") if argv[1:] else \
        one_line_error(capsys, *argv)
    assert message in err
    assert not (tmp_path / "bad").exists()


def test_other_runs_and_bad_files_are_one_line(trained, tmp_path, capsys):
    path, _ = trained
    for kind, shown in (("classifier", "a classifier"), ("autoencoder", "an autoencoder")):
        run_dir = _fake_run(tmp_path / kind, kind)
        err = one_line_error(capsys, "segment", "predict", run_dir, tmp_path / "x.png")
        assert f"holds {shown}, not a segmentation network" in err
        one_line_error(capsys, "segment", "evaluate", run_dir)
    assert "does not exist" in one_line_error(capsys, "segment", "predict", path, tmp_path / "missing.png")
    assert "is a directory" in one_line_error(capsys, "segment", "predict", path, tmp_path)
    (tmp_path / "junk.png").write_bytes(b"not an image")
    assert "cannot read image" in one_line_error(capsys, "segment", "predict", path, tmp_path / "junk.png")
    assert "no per-pixel masks" in one_line_error(capsys, "segment", "evaluate", path, "--data", "digits")
    assert "the run segments background, circle" in one_line_error(
        capsys, "segment", "evaluate", path, "--data", "shapes:size=32,count=40,classes=circle+square")
    assert "not a classifier" in one_line_error(capsys, "predict", path, tmp_path / "x.png")
    assert "is a run of kind classifier, which has no --skips" in one_line_error(
        capsys, "segment", "train", "--resume", _fake_classifier_config(tmp_path), "--no-skips")


def _fake_classifier_config(tmp_path):
    d = tmp_path / "cls"
    d.mkdir()
    ClassifierConfig().save(d / "config.yaml")
    return d


def test_segment_train_has_no_classifier_model_options(capsys):

    code = main(["segment", "train", "--model", "resnet18"])
    err = capsys.readouterr().err
    assert code == 2 and "unrecognized arguments: --model" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["--batch-size", "1"], ["--data", "shapes:size=8,count=40@classes=0@labels=1"]])
def test_a_one_by_one_bottleneck_refuses_batches_of_one_image(tmp_path, capsys, argv):
    """Batch norm at a 1x1 map of one image has one value per channel: a traceback (ValueError) at the first step."""
    from tests.conftest import one_line_error

    err = one_line_error(capsys, "segment", "train", "--depth", "3", "--width", "2", "--epochs", "1", "--data",
                         "shapes:size=8,count=40", *argv, "--run-dir", tmp_path / "r")
    assert "brings 8x8 images to a 1x1 bottleneck, whose batch norm needs two images or more" in err
