"""``--precision auto`` on a CPU with native bf16: the run times its own step in fp32 and bf16 and keeps fp32
unless bf16 is clearly faster."""

import json
import math
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from torch import nn

import cnnlab.train.precision as precision
from cnnlab.classify import ClassificationTask, ClassifierConfig, predict
from cnnlab.models.lenet import LeNet5
from cnnlab.run import Run
from cnnlab.train import fit
from cnnlab.train.checkpoint import load_weights
from cnnlab.train.precision import fastest_precision, measure_precision, measures_precision


def _timer(**seconds):
    """A ``step_seconds`` that returns the given seconds per precision in turn, recording its calls."""
    calls = []

    def step_seconds(p: str) -> float:
        calls.append(p)
        return seconds[p].pop(0)

    return step_seconds, calls


def test_bf16_is_taken_only_where_its_step_is_at_least_1_2x_as_fast():
    step, calls = _timer(fp32=[9, 0.10, 0.10], bf16=[9, 0.05, 0.05])
    assert fastest_precision(step) == ("bf16", {"fp32": 0.10, "bf16": 0.05})
    assert calls == ["fp32", "fp32", "bf16", "bf16", "fp32", "bf16"]  # each warmed up once, then taking turns
    step, _ = _timer(fp32=[9, 0.10, 0.10], bf16=[9, 0.09, 0.09])
    assert fastest_precision(step) == ("fp32", {"fp32": 0.10, "bf16": 0.09})


def test_bf16_must_win_in_every_round_and_the_warm_up_never_counts():
    step, _ = _timer(fp32=[0.01, 0.30, 0.10], bf16=[0.001, 0.08, 0.06])  # fp32's fastest against bf16's slowest
    assert fastest_precision(step) == ("bf16", {"fp32": 0.10, "bf16": 0.08})
    step, _ = _timer(fp32=[0.01, 0.10, 0.10], bf16=[0.001, 0.05, 0.09])  # one lucky bf16 step does not choose it
    assert fastest_precision(step) == ("fp32", {"fp32": 0.10, "bf16": 0.09})


def test_a_step_that_fails_in_bf16_keeps_fp32():
    def step_seconds(p: str) -> float:
        if p == "bf16":
            raise RuntimeError('"slow_conv2d_cpu" not implemented for \'BFloat16\'')
        return 0.1

    assert fastest_precision(step_seconds) == ("fp32", {"fp32": 0.1})


def test_a_slow_step_is_timed_once_in_each_precision():
    step, calls = _timer(fp32=[2.0, 1.0], bf16=[1.0, 0.5])
    assert fastest_precision(step) == ("bf16", {"fp32": 1.0, "bf16": 0.5})
    assert calls == ["fp32", "fp32", "bf16", "bf16"]


def test_a_slow_step_that_bf16_seems_to_beat_many_times_over_is_timed_again():
    """Under load a run chose bf16 on one reading: 'bf16's step 43.73x as fast as fp32's (18 ms against 768 ms)'."""
    step, calls = _timer(fp32=[2.0, 0.768, 0.020], bf16=[1.0, 0.018, 0.018])
    assert fastest_precision(step) == ("fp32", {"fp32": 0.020, "bf16": 0.018})
    assert calls == ["fp32", "fp32", "bf16", "bf16", "fp32", "bf16"]


def test_a_step_too_short_to_matter_stays_fp32_without_trying_bf16():
    step, calls = _timer(fp32=[0.05, 0.005])
    assert fastest_precision(step) == ("fp32", {})
    assert calls == ["fp32", "fp32"]


def test_a_short_step_slowed_once_by_a_busy_host_still_stays_fp32():
    """Only the first timed fp32 step was held against the 20-ms floor: a 4-ms step first timed at 30 ms went on
    to a contest of 4 ms against 3.3 ms that timing noise decides (LeNet-5 on digits trained in bf16 one time
    in a few, the same command in fp32 the others)."""
    step, _ = _timer(fp32=[0.004, 0.030, 0.004], bf16=[0.003, 0.0033, 0.0033])
    assert fastest_precision(step) == ("fp32", {})


def _model():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(),
                         nn.Linear(8 * 6 * 6, 4))


