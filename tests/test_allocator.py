from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pff.allocator import glibc, keep_freed_memory

# A child process allocates and touches 80 MB, frees it, then 64 MB: the minor page faults of the
# second allocation say whether it reused the freed memory (0) or was mapped afresh (one per 4 KB page).
_CHILD = """
import resource, sys, torch
from pff.allocator import keep_freed_memory
if sys.argv[1] == "kept":
    assert keep_freed_memory()
def touch(mb):
    a = torch.empty(mb << 20, dtype=torch.uint8); a[::4096] = 1; del a
touch(80)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch(64)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(glibc() is None, reason="keep_freed_memory acts on glibc only (Linux); elsewhere it is a no-op")
def test_freed_memory_is_reused():
    assert _faults("kept") < 64 * 256 // 16  # 64 MB is 16384 pages
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if thp.exists() and "[always]" not in thp.read_text():  # huge pages would fault 2 MB at a time
        assert _faults("system") >= 64 * 256 // 2  # the negative control: glibc's default maps it afresh


def test_keep_freed_memory_is_idempotent():
    assert keep_freed_memory() == keep_freed_memory() == (glibc() is not None)
