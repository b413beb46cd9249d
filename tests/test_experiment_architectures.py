"""``cnnlab experiment architectures --quick``: one network per family trained alike, with the parameters and
multiply-adds of the models themselves, and torchvision's published ImageNet figures read offline."""

import csv
import json
import shutil
import socket

import pytest
import torch

import cnnlab
from cnnlab.experiments import ARCHITECTURES_QUICK
from cnnlab.experiments.architectures import FAMILY_MODELS, imagenet_reference
from cnnlab.models import list_models, model_meta
from tests.conftest import one_line_error, run


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    from cnnlab.cli import main

    path = tmp_path_factory.mktemp("arch") / "exp"
    assert main(["experiment", "architectures", "--quick", "--run-dir", str(path)]) == 0
    return path


def _rows(path) -> list[dict]:
    return list(csv.DictReader(open(path / "results.csv")))


def test_the_quick_experiment_writes_its_directory(quick):
    for name in ("experiment.json", "results.csv", "summary.json", "table.txt", "imagenet_reference.csv"):
        assert (quick / name).is_file(), name
    assert (quick / "accuracy_vs_macs.png").stat().st_size > 10_000
    assert (quick / "imagenet_chart.png").stat().st_size > 10_000
    for model in ARCHITECTURES_QUICK.models:
        assert (quick / "runs" / f"{model}-seed0" / "report.html").is_file()
    summary = json.loads((quick / "summary.json").read_text())
    assert summary["experiment"] == "architectures"
    assert [s["model"] for s in summary["summary"]] == ARCHITECTURES_QUICK.models
    page = (quick / "report.html").read_text()
    assert "experiment architectures" in page and page.count("data:image/png") >= 2 and "mobilenet_v2" in page


def test_each_row_counts_what_the_model_has(quick):
    rows = _rows(quick)
    assert [(r["model"], int(r["seed"])) for r in rows] == \
        [(m, s) for m in ARCHITECTURES_QUICK.models for s in ARCHITECTURES_QUICK.seeds]
    side = ARCHITECTURES_QUICK.image_size
    for r in rows:
        model = cnnlab.create_model(r["model"], num_classes=10, in_chans=1, small_input=True).eval()
        assert int(r["params"]) == sum(p.numel() for p in model.parameters())
        # LeNet-5 takes only its fixed 28x28; every other network the experiment's side
        assert r["input"] == ("1x28x28" if r["model"] == "lenet5" else f"1x{side}x{side}")
        shape = tuple(int(n) for n in r["input"].split("x"))
        assert int(r["macs"]) == cnnlab.summary(model, shape).total_macs
        assert int(r["epochs"]) == ARCHITECTURES_QUICK.epochs and float(r["epoch_seconds"]) > 0
        assert 0 <= float(r["test_accuracy"]) <= 1
    macs = {r["model"]: int(r["macs"]) for r in rows}
    assert macs["lenet5"] < macs["resnet20"] < macs["mobilenet_v2"]
    # ResNet-20 learns in two epochs on a quarter of digits (43% in our runs; chance is 10%)
    assert float(next(r for r in rows if r["model"] == "resnet20")["test_accuracy"]) > 0.2


def test_the_imagenet_reference_is_torchvision_s_published_figures(quick, monkeypatch):
    rows = list(csv.DictReader(open(quick / "imagenet_reference.csv")))
    assert len(rows) > 50 and all(0 < float(r["top1"]) < 100 and int(r["params"]) > 0 for r in rows)
    resnet18 = next(r for r in rows if r["architecture"] == "resnet18" and r["weights"] == "IMAGENET1K_V1")
    assert (float(resnet18["top1"]), int(resnet18["params"]), resnet18["cnnlab_model"]) == \
        (69.758, 11_689_512, "resnet18")
    zoo = {model_meta(n).torchvision for n in list_models()} - {None}
    assert {r["architecture"] for r in rows if r["cnnlab_model"]} == zoo
    # read from the installed package: with every connection refused, the same figures come back
    def refuse(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    assert len(imagenet_reference()) == len(rows)


def test_torchvision_s_gflops_are_multiply_adds_as_cnnlab_counts_them():
    """So that the two charts' axes measure the same thing: at the input torchvision's weights take (224x224 for
    most, 288x288 for EfficientNet-B2's), every zoo model with a torchvision equivalent has the multiply-adds
    torchvision publishes (to its three decimals)."""
    import torchvision

    published = {r["architecture"]: r["gmacs"] for r in imagenet_reference() if r["weights"] == "IMAGENET1K_V1"}
    checked = 0
    for name in list_models():
        tv = model_meta(name).torchvision
        if tv is None:
            continue
        side = torchvision.models.get_model_weights(tv).IMAGENET1K_V1.transforms().crop_size[0]
        with torch.device("meta"):
            macs = cnnlab.summary(cnnlab.create_model(name).eval(), (3, side, side)).total_macs
        assert macs / 1e9 == pytest.approx(published[tv], abs=6e-4), name
        checked += 1
    assert checked >= 28


def test_the_default_has_one_network_of_every_family():
    assert {model_meta(m).family for m in FAMILY_MODELS} == {model_meta(n).family for n in list_models()}


def test_resume_trains_only_the_missing_runs(quick, tmp_path, capsys):
    path = tmp_path / "exp"
    shutil.copytree(quick, path)
    shutil.rmtree(path / "runs" / "lenet5-seed0")   # as if stopped before its first run
    (path / "summary.json").unlink()
    kept = {p: p.stat().st_mtime_ns for p in (path / "runs").glob("*/results.json")}
    code, out, err = run(capsys, "experiment", "architectures", "--resume", path)
    assert code == 0, err
    assert "lenet5" in out and (path / "runs" / "lenet5-seed0" / "results.json").is_file()
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())   # the finished runs were only read
    assert [r["model"] for r in _rows(path)] == ARCHITECTURES_QUICK.models
    assert "--resume continues" in one_line_error(capsys, "experiment", "architectures", "--resume", path,
                                                  "--quick")


def test_bad_architectures_settings_are_one_line(tmp_path, capsys):
    assert "--models" in one_line_error(capsys, "experiment", "architectures", "--models", "resnet999")
    error = one_line_error(capsys, "experiment", "architectures", "--models", "alexnet", "--image-size", "8",
                           "--run-dir", tmp_path / "x")
    assert "--image-size" in error and "alexnet" in error and not (tmp_path / "x").exists()
    assert "nosuch" in one_line_error(capsys, "experiment", "architectures", "--data", "nosuch", "--run-dir",
                                      tmp_path / "y")
