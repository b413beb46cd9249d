"""What keeping freed memory buys a training step: glibc's default allocator against the setting a cnnlab run on a
CPU makes (``cnnlab.keep_freed_memory``).

By default glibc maps every block of 32 MiB or more afresh and returns it to the system when freed, so a step's
large activations and gradients fault in page by page every step. A cnnlab run on a CPU asks glibc to keep blocks
up to 1 GiB in its heap. The setting belongs to the whole process, so each measurement runs in a child process of
its own (training steps of a fresh model at batch 32, fused Adam, fp32, after warm-up steps); the two settings
take turns, and each one's best run counts. Prints steps/s, page faults per step and the ratio.

    python benchmarks/allocator.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, row, stepper  # noqa: E402

# (label, model, builder arguments, input channels, side, steps a run)
CASES = [
    ("lenet5 32x32", "lenet5", {}, 1, 32, 200),
    ("resnet18 (small input) 32x32", "resnet18", {"small_input": True}, 3, 32, 10),
    ("resnet18 (small input) 64x64", "resnet18", {"small_input": True}, 3, 64, 4),
    ("mobilenet_v2 (small input) 32x32", "mobilenet_v2", {"small_input": True}, 3, 32, 10),
]


def child(label: str, keep: bool) -> None:
    """One measurement, printed as JSON: seconds and page faults for a run of the case's steps."""
    import torch

    from cnnlab import keep_freed_memory

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    if keep and not keep_freed_memory():
        raise SystemExit("the C library is not glibc, or the environment sets its allocator: nothing to compare")
    _, name, kwargs, channels, side, steps = next(c for c in CASES if c[0] == label)
    run = stepper(name, kwargs, channels, side, steps)  # built and warmed up
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = time.perf_counter()
    run()
    seconds = time.perf_counter() - t
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    print(json.dumps({"seconds": seconds, "faults": faults / steps, "steps": steps}))


def measure(label: str, keep: bool) -> dict:
    # glibc's defaults, as most users have them (the variables a run would leave alone: README, Freed memory)
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("MALLOC_") or k in ("GLIBC_TUNABLES", "LD_PRELOAD"))}
    out = subprocess.run([sys.executable, __file__, "--child", label, *(["--keep"] if keep else [])],
                         capture_output=True, text=True, env=env, check=False)
    if out.returncode:
        raise SystemExit((out.stderr.strip().splitlines() or [f"a measurement ended with code {out.returncode}"])[-1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each setting, taking turns; the best counts")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")
    if args.child:
        return child(args.child, args.keep)
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    print(machine())
    print(f"training steps/s, each setting in its own process, best of {args.repeat}")
    widths = (34, 14, 14, 14, 14, 8)
    print(row("case", "glibc default", "faults/step", "kept", "faults/step", "ratio", widths=widths))
    for label, *_ in CASES:
        best = {}
        for _ in range(args.repeat):
            for keep in (False, True):
                m = measure(label, keep)
                if keep not in best or m["seconds"] < best[keep]["seconds"]:
                    best[keep] = m
        rate = {k: m["steps"] / m["seconds"] for k, m in best.items()}
        print(row(label, f"{rate[False]:.1f}", f"{best[False]['faults']:,.0f}", f"{rate[True]:.1f}",
                  f"{best[True]['faults']:,.0f}", f"{rate[True] / rate[False]:.2f}x", widths=widths), flush=True)


if __name__ == "__main__":
    main()
