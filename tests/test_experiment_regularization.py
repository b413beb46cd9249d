"""``cnnlab experiment regularization --quick``: LeNet-5 on 20 labels per class with no regulariser and with
one at a time; the directory holds every run, the table, the plot and the report."""

import csv
import json

from tests.conftest import one_line_error, run


def test_the_quick_regularization_experiment_measures_gap_and_weights(tmp_path, capsys):
    code, out, err = run(capsys, "experiment", "regularization", "--quick", "--run-dir", tmp_path / "r")
    assert code == 0, err
    assert "gap (pts)" in out and "weights near 0 (%)" in out
    path = tmp_path / "r"
    rows = {r["variant"]: r for r in csv.DictReader(open(path / "results.csv"))}
    assert list(rows) == ["none", "l1", "l2", "batchnorm", "early_stopping"]
    for r in rows.values():
        assert abs(float(r["gap"]) - (float(r["train_accuracy"]) - float(r["val_accuracy"]))) < 1e-9
        assert 0 <= float(r["near_zero"]) <= 1 and float(r["weight_norm"]) > 0
    # the robust directions: both penalties shrink the weights, and L1 leaves more of them near zero than L2
    assert float(rows["l2"]["weight_norm"]) < float(rows["none"]["weight_norm"])
    assert float(rows["l1"]["weight_norm"]) < float(rows["none"]["weight_norm"])
    assert float(rows["l1"]["near_zero"]) > float(rows["l2"]["near_zero"])
    runs = path / "runs"
    config = (runs / "batchnorm-seed0" / "config.yaml").read_text()
    assert "batch_norm: true" in config and "label_smoothing: 0.0" in config
    stopped = json.loads((runs / "early_stopping-seed0" / "results.json").read_text())
    assert stopped["checkpoint"] == "best" and int(rows["early_stopping"]["epochs"]) == stopped["epochs"] <= 8
    assert "early_stopping: 2" in (runs / "early_stopping-seed0" / "config.yaml").read_text()
    summary = json.loads((path / "summary.json").read_text())
    assert [s["variant"] for s in summary["summary"]] == list(rows)
    assert (path / "regularization.png").stat().st_size > 10_000 and (path / "report.html").is_file()


def test_bad_regularization_settings_are_one_line(tmp_path, capsys):
    assert "--variants" in one_line_error(capsys, "experiment", "regularization", "--variants", "none,dropconnect")
    assert "--dropout" in one_line_error(capsys, "experiment", "regularization", "--dropout", "1.5")
    assert "@labels=0" in one_line_error(capsys, "experiment", "regularization", "--data", "digits@labels=0",
                                         "--run-dir", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_an_experiment_keeps_its_paths_absolute_so_it_continues_from_anywhere(tmp_path, monkeypatch):
    # experiment.json kept folder:imgs as typed: --resume from another directory failed at the next run
    from cnnlab.experiments._study import Study
    from cnnlab.experiments.regularization import RegularizationSettings

    (tmp_path / "imgs").mkdir()
    monkeypatch.chdir(tmp_path)
    with Study.begin("regularization", RegularizationSettings, RegularizationSettings(data="folder:imgs@labels=5"),
                     run_dir="exp") as study:
        assert study.settings.data == f"folder:{tmp_path.resolve() / 'imgs'}@labels=5"
    saved = json.loads((tmp_path / "exp" / "experiment.json").read_text())
    assert saved["settings"]["data"] == f"folder:{tmp_path.resolve() / 'imgs'}@labels=5"
