"""What cnnlab asks of the machine it runs on: the C allocator's handling of the memory a step frees; what it reads of
the CPU."""

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab import _machine
from cnnlab._machine import allocator_variable, glibc, keep_freed_memory, release_freed_memory, user_set_allocator


def _huge_pages_always() -> bool:  # then a large block faults in 2 MiB at a time, and the counts below mean little
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return thp.is_file() and "[always]" in thp.read_text()


# a fresh process: allocate and free a 64 MiB tensor (above glibc's largest automatic mapping threshold, 32 MiB)
# twenty times, and count the page faults the kernel reports for it
FAULTS = """
import resource, sys, torch
if sys.argv[1] == "run":
    from cnnlab.classify import ClassifierConfig
    from cnnlab.train import fit
    fit(ClassifierConfig(run_dir=sys.argv[2], epochs=1, quiet=True, device="cpu"), log=lambda *a: None)
    from cnnlab import release_freed_memory
    print("released" if release_freed_memory() else "kept")  # the run's setting stays; its free memory goes back
torch.ones(16 << 20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.ones(16 << 20)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(*args: str, **env: str) -> tuple[int, str]:
    # glibc's defaults: conftest.py sets MALLOC_... for the suite's own processes
    env = {k: v for k, v in os.environ.items() if not allocator_variable(k)} | env
    out = subprocess.run([sys.executable, "-c", FAULTS, *args], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1]), out.stdout.split()[0]


@pytest.mark.skipif(not glibc() or _huge_pages_always(), reason="glibc's setting, counted in pages of the base size")
def test_after_a_cpu_run_the_process_reuses_freed_memory_instead_of_faulting_in_fresh_pages(tmp_path):
    pages = (64 << 20) // resource.getpagesize()  # of one tensor
    fresh = _faults("plain")[0]
    after_run, released = _faults("run", str(tmp_path / "run"))
    assert released == "released"
    assert fresh > 5 * pages, fresh  # each returned to the system when freed, and faulted in again
    # kept and reused: at most one of the twenty faulted in fresh (on the AMD EPYC with AVX-512, one did in about
    # half of the runs: 16,384 pages, against 327,700 with glibc's defaults)
    assert after_run < 2 * pages, (after_run, fresh)


@pytest.mark.skipif(not glibc() or _huge_pages_always(), reason="glibc's setting, counted in pages of the base size")
def test_an_allocator_the_environment_configures_is_left_as_it_is(tmp_path):
    pages = (64 << 20) // resource.getpagesize()
    # the user's own choice (here: glibc's default threshold, spelt out) is kept through a run
    faults, released = _faults("run", str(tmp_path / "run"), MALLOC_TRIM_THRESHOLD_=str(128 << 10))
    assert faults > 5 * pages and released == "kept"


def _clear_allocator_variables(monkeypatch) -> None:
    for name in [n for n in os.environ if allocator_variable(n)]:
        monkeypatch.delenv(name)


def test_elsewhere_than_glibc_the_allocator_is_left_as_it_is(monkeypatch):
    _clear_allocator_variables(monkeypatch)
    monkeypatch.setattr(os, "confstr", lambda name: None, raising=False)  # e.g. musl
    assert keep_freed_memory.__wrapped__() is False
    monkeypatch.delattr(os, "confstr", raising=False)  # e.g. Windows
    assert keep_freed_memory.__wrapped__() is False


def test_the_environment_that_sets_the_allocator_is_recognised(monkeypatch):
    _clear_allocator_variables(monkeypatch)
    assert not user_set_allocator()
    for name, value in (("MALLOC_ARENA_MAX", "2"), ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0"),
                        ("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")):
        monkeypatch.setenv(name, value)
        assert user_set_allocator(), name
        monkeypatch.delenv(name)


def test_only_memory_that_cnnlab_asked_to_keep_is_released(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")  # the environment sets the allocator: neither call touches it
    keep_freed_memory.cache_clear()
    try:
        assert release_freed_memory() is False  # nothing kept yet
        assert keep_freed_memory() is False and release_freed_memory() is False
    finally:
        keep_freed_memory.cache_clear()


@pytest.mark.parametrize("flags, bf16, fp16", [
    ({"avx2", "fma"}, False, False),                                   # an AMD EPYC of Zen 3
    ({"avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16"}, True, False),  # an Intel Xeon with AMX-BF16 only
    ({"avx512f", "avx512_bf16", "amx_bf16", "amx_fp16"}, True, True),
    (set(), None, None),                                               # flags unreadable: not known
])
def test_native_bf16_and_fp16_are_read_from_the_cpus_flags(monkeypatch, flags, bf16, fp16):
    monkeypatch.setattr(_machine, "cpu_info", lambda: ("a CPU", frozenset(flags)))
    assert (_machine.native_bf16(), _machine.native_fp16()) == (bf16, fp16)
