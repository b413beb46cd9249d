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


class CountCopiesToADevice(TorchFunctionMode):
    """Copies of a tensor in the host's memory to another device, and those among them that make the host wait
    (``non_blocking`` not set): on a GPU each of these synchronises, which ``torch.cuda.set_sync_debug_mode``
    counted twice a step on an H200 (tests/test_cuda.py) where the host reads above had seen none."""

    def __init__(self) -> None:
        super().__init__()
        self.copies = self.blocking = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in ("to", "copy_") and isinstance(args[0], torch.Tensor):
            source, target = (args[1], args[0].device) if name == "copy_" else (args[0], _target(args[1:], kwargs))
            if source.device.type == "cpu" and target is not None and target.type != "cpu":
                self.copies += 1
                self.blocking += not (kwargs.get("non_blocking") or True in args[2:])
        return func(*args, **kwargs)


def _target(args, kwargs) -> torch.device | None:
    for a in (*args, kwargs.get("device")):
        if isinstance(a, torch.device | str):
            return torch.device(a)
        if isinstance(a, torch.Tensor):
            return a.device
    return None


def test_batches_and_their_random_draws_go_to_the_device_without_making_the_host_wait():
    """The meta device stands in for a GPU (any machine has it): the data lives there, the augmentation and the
    denoising corruption draw on the CPU (reproducible anywhere) and send their draws there."""
    from cnnlab.ae.task import Noise
    from cnnlab.data.loader import Augment

    meta = torch.device("meta")
    x, y = torch.empty(64, 1, 8, 8, device=meta), torch.empty(64, dtype=torch.long, device=meta)
    augment = Augment(crop_pad=1, hflip=True, vflip=True, noise=0.1)
    host = torch.randn(64, 1, 8, 8), torch.arange(64)  # in the host's memory, as a disk feature cache is
    with CountCopiesToADevice() as counted:
        batches = list(InMemoryLoader(x, y, 8, shuffle=True, augment=augment, seed=1))
        batches += list(InMemoryLoader(*host, 8, shuffle=True, seed=1, device=meta))
        for kind in ("gaussian:0.3", "salt-pepper:0.2", "mask:0.3", "shift:0.3"):
            Noise.parse(kind)(x, torch.Generator().manual_seed(0))
    assert len(batches) == 16 and all(b[0].device == meta for b in batches)
    assert counted.copies >= 8 * 5 + 8 * 2 and counted.blocking == 0  # 5 draws a step, 2 tensors a cached batch
    with CountCopiesToADevice() as control:
        torch.zeros(2).to(meta)
        torch.empty(2, device=meta).copy_(torch.zeros(2))
    assert control.blocking == 2  # the count does see a copy that waits


class PretendCopies(TorchFunctionMode):
    """Records ``pin_memory`` and ``to`` calls and returns the tensor unmoved: a machine without CUDA or MPS can
    check what would be asked of them."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name == "pin_memory":
            self.calls.append("pin_memory")
            return args[0]
        if name == "to" and _target(args[1:], kwargs) is not None:
            self.calls.append((_target(args[1:], kwargs).type, bool(kwargs.get("non_blocking"))))
            return args[0]
        return func(*args, **kwargs)


def test_a_copy_to_a_gpu_is_non_blocking_from_pinned_memory_and_blocks_on_mps():
    """CUDA: pinned, then non-blocking (the pinned-memory cache keeps the block until the copy is done); MPS:
    blocking, since a non-blocking copy there can read the host's memory after it is freed (PyTorch issues
    139550, 189690); meta: nothing to wait for."""
    from cnnlab.data.loader import send

    for device, expected in (("cuda", ["pin_memory", ("cuda", True)]), ("mps", [("mps", False)]),
                             ("meta", [("meta", True)])):
        with PretendCopies() as seen:
            send(torch.zeros(3), torch.device(device))
        assert seen.calls == expected, device
