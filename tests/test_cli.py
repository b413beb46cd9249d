import json
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.cli import build_parser, main
from tests.conftest import run


def test_shape_prints_the_output_size_and_the_arithmetic(capsys):
    code, out, _ = run(capsys, "shape", "--input", "224x224x3", "--kernel", "3", "--stride", "1", "--padding", "0",
                       "--dilation", "1", "--filters", "32")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "222x222x32"
    assert "floor((224 + 0 + 0 - 1*(3-1) - 1) / 1) + 1 = 222" in lines[1]
    assert "parameters 896" in out


def test_shape_padding_forms_and_pooling(capsys):
    assert run(capsys, "shape", "--input", "10x10x1", "--kernel", "3", "--padding", "1", "0")[1].startswith("10x8x1")
    out = run(capsys, "shape", "--input", "10x10x1", "--kernel", "3", "--padding", "0", "2", "1", "0")[1]
    assert out.startswith("10x9x1")
    out = run(capsys, "shape", "--input", "112x112x64", "--pool", "max", "--kernel", "3", "--stride", "2",
              "--padding", "1")[1]
    assert out.startswith("56x56x64")
    assert run(capsys, "shape", "--input", "7x7x8", "--pool", "avg", "--kernel", "2", "--ceil-mode")[1].startswith(
        "4x4x8")



def test_shape_given_channels_first_computes_it_as_written_and_says_how_it_read_it(capsys):
    code, out, err = run(capsys, "shape", "--input", "3x224x224", "--kernel", "3")
    assert code == 0 and out.startswith("1x222x224")  # valid arithmetic: a 3-pixel-high map of 224 channels
    assert err == ("cnnlab: warning: --input takes HxWxC: 3x224x224 is 3 pixels high with 224 channels; a 224x224 "
                   "image with 3 channels is 224x224x3\n")
    for size in ("4x4x512", "224x224x3", "1x1x1"):  # a late feature map, an image, a point: nothing to say
        assert run(capsys, "shape", "--input", size, "--kernel", "1")[2] == ""


@pytest.mark.parametrize("argv, message", [
    (["shape", "--input", "5x5x3", "--kernel", "7"], "kernel 7 is larger than the padded height 5"),
    (["shape", "--input", "8x8x3", "--stride", "0"], "stride must be at least 1"),
    (["shape", "--input", "8x8x3", "--padding", "1", "2", "3"], "1, 2 (vertical, horizontal) or 4"),
    (["shape", "--input", "8x8x3", "--ceil-mode"], "--ceil-mode applies to pooling only"),
    (["summary", "resnt18"], "unknown model 'resnt18'; did you mean 'resnet18'"),
    (["summary", "resnet18", "--input-size", "3x16x16"], "at least 32x32"),
    (["summary", "resnet18", "--input-size", "16x16"], "CxHxW"),
    (["summary", "resnet18", "--input-size", "224x224x3"], "channels first: 3x224x224, not '224x224x3'"),
    # these named the builder's in_chans and num_classes, not the flags given
    (["summary", "lenet5", "--input-size", "0x0x0"], "--input-size takes CxHxW of positive numbers"),
    (["summary", "lenet5", "--input-size=-1x32x32"], "--input-size takes CxHxW of positive numbers"),
    (["summary", "lenet5", "--num-classes", "-5"], "--num-classes must be at least 0 (0: no classifier), got -5"),
    (["summary", "alexnet", "--input-size", "3x32x32"], "resize the images or add --small-input"),
    (["shape", "--input", "8x8x3", "--kernel", "3x"], "kernel '3x' is not a size like 3 or 3x5"),
    (["shape", "--input", "8x8x3", "--kernel", "3", "--padding", "a"], "padding 'a' is not a size like 1 or 0,1,1,0"),
    (["models", "nothing*"], "no model matches"),
])
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_usage_errors_exit_2_with_one_line(capsys):
    assert main(["shape", "--kernel", "3"]) == 2  # --input is required
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--input" in err


