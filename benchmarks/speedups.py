"""What each speed option buys, per model, on the CPU it runs on: bf16 autocast, channels-last memory and
torch.compile, each against plain fp32 in the same run (training steps per second, batch 32, fused Adam).

``--precision bf16`` is measured only where the CPU has native bf16 (cnnlab refuses it elsewhere: it is many
times slower there). torch.compile's first steps compile the model (tens of seconds on a CPU); they are run
before the clock starts, so its row is the speed of the compiled steps, not the time to a result. Each variant
runs ``--repeat`` times, taking turns with plain fp32, and its best run counts. Where bf16 is measured, the last
column is what ``--precision auto`` chooses for the case, by the measurement a run makes of its own step (in the
model's own memory layout), with the speed-up that measurement saw.

    python benchmarks/speedups.py [--steps 30] [--repeat 3] [--no-compile]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# inductor's pool of compile workers would keep loading the CPU while later cases are timed
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, measures_bf16, row, stepper, timed  # noqa: E402

CASES = [  # (model, builder arguments, input channels, side)
    ("lenet5", {}, 1, 32),
    ("resnet18", {"small_input": True}, 3, 32),
    ("resnet18", {"small_input": True}, 3, 64),
    ("mobilenet_v2", {"small_input": True}, 3, 32),
    ("vgg11_bn", {"small_input": True}, 3, 32),
]


def ratios(case, steps: int, repeat: int, options: list) -> tuple[float, list[float]]:
    """fp32 steps/s and each option's speed over it, the variants taking turns (see ``_common.timed``)."""
    best = timed({"fp32": stepper(*case, steps), **{n: stepper(*case, steps, **o) for n, o in options}}, repeat)
    fp32 = best.pop("fp32")
    return steps / fp32, [fp32 / t for t in best.values()]


def auto_choice(name, kwargs, channels, side) -> str:
    """What ``--precision auto`` picks for a case on this CPU: the run's own measurement of its step."""
    import torch

    import cnnlab
    from cnnlab.classify import ClassificationTask
    from cnnlab.train.precision import measure_precision

    torch.manual_seed(0)
    model = cnnlab.create_model(name, num_classes=10, in_chans=channels, **kwargs)
    channels_last = bool(model.meta.channels_last)  # the layout a run on a CPU takes for this model
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    batch = (torch.randn(32, channels, side, side), torch.randint(0, 10, (32,)))
    choice, seconds = measure_precision(model, [batch], ClassificationTask(10), torch.device("cpu"), channels_last)
    return f"{choice} ({seconds['fp32'] / seconds['bf16']:.2f}x)" if seconds else f"{choice} (short step)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant, taking turns; the best counts")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (slow to compile on a CPU)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be 1 or more (runs of each variant), not {args.repeat}")
    print(machine())
    bf16 = measures_bf16()
    options = [("bf16", {"bf16": True})] if bf16 else []
    options += [("channels-last", {"channels_last": True})]
    if not args.no_compile:
        options += [("compile", {"compile": True})]
    widths = (26, 12, *(14,) * len(options))
    # every eager measurement first: compiling leaves threads and caches behind that would slow what follows
    eager = [o for o in options if not o[1].get("compile")]
    base, measured = [], []
    for case in CASES:
        print(f"measuring {case[0]} {case[3]}x{case[3]}", file=sys.stderr, flush=True)
        fp32, speedups = ratios(case, args.steps, args.repeat, eager)
        base.append(fp32)
        measured.append(speedups)
    auto = [auto_choice(*case) for case in CASES] if bf16 else []  # eager too: before anything compiles
    if len(eager) < len(options):
        for case, speedups in zip(CASES, measured, strict=True):
            print(f"compiling {case[0]} {case[3]}x{case[3]}", file=sys.stderr, flush=True)
            speedups += ratios(case, args.steps, args.repeat, [("compile", {"compile": True})])[1]
    if bf16:
        widths += (20,)
    print(row("case", "fp32 step/s", *(f"{name} x" for name, _ in options), *(["auto picks"] if bf16 else []),
              widths=widths))
    for i, ((name, _, _, side), fp32, speedups) in enumerate(zip(CASES, base, measured, strict=True)):
        print(row(f"{name} {side}x{side}", f"{fp32:.1f}", *(f"{r:.2f}x" for r in speedups), *auto[i:i + 1],
                  widths=widths))


if __name__ == "__main__":
    main()
