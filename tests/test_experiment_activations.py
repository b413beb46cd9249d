"""``cnnlab experiment activations --quick``: the same network with ReLU and with sigmoid units, trained alike;
the sigmoid network is the slower one and its gradient vanishes towards the input."""

import csv
import json

from tests.conftest import one_line_error, run


def test_the_quick_activations_experiment_shows_sigmoid_training_slower(tmp_path, capsys):
    code, out, err = run(capsys, "experiment", "activations", "--quick", "--run-dir", tmp_path / "a")
    assert code == 0, err
    assert "relu" in out and "sigmoid" in out and "epochs to target" in out
    assert "±" not in out  # one seed: no spread to show (it read ± 0.00)
    path = tmp_path / "a"
    rows = {r["act"]: r for r in csv.DictReader(open(path / "results.csv"))}
    assert list(rows) == ["relu", "sigmoid"]
    relu, sigmoid = rows["relu"], rows["sigmoid"]
    # the direction of the claim, where it is robust: ReLU reaches the target, sigmoid is still near chance
    assert relu["epochs_to_target"] != "" and sigmoid["epochs_to_target"] == ""
    assert float(relu["train_loss"]) < float(sigmoid["train_loss"])
    # sigmoid's gradient at the first layer is orders of magnitude below its last layer's, far more than ReLU's
    assert float(sigmoid["first_to_last_grad"]) < float(relu["first_to_last_grad"]) / 100
    norms = json.loads((path / "runs" / "sigmoid-seed0" / "gradient_norms.json").read_text())
    assert sorted(norms["epochs"]) == ["1", "2", "3"] and len(norms["layers"]) == 5    # C1, C3, C5, F6, output
    summary = json.loads((path / "summary.json").read_text())
    assert summary["experiment"] == "activations" and summary["target"] == 0.5
    assert [s["reached"] for s in summary["summary"]] == [1, 0]
    assert (path / "activations.png").stat().st_size > 10_000
    assert (path / "report.html").is_file() and (path / "runs" / "relu-seed0" / "report.html").is_file()
    html = (path / "report.html").read_text()
    assert ">None<" not in html and "as the command printed it (table.txt)" in html
    table = html[html.index("<table>"):html.index("</table>")]  # the terminal's words and rounding
    assert ">sigmoid<" in table and ">not reached<" in table and ">activation<" in table
    assert '<a href="../../report.html">the experiment it is part of (a)</a>' in (
        path / "runs" / "relu-seed0" / "report.html").read_text()
    code, out, _ = run(capsys, "experiment", "activations", "--resume", path)   # finished runs are read back
    assert code == 0 and "sigmoid" in out


def test_bad_activations_settings_are_one_line(tmp_path, capsys):
    assert "--acts" in one_line_error(capsys, "experiment", "activations", "--acts", "relu,swish2")
    assert "act_layer" in one_line_error(capsys, "experiment", "activations", "--model", "googlenet",
                                         "--run-dir", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_an_experiments_runs_compute_in_fp32_unless_asked_where_auto_would_time_each_run(tmp_path, capsys,
                                                                                         monkeypatch):
    """auto chooses per run by timing its step, so a step near the line goes either way from one run to the
    next, and so would the table: an experiment's runs are fp32 unless --precision says otherwise."""
    from cnnlab.train import precision

    monkeypatch.setattr(precision, "native_bf16", lambda: True)  # a CPU where auto would measure ...
    monkeypatch.setattr(precision, "MIN_STEP_SECONDS", 0.0)
    monkeypatch.setattr(precision, "BF16_GAIN", 0.0)  # ... and take bf16
    for asked, ran in ((), "fp32"), (("--precision", "auto"), "bf16"):
        path = tmp_path / ran
        code, _, err = run(capsys, "experiment", "activations", "--quick", "--acts", "relu", "--run-dir", path,
                           *asked)
        assert code == 0, err
        assert json.loads((path / "runs" / "relu-seed0" / "meta.json").read_text())["precision"] == ran
        assert json.loads((path / "experiment.json").read_text())["settings"]["precision"] == ("auto" if asked
                                                                                               else "fp32")
