"""`cnnlab transfer` and `cnnlab experiment transfer` on the command line."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from tests.conftest import one_line_error, run


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "base"
    assert main(["train", "--data", "digits@classes=0-4", "--epochs", "4", "--run-dir", str(path), "--quiet"]) == 0
    return path


def test_transfer_writes_a_run_that_evaluate_predict_and_resume_work_on(base, tmp_path, capsys):
    run_dir = tmp_path / "ft"
    code, out, _ = run(capsys, "transfer", "--from", base, "--data", "digits@classes=5-9@labels=20", "--mode",
                       "fine-tune", "--epochs", "2", "--head-epochs", "1", "--backbone-lr", "0.2", "--run-dir", run_dir)
    assert code == 0 and "test accuracy" in out and "transfer (fine-tune)" in out and "warm start" in out
    config = json.loads(json.dumps(__import__("yaml").safe_load((run_dir / "config.yaml").read_text())))
    assert config["run_kind"] == "transfer" and config["model"] == "lenet5" and config["mode"] == "fine-tune"
    assert config["backbone_lr"] == 0.2 and config["head_epochs"] == 1
    results = json.loads((run_dir / "results.json").read_text())
    assert results["transfer"]["source"] == str(base) and (run_dir / "report.html").is_file()

    code, out, _ = run(capsys, "evaluate", run_dir, "--format", "json")
    assert code == 0 and json.loads(out)["accuracy"] == pytest.approx(results["test"]["accuracy"])

    from cnnlab.data import load_dataset

    image = load_dataset("digits@classes=5-9").test.images[0, 0].numpy()
    Image.fromarray((image * 255).astype(np.uint8)).save(tmp_path / "digit.png")
    code, out, _ = run(capsys, "predict", run_dir, tmp_path / "digit.png", "--top-k", "2")
    assert code == 0 and "digit.png" in out

    code, out, _ = run(capsys, "transfer", "--resume", run_dir, "--epochs", "3", "--quiet")
    assert code == 0
    assert len(list(csv.DictReader(open(run_dir / "metrics.csv")))) == 3
    code, _, err = run(capsys, "transfer", "--resume", run_dir, "--epochs", "4", "--mode", "partial")
    assert code == 2 and "cannot change --mode" in err


def test_runs_of_relative_paths_are_continued_and_read_from_another_directory(base, tmp_path, capsys, monkeypatch):
    # config.yaml kept the paths as typed, so a run on folder:imgs, or a transfer --from runs/base, failed
    # when continued or evaluated from another working directory
    from cnnlab.data import load_dataset

    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    elsewhere.mkdir()
    for i, (image, label) in enumerate(zip(*_images(load_dataset("digits@classes=0-1")), strict=True)):
        (work / "imgs" / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(work / "imgs" / str(label) / f"{i}.png")
    monkeypatch.chdir(work)
    assert run(capsys, "train", "--data", "folder:imgs", "--epochs", "1", "--run-dir", "runs/f", "--quiet")[0] == 0
    code, _, err = run(capsys, "transfer", "--from", "runs/f", "--data", "folder:imgs", "--epochs", "1",
                       "--run-dir", "runs/t", "--quiet")
    assert code == 0, err
    config = __import__("yaml").safe_load((work / "runs" / "t" / "config.yaml").read_text())
    assert config["source"] == str(work.resolve() / "runs" / "f")
    assert config["data"] == f"folder:{work.resolve() / 'imgs'}"
    # the same relative --data again, from where the run started, is no change
    assert run(capsys, "train", "--resume", "runs/f", "--data", "folder:imgs", "--epochs", "2", "--quiet")[0] == 0
    monkeypatch.chdir(elsewhere)
    for argv in (("transfer", "--resume", work / "runs" / "t", "--epochs", "2", "--quiet"),
                 ("evaluate", work / "runs" / "f"), ("train", "--resume", work / "runs" / "f", "--epochs", "3",
                                                     "--quiet")):
        code, _, err = run(capsys, *map(str, argv))
        assert code == 0, (argv, err)


def test_a_transfer_at_another_image_size_than_its_source_says_so_and_how_to_match(tmp_path, capsys):
    source = tmp_path / "source"
    assert main(["train", "--model", "resnet20", "--image-size", "16", "--data", "digits@classes=0-4", "--epochs", "1",
                 "--run-dir", str(source), "--quiet"]) == 0
    common = ("transfer", "--from", source, "--data", "digits@classes=5-9@labels=5", "--epochs", "1")
    code, out, _ = run(capsys, *common, "--run-dir", tmp_path / "a")
    assert code == 0 and "the source saw 16x16 images, these are 8x8 (--image-size 16 shows them at its scale)" in out
    code, out, _ = run(capsys, *common, "--image-size", "16", "--run-dir", tmp_path / "b")
    assert code == 0 and "the source saw" not in out


def _images(data):
    return (data.train.images[:40, 0] * 255).round().byte().numpy(), data.train.labels[:40].numpy()


def test_incremental_prints_old_new_and_all_classes(base, tmp_path, capsys):
    code, out, _ = run(capsys, "transfer", "--from", base, "--data", "digits@classes=5-9", "--mode", "incremental",
                       "--epochs", "2", "--memory", "10", "--run-dir", tmp_path / "inc")
    assert code == 0
    for word in ("old classes", "new classes", "before", "rehearsal", "naive"):
        assert word in out


@pytest.mark.parametrize("argv, message", [
    (["--mode", "fine-tune", "--model", "resnet18"], "is a lenet5 but the model asked for is resnet18"),
    (["--mode", "incremental", "--data", "digits@classes=4-6"], "must differ from the base classes"),
    (["--mode", "incremental", "--data", "textures"], "'digits@classes=0-4' has 1x8x8, 'textures' 1x32x32; give new "
                                                      "data of 1x8x8 (e.g. textures:size=8, or --image-size 8 for "
                                                      "a folder)"),
    (["--mode", "incremental", "--data", "shapes:count=100"], "'shapes' 3x32x32; give new data of 1x8x8\n"),
    (["--mode", "feature-extraction", "--data", "digits@classes=5-9", "--bn", "sideways"],
     "argument --bn: must be one of frozen, train, got 'sideways'"),
])
def test_bad_transfers_exit_2_with_one_line(base, tmp_path, capsys, argv, message):
    code, _, err = run(capsys, "transfer", "--from", base, "--epochs", "1", "--run-dir", tmp_path / "x", *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_bad_sources_exit_2_with_one_line(tmp_path, capsys):
    (tmp_path / "weights.pth").write_bytes(b"\x00garbage")
    for source, message in ((tmp_path / "nowhere", "does not exist"), (tmp_path / "weights.pth", "not a checkpoint")):
        code, _, err = run(capsys, "transfer", "--from", source, "--model", "lenet5", "--data", "digits")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "transfer", "--data", "digits")
    assert code == 2 and "needs a source: --from" in err


def test_experiment_transfer_writes_table_csv_and_plot(base, tmp_path, capsys):
    out_dir = tmp_path / "exp"
    code, out, _ = run(capsys, "experiment", "transfer", "--from", base, "--target", "near=digits@classes=5-9",
                       "--target", "far=textures", "--budgets", "0.1,1.0", "--seeds", "0,1", "--methods",
                       "scratch,feature-extraction", "--epochs", "1", "--run-dir", out_dir)
    assert code == 0 and "test accuracy" in out and "feature-extraction" in out
    rows = list(csv.DictReader(open(out_dir / "results.csv")))
    assert len(rows) == 2 * 2 * 2 * 2 and {r["target"] for r in rows} == {"near", "far"}
    summary = json.loads((out_dir / "summary.json").read_text())["summary"]
    assert len(summary) == 8 and all(s["seeds"] == 2 for s in summary)
    small = next(s for s in summary if s["target"] == "near" and s["budget"] == 0.1)
    full = next(s for s in summary if s["target"] == "near" and s["budget"] == 1.0)
    assert small["labels_per_class"] < full["labels_per_class"]
    assert (out_dir / "accuracy_vs_labels.png").stat().st_size > 10_000 and (out_dir / "table.txt").is_file()
    code, _, err = run(capsys, "experiment", "transfer", "--budgets", "0,2", "--run-dir", tmp_path / "y")
    assert code == 2 and "budgets" in err


def test_experiment_transfer_quick_is_the_small_preset_and_options_given_still_apply(base, tmp_path, capsys):
    code, out, _ = run(capsys, "experiment", "transfer", "--quick", "--from", base, "--target",
                       "near=digits@classes=5-9", "--methods", "scratch", "--epochs", "1", "--run-dir", tmp_path / "q")
    assert code == 0 and "scratch" in out
    settings = json.loads((tmp_path / "q" / "experiment.json").read_text())["settings"]
    assert (settings["budgets"], settings["seeds"], settings["source_epochs"]) == ([0.1, 1.0], [0], 3)  # the preset
    assert (settings["epochs"], settings["methods"]) == (1, ["scratch"])  # what was given
    assert len(list(csv.DictReader(open(tmp_path / "q" / "results.csv")))) == 2
    assert "drop the other options" in one_line_error(capsys, "experiment", "transfer", "--resume", tmp_path / "q",
                                                      "--quick")


def test_experiment_without_a_name_says_which_exist(capsys):
    code, _, err = run(capsys, "experiment")
    assert code == 2 and "cnnlab experiment transfer" in err and len(err.strip().splitlines()) == 1


def test_options_the_mode_ignores_are_warned_about(base, tmp_path, capsys):
    code, _, err = run(capsys, "transfer", "--from", base, "--data", "digits@classes=5-9@labels=5", "--mode",
                       "fine-tune", "--freeze-stages", "1", "--memory", "5", "--epochs", "1", "--quiet",
                       "--run-dir", tmp_path / "w")
    assert code == 0
    assert "cnnlab: warning: --freeze-stages applies to --mode partial" in err and "--memory applies" in err


@pytest.mark.parametrize("argv, message", [
    (["--target", "x=digits@class=1"], "is not a selection"),
    (["--target", "digits@classes=5-9"], "is not NAME=SPEC"),
    (["--from", "nowhere"], "does not exist"),
    (["--target", "far=photos"], "--target far=photos: the experiment trains classifiers, and 'photos' has no labels"),
    (["--source", "digits@classes=3"], "--source digits@classes=3: the experiment trains classifiers"),
])
def test_experiment_input_is_checked_before_any_training(tmp_path, capsys, argv, message):
    code, out, err = run(capsys, "experiment", "transfer", "--run-dir", tmp_path / "e", *argv)
    assert code == 2 and message in err and "model A" not in out and not (tmp_path / "e").exists()


def test_an_interrupted_experiment_continues_where_it_stopped(base, tmp_path, capsys, monkeypatch):
    import cnnlab.experiments._study as study

    argv = ["experiment", "transfer", "--from", base, "--target", "near=digits@classes=5-9", "--budgets", "0.1,1.0",
            "--seeds", "0", "--methods", "scratch,feature-extraction", "--epochs", "1", "--run-dir", tmp_path / "e"]
    original, calls = study.fit, []

    def interrupted_in_the_third_run(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the third run trains
        return original(*args, **kwargs)

    monkeypatch.setattr(study, "fit", interrupted_in_the_third_run)
    code, _, err = run(capsys, *argv)
    assert code == 130 and f"continue with: cnnlab experiment transfer --resume {tmp_path / 'e'}" in err
    done = {p.parent.name: p.stat().st_mtime_ns for p in (tmp_path / "e" / "runs").glob("*/results.json")}
    assert len(done) == 2
    monkeypatch.setattr(study, "fit", original)
    code, _, err = run(capsys, *argv)
    assert code == 2 and "continue it with --resume" in err  # a rerun into the directory is pointed to --resume
    code, out, _ = run(capsys, "experiment", "transfer", "--resume", tmp_path / "e")
    assert code == 0 and len(list(csv.DictReader(open(tmp_path / "e" / "results.csv")))) == 4
    for name, mtime in done.items():  # the finished runs were read back, not trained again
        assert (tmp_path / "e" / "runs" / name / "results.json").stat().st_mtime_ns == mtime
