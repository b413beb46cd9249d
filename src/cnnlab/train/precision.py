"""Mixed precision: which one a run uses, and the autocast context every task's forward pass runs in."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import nn

from .._machine import cpu_info, native_bf16, native_fp16
from ..errors import CnnlabError


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision a run starts from on ``device``: ``auto`` is bf16 on a CUDA GPU that has it (fp16 with loss
    scaling on one that has not) and fp32 elsewhere. On a CPU with native bf16, a run then measures whether its
    step pays for bf16 (:func:`measures_precision`). An explicit bf16 or fp16 on a CPU that lacks its units
    is refused: it would run many times slower than fp32."""
    if precision == "auto":
        if device.type == "cuda":  # native bf16 from Ampere on (compute capability 8); emulated before, slow
            return "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp16"
        return "fp32"
    if device.type == "cpu" and precision in ("bf16", "fp16") and _cpu_units(precision) is False:
        units = "native bf16 (AVX512-BF16 or AMX)" if precision == "bf16" else "AMX-FP16"
        raise CnnlabError(f"--precision {precision}: this CPU ({cpu_info()[0]}) has no {units}, so {precision} "
                          f"would run many times slower than fp32; use --precision fp32 (or auto)")
    return precision  # where the CPU's flags cannot be read, what was asked: the user may know


def _cpu_units(precision: str) -> bool | None:
    """Whether this CPU has the units for bf16 or fp16; None where its flags cannot be read."""
    return native_bf16() if precision == "bf16" else native_fp16()


def runs_natively(precision: str, device: torch.device) -> bool:
    """Whether ``device`` is known to compute in ``precision`` at speed: fp32 anywhere; bf16 and fp16 on a CUDA
    GPU and on Apple's MPS (where a run may train in them); on a CPU, bf16 with AVX512-BF16 or AMX and fp16 with
    AMX-FP16 (elsewhere PyTorch emulates them, many times slower than fp32), not where its flags cannot be read."""
    if precision == "fp32" or device.type in ("cuda", "mps"):
        return True
    return device.type == "cpu" and _cpu_units(precision) is True


def evaluation_precision(trained: str, device: torch.device) -> str:
    """The precision in which to evaluate a model that trained in ``trained`` (meta.json's), on ``device``: the
    same, so that its test metrics are the run's, unless ``device`` is not known to compute in it at speed
    (:func:`runs_natively`): then fp32."""
    return trained if trained in ("bf16", "fp16") and runs_natively(trained, device) else "fp32"


def autocast(device: torch.device, precision: str = "fp32"):
    """``torch.autocast`` to bf16 or fp16 on ``device``; no change for fp32. ``auto`` is resolved here as a run
    starts from it (fp32 on a CPU; a run then measures its step where the CPU has native bf16, which a loop
    called outside :func:`cnnlab.train.fit` does not): such a loop given a config's ``auto`` must not fall
    through to fp16, which a CPU without fp16 units runs many times slower."""
    if precision == "auto":
        precision = resolve_precision(precision, device)
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


# ``auto`` on a CPU with native bf16: bf16 autocast pays only where the convolutions are heavy (on an Intel Xeon
# with AMX: 1.8-3.2x for the small-input ResNet-18 over three days, 0.8-1.15x for LeNet-5, 1.0-1.1x for
# MobileNet-V2 and VGG-11; the README's Performance section), so the run measures its own step in both
# precisions and keeps fp32 unless bf16 is clearly faster: it computes in 8 bits of mantissa where fp32 has 23.
BF16_GAIN = 1.2  # bf16 only where its steps take at most 1 / 1.2 of fp32's
MIN_STEP_SECONDS = 0.02  # a faster fp32 step: too short for bf16 to matter, or to time reliably in one go
REPEAT_UNDER_SECONDS = 0.5  # steps shorter than this are timed twice in each precision
BEYOND_GAIN = 3.0  # a longer step that bf16 seems to beat this many times over is timed again too: the most a
#                   step gained in the README's tables is 3.0x (ResNet-18 at 64x64), and a host that stalled in
#                   fp32's one timed step gives far more (768 ms against 18 ms, under load)


