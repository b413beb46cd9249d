"""Mixed precision: the autocast context every task's forward pass runs in."""

from __future__ import annotations

from contextlib import nullcontext

import torch


def autocast(device: torch.device, precision: str = "fp32"):
    """``torch.autocast`` to bf16 or fp16 on ``device``; no change for fp32."""
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
