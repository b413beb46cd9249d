"""Large data: a generated image folder trains through the streaming path with memory that does not grow with
the dataset, and at what speed against the in-memory path.

Writes folders of small PNG files (32x32 RGB, 10 classes of coloured bars and noise) at two sizes, then runs
``cnnlab train --data folder:DIR --epochs 1`` as a separate process on each:

- streamed: ``CNNLAB_MEMORY_LIMIT_GB`` far below the decoded size of either folder, so the images stay on disk
  and DataLoader workers decode them batch by batch;
- in memory: the smaller folder again without the limit, so it is decoded once into tensors.

While a run trains, the benchmark samples the proportional set size (PSS: shared pages divided among the
processes that share them, so the DataLoader workers are not counted twice) of the process and its workers
every 0.1 s, and prints the peak, with the training images per second from the run's metrics.csv.

    python benchmarks/streaming_memory.py [--sizes 10000 50000] [--folder DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, row  # noqa: E402


def write_folder(root: Path, count: int, classes: int = 10, seed: int = 0) -> None:
    """``count`` PNG files in ``classes`` sub-folders; class k has a bar at row 3k on a noisy background."""
    rng = np.random.default_rng(seed)
    for k in range(classes):
        (root / f"class{k}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        k = i % classes
        pixels = rng.integers(0, 120, (32, 32, 3), dtype=np.uint8)
        pixels[3 * k: 3 * k + 3, :, k % 3] = 255
        Image.fromarray(pixels).save(root / f"class{k}" / f"{i}.png", compress_level=1)


def pss_mib(pid: int) -> float:
    """The PSS of ``pid`` and all its descendants, in MiB (Linux: /proc/PID/smaps_rollup)."""
    total = 0
    for p in [pid, *descendants(pid)]:
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            pass
    return total / 1024


def descendants(pid: int) -> list[int]:
    children = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = open(f"/proc/{pid}/task/{task}/children").read().split()
            children += [int(c) for c in text]
    except OSError:
        return []
    return children + [d for c in children for d in descendants(c)]


def train(folder: Path, run_dir: Path, limit_gb: str | None) -> tuple[float, float, float]:
    """(peak PSS in MiB, training images per second, seconds of the whole process) of one epoch."""
    env = dict(os.environ)
    env.pop("CNNLAB_MEMORY_LIMIT_GB", None)
    if limit_gb is not None:
        env["CNNLAB_MEMORY_LIMIT_GB"] = limit_gb
    cmd = [sys.executable, "-m", "cnnlab", "train", "--data", f"folder:{folder}", "--image-size", "32",
           "--epochs", "1", "--run-dir", str(run_dir), "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, pss_mib(proc.pid))
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"cnnlab train failed:\n{err}")
    if limit_gb is not None and "streamed from disk" not in out:
        raise SystemExit("the run was not streamed from disk: " + out.splitlines()[0])
    with open(run_dir / "metrics.csv") as f:
        record = next(csv.DictReader(f))
    meta = (run_dir / "meta.json").read_text()
    import json

    images = json.loads(meta)["splits"]["train"]
    return peak, images / float(record["seconds"]), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 50_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--folder", default=None, help="where to write the folders (default: a temporary one)")
    args = parser.parse_args()
    print(machine())
    limit = "0.01"  # GiB: 10 MiB, against 117 MiB (10,000 images) and 586 MiB (50,000) decoded as float32
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        root = Path(tmp)
        rows = []
        for n in args.sizes:
            t0 = time.perf_counter()
            write_folder(root / f"images{n}", n)
            print(f"wrote {n:,} PNG files in {time.perf_counter() - t0:.1f}s "
                  f"({n * 32 * 32 * 3 * 4 / 2**20:.0f} MiB decoded as float32)", flush=True)
        for n in args.sizes:
            peak, speed, wall = train(root / f"images{n}", root / f"run-stream-{n}", limit)
            rows.append((f"streamed, {n:,} files", peak, speed, wall))
            print(row(*[rows[-1][0], f"{peak:,.0f}", f"{speed:,.0f}", f"{wall:.1f}"], widths=(26, 16, 14, 10)),
                  flush=True)
        small = args.sizes[0]
        peak, speed, wall = train(root / f"images{small}", root / f"run-memory-{small}", None)
        rows.append((f"in memory, {small:,} files", peak, speed, wall))
    print()
    print(row("path", "peak PSS (MiB)", "train img/s", "process s", widths=(26, 16, 14, 10)))
    for name, peak, speed, wall in rows:
        print(row(name, f"{peak:,.0f}", f"{speed:,.0f}", f"{wall:.1f}", widths=(26, 16, 14, 10)))
    s_small, s_large, memory = rows
    print(f"streamed peak memory, {args.sizes[1]:,} against {args.sizes[0]:,} files: "
          f"{s_large[1] / s_small[1]:.2f}x for {args.sizes[1] / args.sizes[0]:.0f}x the data")
    print(f"streamed speed against in memory ({small:,} files): {s_small[2] / memory[2]:.2f}x")


if __name__ == "__main__":
    main()