def test_models_lists_every_architecture_with_size_and_paper(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    assert "resnet18" in out and "11.69M" in out and "He et al. 2016" in out and "3x63x63" in out
    records = json.loads(run(capsys, "models", "--format", "json")[1])
    by_name = {r["name"]: r for r in records}
    word = lambda w: [r["name"] for r in json.loads(run(capsys, "models", w, "--format", "json")[1])]  # noqa: E731
    assert word("lenet") == ["lenet5"]  # a plain word begins a name or a part of it, not googlenet or mobilenet
    resnets = word("ResNet")
    assert "wide_resnet50_2" in resnets and "resnet18" in resnets and "resnext50_32x4d" not in resnets
    assert by_name["googlenet"]["params"] == 6_624_904  # inference parameters, no auxiliary heads
    assert by_name["vgg16"]["macs"] == 15_470_264_320
    # the memory layout a CPU run takes unless told: the families measured faster channels-last
    contiguous = {"alexnet", "zfnet", "fractalnet20", "pyramidnet110_a48", "resnet18", "resnet34",
                  "wide_resnet50_2", "wide_resnet101_2", "wrn16_8", "wrn28_10",
                  *(f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn"))}
    assert {n for n, r in by_name.items() if not r["channels_last"]} == contiguous
    assert {"lenet5", "mobilenet_v2", "efficientnet_b0", "resnet20", "plain56", "resnet50", "resnext50_32x4d",
            "densenet121", "googlenet", "inception_v3", "xception", "attention56"} <= set(by_name) - contiguous
    assert "ch-last: trained channels-last on a CPU unless told" in out
    line = lambda name: next(r.split() for r in out.splitlines() if r.startswith(name + " "))  # noqa: E731
    assert line("googlenet")[5:7] == ["yes", "yes"] and line("vgg16")[5:7] == ["yes", "-"]  # tv weights, ch-last
    small = json.loads(run(capsys, "models", "resnet*", "--small-input", "--format", "json")[1])
    cifar = {"resnet20", "resnet32", "resnet44", "resnet56", "resnet110"}   # 32x32 nets: two stride-2 stages
    assert all(r["min_input_size"] == ([3, 4, 4] if r["name"] in cifar else [3, 8, 8]) for r in small)
    assert {r["name"] for r in small} >= cifar


def test_summary_table_json_and_csv(capsys):
    code, out, _ = run(capsys, "summary", "resnet18", "--input-size", "3x224x224")
    assert code == 0
    assert "stem.conv.conv" in out and "11,689,512" in out and "1,814,073,344" in out
    data = json.loads(run(capsys, "summary", "lenet5", "--format", "json")[1])
    assert data["total_params"] == 61_706 and data["rows"][0]["output_shape"] == [6, 28, 28]
    csv_out = run(capsys, "summary", "lenet5", "--format", "csv")[1].splitlines()
    assert csv_out[0].startswith("name,type,kernel") and csv_out[1].startswith("features.c1.conv,Conv2d,5x5")
    out = run(capsys, "summary", "resnet18", "--input-size", "1x28x28", "--small-input", "--num-classes", "10")[1]
    assert "1x28x28" in out


def test_every_command_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        text = p.format_help()
        assert "examples:" in text, name


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "cnnlab", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "models" in result.stdout and "shape" in result.stdout


def test_the_cnnlab_command_is_the_module_entry_point():
    # `cnnlab` and `python -m cnnlab` run the same function: its second Ctrl-C, distributed exit and freezing
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "cnnlab"]
    assert script.value == "cnnlab.cli:run"
    assert (Path(__file__).parents[1] / "src" / "cnnlab" / "__main__.py").read_text().strip().endswith("run()")


def test_every_error_line_starts_with_cnnlab_error(capsys):
    for argv in (["summary"], ["shape"], ["models", "--format", "yaml"], []):
        with pytest.raises(SystemExit) as e:
            code = main(argv)
            raise SystemExit(code)
        assert e.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith("cnnlab: error:")


def test_output_piped_into_head_is_not_a_traceback():
    result = subprocess.run(f"{sys.executable} -m cnnlab summary resnet50 | head -1", shell=True,
                            capture_output=True, text=True)
    assert result.stdout.strip() == "resnet50 on 3x224x224"
    assert "Traceback" not in result.stderr


def test_pool_refuses_convolution_options(capsys):
    code, _, err = run(capsys, "shape", "--input", "8x8x3", "--pool", "max", "--filters", "16")
    assert code == 2 and "pooling keeps the channels" in err


# --- interrupts, SIGTERM and warnings: one line each, never a traceback ------------------------------------

def _models_raising(monkeypatch, exc):
    from cnnlab.cli import inspect_cmds

    def cmd(args):
        raise exc

    monkeypatch.setattr(inspect_cmds, "cmd_models", cmd)


def test_ctrl_c_prints_interrupted_and_exits_130(capsys, monkeypatch):
    _models_raising(monkeypatch, KeyboardInterrupt())
    code, _, err = run(capsys, "models")
    assert code == 130 and err == "cnnlab: interrupted\n"


def test_ctrl_c_while_importing_the_commands_is_handled(capsys, monkeypatch):
    import cnnlab.cli

    def interrupted_import(name, package=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(cnnlab.cli.importlib, "import_module", interrupted_import)
    code, _, err = run(capsys, "models")
    assert code == 130 and err == "cnnlab: interrupted\n"


def test_a_training_run_and_its_report_never_load_matplotlib(tmp_path):
    """Its charts are SVG written by cnnlab.viz.charts, its Grad-CAM colours cnnlab's own jet: 0.65 s of a default
    run was matplotlib's import and first figures."""
    code = ("import sys; from cnnlab.cli import main\n"
            f"status = main(['train', '--epochs', '1', '--quiet', '--run-dir', {str(tmp_path / 'run')!r}])\n"
            "print('matplotlib' in sys.modules)\nsys.exit(status)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "False"
    assert all((tmp_path / "run" / f).is_file() for f in ("report.html", "plots/confusion_matrix.svg"))


def test_the_console_command_freezes_what_its_imports_made_and_collects_again_after():
    # in a process of its own: what gc.freeze sets aside stays aside
    code = ("import gc, sys; from cnnlab.cli import main\nstatus = main(['models', 'lenet*'], freeze_imports=True)\n"
            "print(gc.isenabled(), gc.get_freeze_count() > 100_000)\nsys.exit(status)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["True", "True"]


def test_ctrl_c_while_importing_leaves_the_collector_on(capsys, monkeypatch):
    import gc

    import cnnlab.cli

    def interrupted_import(name, package=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(cnnlab.cli.importlib, "import_module", interrupted_import)
    monkeypatch.setattr(cnnlab.cli.gc, "freeze", lambda: None)  # this test process keeps collecting
    assert main(["models"], freeze_imports=True) == 130 and gc.isenabled()


def test_an_interrupted_run_with_a_checkpoint_offers_resume(capsys, monkeypatch, tmp_path):
    run_dir = tmp_path / "my run"
    _models_raising(monkeypatch, KeyboardInterrupt())
    code, _, err = run(capsys, "models")
    assert code == 130 and err.strip() == "cnnlab: interrupted"  # no run to resume
    e = KeyboardInterrupt()
    e.resume = ("cnnlab ae train", run_dir)  # what the engine attaches once a checkpoint exists
    _models_raising(monkeypatch, e)
    code, _, err = run(capsys, "models")
    assert code == 130 and err == f"cnnlab: interrupted; continue with: cnnlab ae train --resume '{run_dir}'\n"


def test_sigterm_prints_terminated_exits_143_and_restores_the_handler(capsys, monkeypatch):
    import os
    import signal
    import time

    from cnnlab.cli import inspect_cmds

    finished = []

    def cmd(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
        finally:
            finished.append(True)  # finally blocks still run

    def unhandled(signum, frame):  # if main installed no handler, fail the test instead of killing pytest
        raise RuntimeError("SIGTERM reached the test's own handler")

    monkeypatch.setattr(inspect_cmds, "cmd_models", cmd)
    before = signal.signal(signal.SIGTERM, unhandled)
    try:
        start = time.monotonic()
        code, _, err = run(capsys, "models")
        assert code == 143 and err == "cnnlab: terminated\n" and finished == [True]
        assert time.monotonic() - start < 4
        assert signal.getsignal(signal.SIGTERM) is unhandled
    finally:
        signal.signal(signal.SIGTERM, before)


def test_warnings_print_as_one_cnnlab_line(capsys, monkeypatch):
    import warnings

    from cnnlab.cli import inspect_cmds

    def cmd(args):
        warnings.warn("skipped 2 unreadable image file(s)\nin 'x'", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(inspect_cmds, "cmd_models", cmd)
    before = warnings.showwarning
    code, _, err = run(capsys, "models")
    assert code == 0 and err == "cnnlab: warning: skipped 2 unreadable image file(s) in 'x'\n"
    assert warnings.showwarning is before


def test_a_command_that_draws_nothing_never_loads_matplotlib():
    """Building the parser reaches cnnlab.viz (through the explain commands); matplotlib loads on first use."""
    code = ("import sys; from cnnlab.cli import main\nstatus = main(['models', 'lenet*'])\n"
            "print('matplotlib' in sys.modules)\nsys.exit(status)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "False"
