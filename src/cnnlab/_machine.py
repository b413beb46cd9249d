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


def native_fp16() -> bool | None:
    """Whether the CPU has AMX-FP16, the matrix units that oneDNN runs fp16 convolutions and matrix products on;
    None where its flags cannot be read. Without them PyTorch's fp16 training steps run many times slower than
    fp32, AVX512-FP16 included (on an Intel Xeon with AVX512-FP16 but no AMX-FP16: LeNet-5's step 13x slower,
    the small-input ResNet-18's several hundred times)."""
    flags = cpu_info()[1]
    return "amx_fp16" in flags if flags else None


def cpu_description() -> str:
    """The CPU's model name and its widest vector units (``Intel(R) Xeon(R) Processor, AVX-512, AMX, 2 cores``),
    for printing beside any speed figure: the same code runs at very different speeds on different CPUs."""
    name, flags = cpu_info()
    units = [label for flag, label in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("amx_tile", "AMX"),
                                       ("avx512_bf16", "native bf16")) if flag in flags]
    if "AVX-512" in units and "AVX2" in units:
        units.remove("AVX2")
    return ", ".join([name, *units, f"{available_cores()} cores"])


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
KEEP_FREED_BYTES = 1 << 30


def _glibc():
    """glibc's functions (ctypes), or None on another C library (musl, macOS, Windows)."""
    import ctypes

    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return None
        return ctypes.CDLL(None)
    except (AttributeError, ValueError, OSError):  # no confstr (Windows), a name it does not know (macOS)
        return None


def glibc() -> bool:
    """Whether this process runs on glibc (the C library whose allocator :func:`keep_freed_memory` sets)."""
    return _glibc() is not None


def allocator_variable(name: str) -> bool:
    """Whether the environment variable ``name`` configures glibc's allocator (``MALLOC_...``,
    ``GLIBC_TUNABLES``) or may replace it (``LD_PRELOAD``, e.g. jemalloc)."""
    return name.startswith("MALLOC_") or name in ("GLIBC_TUNABLES", "LD_PRELOAD")


def user_set_allocator() -> bool:
    """Whether the environment sets the allocator (:func:`allocator_variable`): then cnnlab leaves it as it is."""
    return any(allocator_variable(k) for k in os.environ)


@functools.cache  # once a process: the setting is the process's
def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep the memory a training step frees, for the next step to reuse. True where it
    took the setting; False where nothing changed: another C library than glibc, or an environment that
    configures the allocator itself (:func:`user_set_allocator`).

    By default glibc gives every block of 32 MiB or more a mapping of its own, returned to the system when freed,
    and returns the free top of its heap beyond twice the largest such block: a step's activations and gradients,
    allocated afresh each step, then fault in page by page every step (the small-input ResNet-18 at 64x64, batch
    32: about 230,000 page faults a step on an Intel Xeon, and 1.10x the steps/s without them; README, Freed
    memory, ``benchmarks/allocator.py``). This keeps blocks up to ``KEEP_FREED_BYTES`` (1 GiB) in the heap and up
    to as much free memory at its top (a glibc that refuses so high a mapping threshold, as older ones did, maps
    nothing instead); larger blocks are mapped and returned as before. It is the process's setting, and it
    stays after the run: the memory the process has freed is reused by its later allocations rather than
    returned, as PyTorch's caching allocator keeps a GPU's (:func:`release_freed_memory` hands it back). The
    same as starting Python with ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` at 1 GiB."""
    import ctypes

    libc = _glibc()
    if libc is None or user_set_allocator():
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    kept = mallopt(_M_MMAP_THRESHOLD, KEEP_FREED_BYTES) or mallopt(_M_MMAP_MAX, 0)
    return bool(mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES)) and bool(kept)


def release_freed_memory() -> bool:
    """Return the free memory of glibc's heaps to the system (``malloc_trim``), where :func:`keep_freed_memory`
    took its setting in this process: what a run kept for its steps, once it is over. True where it did; nothing
    is done otherwise (an allocator the environment configures stays as it is)."""
    if not (keep_freed_memory.cache_info().currsize and keep_freed_memory()):
        return False
    _glibc().malloc_trim(0)
    return True
