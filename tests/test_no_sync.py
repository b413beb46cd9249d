"""The training loop reads nothing from the device between steps: loss, accuracy and the finiteness check
accumulate as device tensors and are read every ``sync_every`` steps. On a GPU each read would make the host
wait for the device; here every read of a tensor's value by the host is counted (a TorchFunctionMode sees
``item``, ``bool``, ``float``, ``tolist``, ... whatever device the tensors live on)."""


import pytest
import torch
from torch.overrides import TorchFunctionMode

from cnnlab.classify import ClassificationTask, ClassifierConfig
from cnnlab.data.loader import InMemoryLoader
from cnnlab.train import Progress, TrainingDiverged, train_one_epoch

HOST_READS = {"item", "__bool__", "__float__", "__int__", "__index__", "tolist", "numpy", "cpu", "__format__"}


class CountHostReads(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in HOST_READS:
            self.reads += 1
        return func(*args, **(kwargs or {}))


def _epoch(steps: int, sync_every: int, poison_at: int | None = None):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 10))
    x, y = torch.randn(steps * 4, 1, 8, 8), torch.randint(0, 10, (steps * 4,))
    if poison_at is not None:
        x[poison_at * 4] = float("nan")
    loader = InMemoryLoader(x, y, 4, shuffle=False)
    config = ClassifierConfig(quiet=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    task = ClassificationTask(10)
    counter = CountHostReads()
    with counter:
        record = train_one_epoch(model, loader, task, optimizer, scheduler, config, torch.device("cpu"), scaler,
                                 Progress(False), sync_every=sync_every)
    return record, counter.reads, (model, x, y, task)


def test_the_loop_reads_the_device_once_per_sync_interval_not_per_step():
    record, reads, _ = _epoch(steps=60, sync_every=25)
    _, reads_long, _ = _epoch(steps=120, sync_every=25)
    # reads of the running loss at steps 25, 50 and the end, plus the final means: a few, not ~60
    assert reads <= 12 and reads_long <= reads + 8
    _, reads_every_step, _ = _epoch(steps=60, sync_every=1)
    assert reads_every_step >= 60  # the counter does see every read: one per step when asked for


def test_the_device_side_sums_equal_a_hand_written_per_step_loop():
    record, _, _ = _epoch(steps=30, sync_every=7)
    # the same epoch as most loops write it: read the loss and the hits after every step, sum in Python floats
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 10))
    x, y = torch.randn(120, 1, 8, 8), torch.randint(0, 10, (120,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    total, hits = 0.0, 0
    for i in range(0, 120, 4):
        out = model(x[i:i + 4])
        loss = torch.nn.functional.cross_entropy(out, y[i:i + 4])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * 4
        hits += int((out.argmax(1) == y[i:i + 4]).sum())
    assert record["train_loss"] == pytest.approx(total / 120, rel=1e-4)  # the steps agree to float rounding
    assert record["train_acc"] == hits / 120


def test_a_non_finite_loss_is_caught_at_the_next_read_with_its_batch():
    with pytest.raises(TrainingDiverged, match=r"the loss became nan at batch 13$"):
        _epoch(steps=40, sync_every=50, poison_at=12)
