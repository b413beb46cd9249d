"""``cnnlab experiment init --quick``: a plain 20-layer ReLU network without batch norm, initialised with small
normal weights and with He's scheme; the signal per layer at initialisation shows which one vanishes."""

import csv
import json

from tests.conftest import one_line_error, run


def test_the_quick_init_experiment_shows_the_signal_vanish_with_small_weights(tmp_path, capsys):
    code, out, err = run(capsys, "experiment", "init", "--quick", "--run-dir", tmp_path / "i")
    assert code == 0, err
    assert "normal:std=0.01" in out and "kaiming_normal:mode=fan_in" in out and "act std last" in out
    path = tmp_path / "i"
    rows = {r["scheme"]: r for r in csv.DictReader(open(path / "results.csv"))}
    small, he = rows["normal:std=0.01"], rows["kaiming_normal:mode=fan_in"]
    # std 0.01 scales the signal by about sqrt(fan_in / 2) * 0.01 < 0.1 per layer: 19 layers leave nothing
    assert float(small["act_std_last"]) < 1e-12 * float(small["act_std_first"])
    # He's scheme loses far less over the same 19 layers: less than a factor of 100
    assert 1e-2 < float(he["act_std_last"]) / float(he["act_std_first"]) < 10
    assert float(he["grad_first"]) > 1e6 * float(small["grad_first"])
    signals = json.loads((path / "signals" / "plain20-none-normal-std0.01-seed0.json").read_text())
    assert len(signals["activations"]) == 19 and len(signals["gradients"]) == 20   # 19 convolutions and the fc
    assert signals["activations"][0]["name"] == "stem.act" and signals["gradients"][-1]["name"] == "head.fc"
    config = (path / "runs" / "plain20-none-kaiming_normal-modefan_in-seed0" / "config.yaml").read_text()
    assert "norm_layer: none" in config and "init: kaiming_normal:mode=fan_in" in config
    assert (path / "signal_per_layer.png").stat().st_size > 10_000 and (path / "report.html").is_file()

    # only a run's start measures its signal: a damaged or deleted measurement is one line naming the way on
    measured = path / "signals" / "plain20-none-normal-std0.01-seed0.json"
    measured.write_text("[1, 2")
    err = one_line_error(capsys, "experiment", "init", "--resume", path)
    assert f"'{measured}' is not valid JSON" in err and "plain20-none-normal-std0.01-seed0' and continue" in err
    measured.unlink()
    assert f"'{measured}' is missing" in one_line_error(capsys, "experiment", "init", "--resume", path)


def test_bad_init_settings_are_one_line(tmp_path, capsys):
    assert "--models" in one_line_error(capsys, "experiment", "init", "--models", "resnet20")
    assert "init" in one_line_error(capsys, "experiment", "init", "--schemes", "glorious", "--run-dir", tmp_path / "x")
    assert not (tmp_path / "x").exists()