def measures_precision(config, device: torch.device) -> bool:
    """Whether a run with ``config`` on ``device`` chooses its precision by measuring its step: ``auto`` on a
    CPU with native bf16, unless the run asks for determinism (a choice made by a clock is not reproducible) or
    compiles its model (measuring would compile it twice)."""
    return (config.precision == "auto" and device.type == "cpu" and runs_natively("bf16", device)
            and not config.deterministic and not config.compile)


def fastest_precision(step_seconds: Callable[[str], float]) -> tuple[str, dict[str, float]]:
    """fp32 or bf16, given ``step_seconds(precision)``, which runs and times one training step: bf16 when each of
    its timed steps is at least :data:`BF16_GAIN` times as fast as fp32's fastest (a lucky moment of a noisy
    machine does not choose it; a long step is timed again where bf16's gain looks too good to be true). Each
    precision's first step warms it up (it creates the kernels' primitives) and does not count. Also returns the
    seconds that decided (fp32's fastest step, bf16's slowest): none where fp32's step was under
    :data:`MIN_STEP_SECONDS` (its first, or the fastest of its repeats: a short step that a busy host slowed once
    is still too short to judge, and bf16 then won a coin toss), only fp32's where a step in bf16 failed (an
    operation without a bf16 kernel on this CPU, say), which keeps fp32."""
    step_seconds("fp32")
    fp32 = [step_seconds("fp32")]
    if fp32[0] < MIN_STEP_SECONDS:
        return "fp32", {}
    try:
        step_seconds("bf16")
        bf16 = [step_seconds("bf16")]
        # taking turns, so that a slow moment of the machine hits both
        if fp32[0] < REPEAT_UNDER_SECONDS or fp32[0] >= BEYOND_GAIN * bf16[0]:
            fp32.append(step_seconds("fp32"))
            bf16.append(step_seconds("bf16"))
    except RuntimeError:
        return "fp32", {"fp32": min(fp32)}
    if min(fp32) < MIN_STEP_SECONDS:  # the first fp32 step was slow by chance (a busy host): the step is short
        return "fp32", {}
    seconds = {"fp32": min(fp32), "bf16": max(bf16)}
    return ("bf16" if seconds["fp32"] >= BF16_GAIN * seconds["bf16"] else "fp32"), seconds


def measure_precision(model: nn.Module, loader, task, device: torch.device,
                      channels_last: bool) -> tuple[str, dict[str, float]]:
    """:func:`fastest_precision` for ``model``'s training step on the first batch of ``loader``, as the loop takes
    it (the task's inputs and loss, forward and backward, no optimiser step). The model is left as it was: its
    gradients are cleared, its buffers (batch norm's running statistics) put back, and the random number
    generators too (the loaders draw each epoch from their own, seeded by the epoch)."""
    if hasattr(loader, "first_batch"):  # cnnlab's loaders: a streaming one starts no workers for it
        batch = loader.first_batch()
    else:
        batches = iter(loader)
        try:
            batch = next(batches, None)
        finally:
            getattr(batches, "close", lambda: None)()
    if batch is None:  # no batch: the loop says so
        return "fp32", {}
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    modes = [(m, m.training) for m in model.modules()]  # a frozen part may be in eval mode
    model.train()

    def step_seconds(precision: str) -> float:
        x, y = batch
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        t0 = time.perf_counter()
        x, y = task.inputs(x, y)
        with autocast(device, precision):
            loss = task.loss(model(x), y)
        loss.backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    try:
        with torch.random.fork_rng(devices=[]):
            return fastest_precision(step_seconds)
    finally:
        model.zero_grad(set_to_none=True)
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        for m, training in modes:
            m.training = training
