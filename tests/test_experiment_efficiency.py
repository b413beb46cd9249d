"""``cnnlab experiment efficiency --quick``: the parameter and multiply-add savings of 1x1-reduced and depthwise
separable convolutions, and MobileNet v1 against its full-convolution form, as the papers state them."""

import csv
import json

import pytest
import torch

import cnnlab
from cnnlab.experiments import EFFICIENCY_QUICK
from tests.conftest import one_line_error, run


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    import dataclasses

    from cnnlab.experiments import run_efficiency_experiment

    path = tmp_path_factory.mktemp("eff") / "exp"
    return run_efficiency_experiment(dataclasses.replace(EFFICIENCY_QUICK, repeats=1), path, log=lambda *a: None)


def test_depthwise_separable_costs_one_over_c_plus_one_ninth(quick):
    c, r = EFFICIENCY_QUICK.channels, EFFICIENCY_QUICK.reduce
    layers = {row["name"]: row for row in quick.rows if row["group"].startswith("layer")}
    standard, reduced, separable = layers.values()
    # weights: 9C^2 (+ C conv bias? no: batch norm follows) against 9C + C^2, and C^2/r + 9C^2/r
    assert standard["params"] == 9 * c * c + 2 * c                       # + batch norm's scale and shift
    assert separable["params"] == 9 * c + c * c + 2 * (2 * c)
    assert reduced["params"] == c * c // r + 9 * c * c // r + 2 * (c // r) + 2 * c
    assert separable["macs_ratio"] == pytest.approx(1 / c + 1 / 9, rel=1e-9)
    assert 1 / separable["macs_ratio"] > 8                               # about 8-9x fewer multiply-adds
    assert reduced["macs_ratio"] == pytest.approx((1 + 9) / (9 * r), rel=1e-9)


def test_mobilenet_v1_against_full_convolutions_meets_the_papers_counts(quick):
    nets = [row for row in quick.rows if row["group"].startswith("MobileNet")]
    full, separable = nets
    assert (full["params"], separable["params"]) == (29_294_088, 4_231_976)   # the paper: 29.3M and 4.2M
    assert 8.4 < 1 / separable["macs_ratio"] < 8.7                     # at the quick preset's 64x64
    # and the paper's 4,866M and 569M multiply-adds at 224x224 (counted on the meta device: no memory, no compute)
    with torch.device("meta"):
        counts = [cnnlab.summary(cnnlab.create_model("mobilenet_v1", full_conv=f), (3, 224, 224)).total_macs
                  for f in (True, False)]
    assert counts[0] == pytest.approx(4_866e6, rel=0.001) and counts[1] == pytest.approx(569e6, rel=0.001)
    assert all(row["forward_ms"] > 0 and row["train_ms"] > 0 for row in quick.rows)


def test_the_experiment_directory_holds_its_results(quick):
    path = quick.path
    rows = list(csv.DictReader(open(path / "results.csv")))
    assert len(rows) == 5 and {"params", "macs", "forward_ms", "train_ms", "macs_ratio"} <= set(rows[0])
    summary = json.loads((path / "summary.json").read_text())
    assert summary["experiment"] == "efficiency" and summary["cpu"] and len(summary["summary"]) == 5
    assert (path / "efficiency.png").stat().st_size > 10_000 and (path / "table.txt").is_file()
    page = (path / "report.html").read_text()
    assert "experiment efficiency" in page and "depthwise separable (MobileNet)" in page and "data:image/png" in page
    # the table as printed, its text columns left-aligned; the CPU its times were measured on; no empty "Runs"
    assert '<td class="text">depthwise separable (MobileNet)</td>' in page and "<th>fwd+bwd ms</th>" in page
    assert f"<td>measured on</td><td>{summary['cpu']}, {summary['threads']} threads, cpu device</td>" in page
    assert "<h2>Runs</h2>" not in page


def test_a_report_whose_printed_table_is_gone_shows_every_value_of_the_summary(quick):
    from cnnlab.experiments import write_study_report_of

    (quick.path / "table.txt").rename(quick.path / "table.bak")
    try:
        page = write_study_report_of(quick.path).read_text()
    finally:
        (quick.path / "table.bak").rename(quick.path / "table.txt")
    assert "<th>forward_ms</th>" in page and "one row per group" in page


def test_the_command_line_runs_it_and_checks_its_options(tmp_path, capsys):
    code, out, err = run(capsys, "experiment", "efficiency", "--quick", "--repeats", "1", "--channels", "16",
                         "--run-dir", tmp_path / "e")
    assert code == 0 and "depthwise separable" in out and "on " in out.splitlines()[0], err
    assert "--channels" in one_line_error(capsys, "experiment", "efficiency", "--channels", "4")
    assert "--reduce" in one_line_error(capsys, "experiment", "efficiency", "--reduce", "1")
