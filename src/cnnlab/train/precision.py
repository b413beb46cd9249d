"""Mixed precision: which one a run uses, and the autocast context every task's forward pass runs in."""

from __future__ import annotations

from contextlib import nullcontext

import torch

from .._machine import cpu_info, native_bf16
from ..errors import CnnlabError


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision a run uses on ``device``: ``auto`` is bf16 on a CUDA GPU that has it (fp16 with loss
    scaling on one that has not) and fp32 elsewhere: on CPUs, even with AMX, bf16 autocast pays only for
    heavy convolutions (0.82-0.99x for LeNet-5, 1.8-3.2x for the small-input ResNet-18, about 1.0x for
    MobileNet-V2 and VGG-11 on an Intel Xeon with AMX: the README's Performance section) and costs precision,
    and fp16 is fast only on the few CPUs with fp16 units. An explicit bf16 on a CPU without native bf16 is
    refused: it would run many times slower than fp32."""
    if precision == "auto":
        if device.type == "cuda":  # native bf16 from Ampere on (compute capability 8); emulated before, slow
            return "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp16"
        return "fp32"
    if precision == "bf16" and device.type == "cpu" and native_bf16() is False:
        raise CnnlabError(f"--precision bf16: this CPU ({cpu_info()[0]}) has no native bf16 (AVX512-BF16 or AMX), "
                          f"so bf16 would run many times slower than fp32; use --precision fp32 (or auto)")
    return precision


def autocast(device: torch.device, precision: str = "fp32"):
    """``torch.autocast`` to bf16 or fp16 on ``device``; no change for fp32. ``auto`` is resolved here as a run
    resolves it (fp32 on a CPU): a loop called outside :func:`cnnlab.train.fit` with a config's ``auto`` must not
    fall through to fp16, which a CPU without fp16 units runs many times slower."""
    if precision == "auto":
        precision = resolve_precision(precision, device)
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
