"""What this machine has: the CPU cores this process may use and the memory it can still take.

A leaf module: it imports nothing from cnnlab.
"""

from __future__ import annotations

import functools
import os


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity, which a container or ``taskset`` may limit)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def available_memory(device=None) -> int | None:
    """Bytes that can still be allocated: on a CUDA ``device`` its free memory, else (the CPU) the smaller of
    the system's available memory and the container's limit; None where it cannot be told."""
    kind = getattr(device, "type", device or "cpu")
    if kind == "cuda":
        import torch

        return torch.cuda.mem_get_info(device)[0]
    if kind != "cpu":
        return None
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f, open("/sys/fs/cgroup/memory.current") as g:
            limit = f.read().strip()
            if limit != "max":
                found.append(int(limit) - int(g.read().strip()))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


@functools.cache  # read once: the CPU does not change while a process runs
def cpu_info() -> tuple[str, frozenset[str]]:
    """The CPU's model name and its feature flags (``/proc/cpuinfo``; the flags are empty where it cannot be
    read)."""
    import platform

    name, flags = platform.processor() or platform.machine(), frozenset()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = frozenset(value.split())
                    break
    except OSError:
        pass
    return name, flags


def native_bf16() -> bool | None:
    """Whether the CPU computes in bf16 natively (AVX512-BF16 or AMX-BF16); None where its flags cannot be read.
    Without them PyTorch emulates bf16 arithmetic, many times slower than fp32."""
    flags = cpu_info()[1]
    return bool(flags & {"avx512_bf16", "amx_bf16"}) if flags else None


def cpu_description() -> str:
    """The CPU's model name and its widest vector units (``Intel(R) Xeon(R) Processor, AVX-512, AMX, 2 cores``),
    for printing beside any speed figure: the same code runs at very different speeds on different CPUs."""
    name, flags = cpu_info()
    units = [label for flag, label in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("amx_tile", "AMX"),
                                       ("avx512_bf16", "native bf16")) if flag in flags]
    if "AVX-512" in units and "AVX2" in units:
        units.remove("AVX2")
    return ", ".join([name, *units, f"{available_cores()} cores"])