@pytest.mark.parametrize("try_bf16", [False, True])
def test_measuring_leaves_the_model_and_the_random_state_as_they_were(monkeypatch, try_bf16):
    # 0: any step is measured in bf16 too; inf: none is
    monkeypatch.setattr(precision, "MIN_STEP_SECONDS", 0.0 if try_bf16 else math.inf)
    torch.manual_seed(0)
    model = _model().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loader = [(torch.randn(16, 3, 8, 8), torch.randint(0, 4, (16,)))]
    rng = torch.get_rng_state()
    choice, seconds = measure_precision(model, loader, ClassificationTask(4), torch.device("cpu"), False)
    assert choice in ("fp32", "bf16")
    assert set(seconds) == ({"fp32", "bf16"} if try_bf16 else set())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # running statistics too
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)
    assert not model.training


class _Watched(ClassificationTask):
    """A task that records, at each step's inputs and loss, what a test asks of the moment."""

    def __init__(self, watch):
        super().__init__(4)
        self.watch, self.seen = watch, []

    def inputs(self, x, y):
        self.seen.append(("inputs", self.watch()))
        return x, y

    def loss(self, output, target):
        self.seen.append(("loss", self.watch()))
        return super().loss(output, target)


def test_measuring_takes_one_batch_and_closes_the_loader_before_timing(monkeypatch):
    monkeypatch.setattr(precision, "MIN_STEP_SECONDS", 0.0)
    taken, closed = [], []

    def loader():
        try:
            for _ in range(3):
                taken.append(1)
                yield torch.randn(4, 3, 8, 8), torch.randint(0, 4, (4,))
        finally:
            closed.append(True)

    class Loader:
        def __iter__(self):
            return loader()

    task = _Watched(lambda: bool(closed))
    measure_precision(_model(), Loader(), task, torch.device("cpu"), True)
    assert taken == [1] and closed == [True]
    assert task.seen and all(was_closed for _, was_closed in task.seen)  # a streaming loader's workers are gone
    assert measure_precision(_model(), [], ClassificationTask(4), torch.device("cpu"), False) == ("fp32", {})


def test_measuring_a_streamed_folders_step_forks_no_decoding_workers(tmp_path, monkeypatch):
    from cnnlab.data import streaming
    from cnnlab.data.prepare import Preprocess

    for i in range(8):
        Image.fromarray(torch.randint(0, 256, (8, 8, 3), dtype=torch.uint8).numpy()).save(tmp_path / f"{i}.png")
    files = streaming.FileSet([str(tmp_path / f"{i}.png") for i in range(8)], [i % 4 for i in range(8)])
    loader = streaming.StreamingLoader(files, 3, Preprocess((8, 8), 0, [0.5] * 3, [0.25] * 3), 4,
                                       torch.device("cpu"), shuffle=True, workers=2)
    started = []
    start = streaming._start
    monkeypatch.setattr(streaming, "_start", lambda dl: started.append(dl.num_workers) or start(dl))
    measure_precision(_model(), loader, ClassificationTask(4), torch.device("cpu"), False)
    assert started == [0]


