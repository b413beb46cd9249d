"""Achieved training FLOP/s against the machine's measured matmul peak, and the bf16 speed-up.

For each model (resnet18 and vgg11 at 32x32, batch 128): the FLOPs of one training step (forward and
backward) are counted with ``torch.utils.flop_counter``; a step (forward, backward, fused SGD update, as the
engine runs it) is timed; achieved FLOP/s = FLOPs / time. The peak is measured in the same run: the best
FLOP/s of large square matmuls (fp32, and bf16 for the bf16 rows). Prints utilisation and bf16/fp32 speed;
bf16 only where the CPU has it natively (``cnnlab.native_bf16()``).

    python benchmarks/flops_utilization.py [--steps 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, measures_bf16, row  # noqa: E402

import cnnlab  # noqa: E402


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeat: int = 8) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = 0.0
    for _ in range(repeat):
        t = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


def step_fn(model, x, y, precision: str):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, fused=True)

    def step():
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
        with ctx:
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def measure(name: str, precision: str, steps: int, batch: int = 128) -> tuple[float, float]:
    torch.manual_seed(0)
    model = cnnlab.create_model(name, num_classes=10).to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    step = step_fn(model, x, y, precision)
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    step()
    best = float("inf")
    for _ in range(steps):
        t = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t)
    return flops / best, batch / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(machine())
    bf16 = measures_bf16()
    peak32 = matmul_peak(torch.float32)
    peaks = f"fp32 {peak32 / 1e9:.0f} GFLOP/s"
    if bf16:
        peaks += f", bf16 {matmul_peak(torch.bfloat16) / 1e9:.0f} GFLOP/s"
    print(f"measured matmul peak: {peaks} ({torch.get_num_threads()} threads)")
    print(row("model (32x32, batch 128)", "precision", "GFLOP/s", "of fp32 peak", "images/s",
              widths=(26, 10, 10, 14, 10)))
    for name in ("resnet18", "vgg11"):
        speeds = {}
        for precision in ("fp32", "bf16") if bf16 else ("fp32",):
            achieved, ips = measure(name, precision, args.steps)
            speeds[precision] = ips
            print(row(name, precision, f"{achieved / 1e9:.0f}", f"{100 * achieved / peak32:.0f}%", f"{ips:.0f}",
                      widths=(26, 10, 10, 14, 10)), flush=True)
        if bf16:
            print(f"  bf16 speed-up over fp32: {speeds['bf16'] / speeds['fp32']:.2f}x")


if __name__ == "__main__":
    main()
