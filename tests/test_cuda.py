"""On a CUDA GPU: the training loop makes the host wait for the device only where it reads, runs train, evaluate and
resume there, and a run moves between the CPU and the GPU. Skipped where PyTorch sees no CUDA device (CI has
none); ``tests/test_no_sync.py`` checks the same loop on any machine by counting the host's reads.

The synchronisations are PyTorch's own count: ``torch.cuda.set_sync_debug_mode("warn")`` warns at every call
that makes the host wait for the GPU (a read of a value, a blocking copy to the host, a synchronize)."""

import json
import warnings

import pytest
import torch

from cnnlab import create_model
from cnnlab.ae import AEConfig
from cnnlab.classify import ClassificationTask, ClassifierConfig
from cnnlab.data.loader import InMemoryLoader, default_augment
from cnnlab.run import Run
from cnnlab.train import Progress, fit, train_one_epoch
from cnnlab.train.setup import build_optimizer
from cnnlab.transfer import TransferConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

GPU = torch.device("cuda")


def _syncs(steps: int, sync_every: int, precision: str) -> int:
    """The host's waits for the GPU in one epoch of LeNet-5 on augmented in-memory data, as the engine trains it:
    torch's fused SGD, the loss scaler for fp16, the cosine schedule."""
    torch.manual_seed(0)
    model = create_model("lenet5", num_classes=10).to(GPU)
    x, y = torch.rand(steps * 32, 1, 32, 32, device=GPU), torch.randint(0, 10, (steps * 32,), device=GPU)
    loader = InMemoryLoader(x, y, 32, shuffle=True, augment=default_augment(32, flip_ok=False))
    config = ClassifierConfig(quiet=True, precision=precision, optimizer="sgd", lr=0.01)
    optimizer = build_optimizer(config, model)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train_one_epoch(model, loader, ClassificationTask(10), optimizer, scheduler, config, GPU, scaler,
                            Progress(False), sync_every=sync_every)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing" in str(w.message) for w in caught)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_an_epoch_on_the_gpu_waits_for_it_as_often_whatever_its_number_of_steps(precision):
    _syncs(2, 10_000, precision)  # uncounted: the first epoch waited once more on an H200 (28 = 2x10+8, 87 = 2x40+7)
    few, many = _syncs(10, 10_000, precision), _syncs(40, 10_000, precision)
    assert few == many  # the reads at the epoch's end only: none per step
    assert _syncs(10, 1, precision) >= 10  # the count does see a read every step when the loop is asked for one


def test_a_run_trains_evaluates_and_predicts_on_the_gpu(tmp_path):
    r = fit(ClassifierConfig(run_dir=str(tmp_path / "gpu"), device="cuda", epochs=6, quiet=True), log=lambda *a: None)
    meta = json.loads((r.run_dir / "meta.json").read_text())
    major = torch.cuda.get_device_capability()[0]
    assert meta["precision"] == ("bf16" if major >= 8 else "fp16")  # auto on a GPU
    assert meta["channels_last"] is False  # contiguous on a GPU
    assert r.test["accuracy"] > 0.85
    assert Run.open(r.run_dir).evaluate(device="cuda")["accuracy"] == pytest.approx(r.test["accuracy"], abs=1 / 270)


def test_a_run_begun_on_the_cpu_continues_on_the_gpu_and_back(tmp_path):
    common = dict(quiet=True, seed=1, scheduler="step", step_size=1, gamma=0.7, precision="fp32")
    fit(ClassifierConfig(run_dir=str(tmp_path / "moved"), device="cpu", epochs=1, **common), log=lambda *a: None)
    config = ClassifierConfig.load(tmp_path / "moved" / "config.yaml")
    on_gpu = fit(config.replace(epochs=2, device="cuda"), resume=tmp_path / "moved", log=lambda *a: None)
    back = fit(config.replace(epochs=3, device="cpu"), resume=tmp_path / "moved", log=lambda *a: None)
    assert [h["epoch"] for h in back.history] == [1, 2, 3] and len(on_gpu.history) == 2
    assert back.history[2]["val_loss"] < back.history[0]["val_loss"]


def test_a_feature_cache_on_disk_trains_the_head_on_the_gpu(tmp_path):
    """The cache stays in the host's memory (a memory-mapped file); each batch goes to the GPU."""
    base = fit(ClassifierConfig(run_dir=str(tmp_path / "base"), device="cuda", epochs=4, data="digits@classes=0-4",
                                quiet=True), log=lambda *a: None)
    lines = []
    r = fit(TransferConfig(source=str(base.run_dir), mode="feature-extraction", cache="disk", epochs=4, device="cuda",
                           data="digits@classes=5-9", run_dir=str(tmp_path / "head"), quiet=True), log=lines.append)
    assert any(line.startswith("cached the frozen backbone's features") and "MB, disk)" in line for line in lines)
    assert r.test["accuracy"] > 0.6


def test_an_autoencoder_on_the_gpu_reports_what_evaluate_measures(tmp_path):
    r = fit(AEConfig(data="digits", epochs=2, kind="conv", device="cuda", quiet=True, run_dir=str(tmp_path / "ae")),
            log=lambda *a: None)
    assert json.loads((r.run_dir / "meta.json").read_text())["precision"] in ("bf16", "fp16")  # trained in it
    tested = json.loads((r.run_dir / "results.json").read_text())["test"]
    again = Run.open(r.run_dir, holds="autoencoder").evaluate(device="cuda")
    assert again["mse"] == pytest.approx(tested["mse"], rel=1e-5) and again["ssim"] == pytest.approx(tested["ssim"])
