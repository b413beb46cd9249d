"""``cnnlab experiment depth --quick``: plain and residual networks of equal depth trained alike; the directory
holds every run, the table, the training-error curves and the report."""

import csv
import json

import pytest

from tests.conftest import one_line_error, run


def test_the_quick_depth_experiment_writes_its_directory(tmp_path, capsys):
    code, out, err = run(capsys, "experiment", "depth", "--quick", "--run-dir", tmp_path / "d")
    assert code == 0, err
    assert "plain20" in out and "resnet20" in out and "training error (%)" in out
    path = tmp_path / "d"
    rows = list(csv.DictReader(open(path / "results.csv")))
    assert [r["model"] for r in rows] == ["plain20", "resnet20"]
    assert rows[0]["params"] == rows[1]["params"] == "269434"   # option A shortcuts have no parameters
    for r in rows:
        assert 0 <= float(r["train_error"]) <= 1 and 0 <= float(r["test_error"]) <= 1
        assert (path / "runs" / f"{r['model']}-seed0" / "report.html").is_file()
    summary = json.loads((path / "summary.json").read_text())
    assert summary["experiment"] == "depth" and [s["residual"] for s in summary["summary"]] == [False, True]
    assert (path / "training_error.png").stat().st_size > 10_000
    assert "alt=\"training error\"" in (path / "report.html").read_text()
    # finished runs are read back, not trained again
    code, out, _ = run(capsys, "experiment", "depth", "--resume", path)
    assert code == 0 and "plain20" in out


def test_bad_depth_settings_are_one_line(tmp_path, capsys):
    assert "--models" in one_line_error(capsys, "experiment", "depth", "--models", "resnet18")
    assert "--resume continues" in one_line_error(capsys, "experiment", "depth", "--resume", tmp_path, "--quick")


def test_an_experiment_directory_in_use_is_refused_in_one_line(tmp_path, capsys):
    from cnnlab.train.rundir import lock_dir, unlock_dir

    path = tmp_path / "d"
    path.mkdir()
    (path / "experiment.json").write_text('{"experiment": "depth", "settings": {}}')
    held = lock_dir(path)  # as another process running or resuming it would hold it
    if held is None:
        pytest.skip("no flock on this platform")
    try:
        assert "experiment directory" in one_line_error(capsys, "experiment", "depth", "--resume", path) and \
            "is in use by another cnnlab process" in one_line_error(capsys, "experiment", "depth", "--resume", path)
    finally:
        unlock_dir(held)
