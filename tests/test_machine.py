"""What cnnlab asks of the machine it runs on: the C allocator's handling of the memory a step frees."""

import os
import subprocess
import sys

import pytest

from cnnlab._machine import keep_freed_memory

GLIBC = (getattr(os, "confstr", lambda _: None)("CS_GNU_LIBC_VERSION") or "").startswith("glibc")

# a fresh process: allocate and free a 64 MiB tensor (above glibc's largest automatic mapping threshold, 32 MiB)
# twenty times, and count the page faults the kernel reports for it
FAULTS = """
import resource, sys, torch
if sys.argv[1] == "run":
    from cnnlab.classify import ClassifierConfig
    from cnnlab.train import fit
    fit(ClassifierConfig(run_dir=sys.argv[2], epochs=1, quiet=True, device="cpu"), log=lambda *a: None)
torch.ones(16 << 20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.ones(16 << 20)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(*args: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}  # conftest.py sets them for the suite
    out = subprocess.run([sys.executable, "-c", FAULTS, *args], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not GLIBC, reason="the setting is glibc's")
def test_after_a_cpu_run_the_process_reuses_freed_memory_instead_of_faulting_in_fresh_pages(tmp_path):
    fresh = _faults("plain")
    after_run = _faults("run", str(tmp_path / "run"))
    assert fresh > 5 * 16_384, fresh  # 16,384 pages of 4 KiB a tensor, each returned to the system when freed
    assert after_run < fresh / 20, (after_run, fresh)


def test_elsewhere_than_glibc_the_allocator_is_left_as_it_is(monkeypatch):
    monkeypatch.setattr(os, "confstr", lambda name: None)  # e.g. musl
    assert keep_freed_memory.__wrapped__() is False
    monkeypatch.delattr(os, "confstr")  # e.g. Windows
    assert keep_freed_memory.__wrapped__() is False