def test_each_precision_is_timed_under_its_own_autocast(monkeypatch):
    monkeypatch.setattr(precision, "MIN_STEP_SECONDS", 0.0)
    monkeypatch.setattr(precision, "BF16_GAIN", 0.0)
    task = _Watched(lambda: torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
    loader = [(torch.randn(4, 3, 8, 8), torch.randint(0, 4, (4,)))]
    assert measure_precision(_model(), loader, task, torch.device("cpu"), False)[0] == "bf16"
    losses = [dtype for where, dtype in task.seen if where == "loss"]
    assert losses == [None, None, torch.bfloat16, torch.bfloat16, None, torch.bfloat16]  # warm-ups, then turns
    assert all(dtype is None for where, dtype in task.seen if where == "inputs")  # the inputs as the loop takes them


def test_measuring_puts_back_each_modules_mode():
    model = _model().train()
    model[1].eval()  # a frozen batch norm, say
    measure_precision(model, [(torch.randn(4, 3, 8, 8), torch.randint(0, 4, (4,)))], ClassificationTask(4),
                      torch.device("cpu"), False)
    assert model.training and not model[1].training


def test_only_auto_on_a_cpu_with_native_bf16_is_measured_and_never_where_the_run_must_replay(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    assert measures_precision(ClassifierConfig(), cpu)
    for config in (ClassifierConfig(precision="fp32"), ClassifierConfig(deterministic=True),
                   ClassifierConfig(compile=True)):
        assert not measures_precision(config, cpu)
    assert not measures_precision(ClassifierConfig(), torch.device("meta"))  # a GPU's auto is bf16 or fp16
    for flags in (False, None):  # no native bf16, or flags that cannot be read
        monkeypatch.setattr(precision, "native_bf16", lambda flags=flags: flags)
        assert not measures_precision(ClassifierConfig(), cpu)


def _run(tmp_path, name, lines, **kwargs):
    return fit(ClassifierConfig(run_dir=str(tmp_path / name), quiet=True, epochs=1, data="digits@labels=5",
                                device="cpu", **kwargs), log=lines.append)


@pytest.mark.parametrize("gain, chosen", [(0.0, "bf16"), (math.inf, "fp32")])
def test_a_run_on_a_cpu_with_native_bf16_trains_in_what_it_measured_and_says_so(tmp_path, monkeypatch, gain, chosen):
    monkeypatch.setattr(precision, "native_bf16", lambda: True)  # bf16 autocast runs on any CPU (slowly without)
    monkeypatch.setattr(precision, "MIN_STEP_SECONDS", 0.0)
    monkeypatch.setattr(precision, "BF16_GAIN", gain)  # 0: bf16 wins whatever the clock says; inf: it never does
    seen, evaluating = [], []  # (training, evaluating, autocast dtype) of each forward pass of the model

    def forward_features(self, x):
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
        seen.append((self.training, bool(evaluating), dtype))
        return original(self, x)

    def evaluate(self, *args, **kwargs):
        evaluating.append(True)
        try:
            return original_evaluate(self, *args, **kwargs)
        finally:
            evaluating.pop()

    original, original_evaluate = LeNet5.forward_features, ClassificationTask.evaluate
    monkeypatch.setattr(LeNet5, "forward_features", forward_features)
    monkeypatch.setattr(ClassificationTask, "evaluate", evaluate)
    lines = []
    r = _run(tmp_path, chosen, lines)
    dtype = torch.bfloat16 if chosen == "bf16" else None
    steps = [d for training, _, d in seen if training][6:]  # after the measurement's (two warm-ups, two rounds)
    assert steps and set(steps) == {dtype}  # every training step in the chosen precision
    evaluated = [d for _, e, d in seen if e]
    assert evaluated and set(evaluated) == {dtype}  # validation and test too (the report's pictures are fp32)
    meta = json.loads((r.run_dir / "meta.json").read_text())
    assert meta["precision"] == chosen
    assert set(meta["precision_measured"]) == {"fp32", "bf16"}
    said = [line for line in lines if line.startswith("precision ")]
    assert len(said) == 1 and said[0].startswith(f"precision {chosen}: bf16's step ")
    assert ("--precision fp32 keeps fp32" in said[0]) == (chosen == "bf16")
    assert load_weights(r.run_dir / "checkpoints" / "last.safetensors")[1]["precision"] == chosen  # its weights too
    tested = json.loads((r.run_dir / "results.json").read_text())["test"]
    again = Run.open(r.run_dir).evaluate("test", device="cpu")  # `cnnlab evaluate`: in the run's precision
    assert again["loss"] == tested["loss"] and again["accuracy"] == tested["accuracy"]  # fp32's loss differs at 1e-7
    Image.new("L", (8, 8), 128).save(tmp_path / "grey.png")
    seen.clear()
    predict(Run.open(r.run_dir), [str(tmp_path / "grey.png")])  # `cnnlab predict`: fp32, as an exported model
    assert seen and {d for _, _, d in seen} == {None}
    ratio = meta["precision_measured"]["fp32"] / meta["precision_measured"]["bf16"]
    html = (r.run_dir / "report.html").read_text()
    assert f"<td>auto (ran: {chosen}; bf16&#x27;s step {ratio:.2f}x as fast as fp32&#x27;s)</td>" in html


@pytest.mark.parametrize("outcome", ["short", "bf16 fails"])
def test_a_run_that_kept_fp32_without_a_bf16_time_says_why_in_its_report(tmp_path, monkeypatch, outcome):
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    if outcome == "short":
        monkeypatch.setattr(precision, "MIN_STEP_SECONDS", math.inf)  # every step is too short to try bf16
    else:
        monkeypatch.setattr(precision, "MIN_STEP_SECONDS", 0.0)
        fp32_only = precision.autocast

        def autocast(device, p="fp32"):  # an operation without a bf16 kernel on this CPU, say
            if p == "bf16":
                raise RuntimeError("no bf16 kernel")
            return fp32_only(device, p)

        monkeypatch.setattr(precision, "autocast", autocast)  # the measurement's (the loop's is the engine's own)
    lines = []
    r = _run(tmp_path, "r", lines)
    meta = json.loads((r.run_dir / "meta.json").read_text())
    assert meta["precision"] == "fp32"
    said = [line for line in lines if line.startswith("precision ")]
    html = (r.run_dir / "report.html").read_text()
    if outcome == "short":
        assert meta["precision_measured"] == {} and said == []
        assert "<td>auto (ran: fp32; its step too short for bf16 to pay, not tried)</td>" in html
    else:
        assert set(meta["precision_measured"]) == {"fp32"} and said == ["precision fp32: a step in bf16 failed here"]
        assert "<td>auto (ran: fp32; a step in bf16 failed)</td>" in html


@pytest.mark.parametrize("measured, said", [
    ({"fp32": 0.05, "bf16": 0.02}, "precision bf16: bf16's step 2.50x as fast as fp32's (20 ms against 50 ms, "
                                   "measured here; --precision fp32 keeps fp32)"),
    ({"fp32": 0.05, "bf16": 0.045}, "precision fp32: bf16's step 1.11x as fast as fp32's (45 ms against 50 ms, "
                                    "measured here; bf16 is taken from 1.2x, for the precision it costs)")])
def test_the_line_a_run_says_gives_each_precisions_time_beside_its_name(tmp_path, monkeypatch, measured, said):
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    monkeypatch.setattr(precision, "fastest_precision",
                        lambda step_seconds: ("bf16" if measured["bf16"] < 0.04 else "fp32", measured))
    lines = []
    _run(tmp_path, "r", lines)
    assert [line for line in lines if line.startswith("precision ")] == [said]


def test_a_deterministic_run_is_not_measured(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    monkeypatch.setattr(precision, "MIN_STEP_SECONDS", 0.0)
    monkeypatch.setattr(precision, "BF16_GAIN", 0.0)
    lines = []
    r = _run(tmp_path, "det", lines, deterministic=True)
    meta = json.loads((r.run_dir / "meta.json").read_text())
    assert meta["precision"] == "fp32" and "precision_measured" not in meta
    assert not any(line.startswith("precision ") for line in lines)


def _meta(run):
    return json.loads((run / "meta.json").read_text())


def test_a_resumed_run_keeps_the_precision_it_measured_when_it_began(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    monkeypatch.setattr(precision, "MIN_STEP_SECONDS", 0.0)
    monkeypatch.setattr(precision, "BF16_GAIN", 0.0)
    first = _meta(_run(tmp_path, "r", []).run_dir)
    assert first["precision"] == "bf16"
    monkeypatch.setattr(precision, "BF16_GAIN", math.inf)  # measured again, it would choose fp32
    config = ClassifierConfig.load(tmp_path / "r" / "config.yaml")
    lines = []
    fit(config.replace(epochs=2), resume=tmp_path / "r", log=lines.append)  # a second epoch
    again = _meta(tmp_path / "r")
    assert again["precision"] == "bf16" and again["precision_measured"] == first["precision_measured"]
    assert [line for line in lines if line.startswith("precision ")][0].startswith("precision bf16: ")
    assert "measured when the run began" in [line for line in lines if line.startswith("precision ")][0]
    (tmp_path / "r" / "results.json").unlink()  # stopped after its last epoch, before its results: it finishes
    fit(config.replace(epochs=2), resume=tmp_path / "r", log=lambda *a: None)
    assert _meta(tmp_path / "r")["precision"] == "bf16"


def test_a_run_resumed_with_deterministic_keeps_the_precision_it_measured(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    monkeypatch.setattr(precision, "MIN_STEP_SECONDS", 0.0)
    monkeypatch.setattr(precision, "BF16_GAIN", 0.0)
    first = _meta(_run(tmp_path, "r", []).run_dir)
    config = ClassifierConfig.load(tmp_path / "r" / "config.yaml")
    lines = []
    fit(config.replace(epochs=2, deterministic=True), resume=tmp_path / "r", log=lines.append)  # may not measure
    assert _meta(tmp_path / "r")["precision"] == "bf16"
    assert _meta(tmp_path / "r")["precision_measured"] == first["precision_measured"]
    assert any(line.startswith("precision bf16: ") for line in lines)
    fit(config.replace(epochs=3), resume=tmp_path / "r", log=lambda *a: None)  # and later resumes still keep it
    assert _meta(tmp_path / "r")["precision"] == "bf16"


def test_a_resumed_run_keeps_what_it_measured_where_a_new_run_would_not_measure(monkeypatch):
    from cnnlab.train import distributed
    from cnnlab.train.engine import _measured_precision

    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    kept = {"precision": "bf16", "seconds": {"fp32": 0.05, "bf16": 0.02}}
    one, cpu = distributed.Ranks(), torch.device("cpu")  # one process

    def measure():
        raise AssertionError("a resumed run measures nothing")

    for config in (ClassifierConfig(compile=True), ClassifierConfig(deterministic=True), ClassifierConfig()):
        assert _measured_precision(config, cpu, one, True, kept, measure, print) == kept
        assert _measured_precision(config, cpu, one, True, None, measure, print) is None  # it did not measure
    asked = ClassifierConfig(precision="fp32")  # resumed with --precision fp32: as asked
    assert _measured_precision(asked, cpu, one, True, kept, measure, print) is None


def test_a_run_that_began_in_bf16_turns_fp32_where_resumed_on_a_cpu_without_it_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    monkeypatch.setattr(precision, "MIN_STEP_SECONDS", 0.0)
    monkeypatch.setattr(precision, "BF16_GAIN", 0.0)
    _run(tmp_path, "r", [])
    monkeypatch.setattr(precision, "native_bf16", lambda: False)  # moved to a CPU that would emulate bf16
    config = ClassifierConfig.load(tmp_path / "r" / "config.yaml")
    lines = []
    fit(config.replace(epochs=2), resume=tmp_path / "r", log=lines.append)
    assert _meta(tmp_path / "r")["precision"] == "fp32"
    assert [line for line in lines if line.startswith("precision ")] == [
        "precision fp32: the run began in bf16, which this CPU does not compute natively"]
    # meta.json keeps what the first epoch trained in, and the report says what each session ran
    sessions = [(s["from_epoch"], s["precision"]) for s in _meta(tmp_path / "r")["sessions"]]
    assert sessions == [(1, "bf16"), (2, "fp32")]
    report = (tmp_path / "r" / "report.html").read_text()
    assert "auto (ran: bf16 on cpu from epoch 1, fp32 on cpu from epoch 2" in report


def test_a_run_continued_in_fp16_after_epochs_without_loss_scaling_starts_its_scaler(tmp_path, monkeypatch):
    # as a CPU run continued on a GPU without bf16, where auto is fp16 with loss scaling: the saved scaler is empty
    monkeypatch.setattr(precision, "native_fp16", lambda: True)  # fp16 autocast runs on any CPU (slowly without)
    _run(tmp_path, "r", [], precision="fp32")
    config = ClassifierConfig.load(tmp_path / "r" / "config.yaml")
    r = fit(config.replace(epochs=2, precision="fp16"), resume=tmp_path / "r", log=lambda *a: None)
    assert len(r.history) == 2 and _meta(tmp_path / "r")["precision"] == "fp16"
    fit(config.replace(epochs=3, precision="fp32"), resume=tmp_path / "r", log=lambda *a: None)  # and back
    meta = _meta(tmp_path / "r")
    assert meta["precision"] == "fp32"
    assert [(s["from_epoch"], s["device"], s["precision"]) for s in meta["sessions"]] == [
        (1, "cpu", "fp32"), (2, "cpu", "fp16"), (3, "cpu", "fp32")]


def test_the_report_of_an_early_stopping_run_says_what_each_session_ran_also_where_its_best_epoch_is_older(
        tmp_path, monkeypatch):
    """The report shows the best checkpoint's metadata, written before the later sessions: what they ran comes
    from meta.json."""
    from cnnlab.train import engine

    monkeypatch.setattr(precision, "native_fp16", lambda: True)  # fp16 autocast runs on any CPU (slowly without)
    _run(tmp_path, "r", [], precision="fp16", early_stopping=5)
    config = ClassifierConfig.load(tmp_path / "r" / "config.yaml")
    monkeypatch.setattr(engine, "_improved", lambda monitor, record, best: (False, best))  # epoch 2 is no better
    fit(config.replace(epochs=2, precision="fp32"), resume=tmp_path / "r", log=lambda *a: None)
    run = Run.open(tmp_path / "r")
    assert run.meta["precision"] == "fp16" and [s["precision"] for s in run.sessions] == ["fp16", "fp32"]
    page = (tmp_path / "r" / "report.html").read_text()
    assert "fp32 (ran: fp16 on cpu from epoch 1, fp32 on cpu from epoch 2)" in page
    assert "<td>resumed</td><td>at epoch 2</td>" in page


def test_a_session_that_completed_no_epoch_leaves_no_record_and_finishing_adds_none(tmp_path):
    from cnnlab._machine import cpu_description
    from cnnlab.train.engine import _sessions

    cpu, meta = torch.device("cpu"), {"precision": "fp32", "channels_last": True}
    path = tmp_path / "meta.json"
    path.write_text(json.dumps({"precision": "bf16", "channels_last": False, "sessions": [
        {"from_epoch": 1, "device": "cuda", "precision": "bf16", "channels_last": False},
        {"from_epoch": 4, "device": "cpu", "precision": "fp32", "channels_last": True}]}))  # killed in epoch 4
    assert [s["from_epoch"] for s in _sessions(path, 3, False, cpu, meta)] == [1, 4]  # that session replaced
    assert [s["device"] for s in _sessions(path, 3, False, cpu, meta)] == ["cuda", "cpu"]
    assert [s["from_epoch"] for s in _sessions(path, 5, True, cpu, meta)] == [1, 4]  # trained: finishing only
    path.write_text(json.dumps({"precision": "fp32", "channels_last": False}))  # written before sessions were kept
    assert _sessions(path, 2, False, cpu, meta) == [  # its first epochs' precision is not known: not guessed
        {"from_epoch": 3, "device": "cpu", "precision": "fp32", "channels_last": True,
         "machine": f"{cpu_description()}; {torch.get_num_threads()} thread{'s' * (torch.get_num_threads() > 1)}; "
                    f"torch {torch.__version__}"}]


def test_a_run_that_began_without_measuring_is_not_measured_when_resumed(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda: False)  # begun on a CPU without native bf16
    _run(tmp_path, "r", [])
    monkeypatch.setattr(precision, "native_bf16", lambda: True)  # continued on one with it
    monkeypatch.setattr(precision, "MIN_STEP_SECONDS", 0.0)
    monkeypatch.setattr(precision, "BF16_GAIN", 0.0)
    config = ClassifierConfig.load(tmp_path / "r" / "config.yaml")
    fit(config.replace(epochs=2), resume=tmp_path / "r", log=lambda *a: None)
    meta = _meta(tmp_path / "r")
    assert meta["precision"] == "fp32" and "precision_measured" not in meta


def test_a_model_is_evaluated_in_the_precision_it_trained_in_where_the_device_has_it(monkeypatch):
    cpu, gpu = torch.device("cpu"), SimpleNamespace(type="cuda")  # only the device's type is asked
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    monkeypatch.setattr(precision, "native_fp16", lambda: False)
    assert [precision.evaluation_precision(p, cpu) for p in ("fp32", "bf16", "fp16")] == ["fp32", "bf16", "fp32"]
    assert [precision.evaluation_precision(p, gpu) for p in ("fp32", "bf16", "fp16")] == ["fp32", "bf16", "fp16"]
    monkeypatch.setattr(precision, "native_fp16", lambda: True)  # AMX-FP16
    assert precision.evaluation_precision("fp16", cpu) == "fp16"
    monkeypatch.setattr(precision, "native_bf16", lambda: False)  # emulated bf16: many times slower
    assert precision.evaluation_precision("bf16", cpu) == "fp32"
    monkeypatch.setattr(precision, "native_bf16", lambda: None)  # flags unreadable (macOS, Windows, ARM Linux)
    monkeypatch.setattr(precision, "native_fp16", lambda: None)
    assert [precision.evaluation_precision(p, cpu) for p in ("bf16", "fp16")] == ["fp32", "fp32"]
    assert precision.resolve_precision("bf16", cpu) == "bf16"  # asked for by name: not refused, the user may know
    mps = SimpleNamespace(type="mps")  # where a run may train in either
    assert [precision.evaluation_precision(p, mps) for p in ("fp32", "bf16", "fp16")] == ["fp32", "bf16", "fp16"]
