"""Keep freed memory in the process: large tensors reuse it instead of faulting in fresh pages.

glibc's ``malloc`` serves every block over its mmap threshold (128 KB at
start, rising with use to at most 32 MB) with a fresh ``mmap`` and returns
it to the system on ``free``; the next tensor of that size then touches
every one of its pages again, a page fault per 4 KB. On a CPU that is much
of a restore's time: a 1x1 head writing 64 maps of 0.25 MP spent 41 ms in
a matrix product that takes 12 ms in memory already mapped
(benchmarks/bench_restore.py has the whole-run effect).
:func:`keep_freed_memory` tells malloc to take large blocks from its heap
and not to trim the heap, so freed tensors are reused; PyTorch's CPU
tuning guide reaches the same end by preloading jemalloc or tcmalloc.

The cost: memory freed by the process stays with it (its resident size
stays at its peak) until it exits. The ``pff`` command calls it at start;
a program using the library decides for itself.
"""
from __future__ import annotations

import ctypes
import sys

# mallopt parameters, glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def glibc() -> ctypes.CDLL | None:
    """The process's C library if it is glibc (Linux), else ``None`` (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only: musl's mallopt does nothing
    except (OSError, AttributeError):
        return None
    return libc


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (process-wide); ``True`` if it took effect.

    A no-op returning ``False`` where the C library is not glibc (:func:`glibc`):
    there the allocator is left as it is. Safe to call more than once.
    """
    libc = glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success: no block from mmap, and no trimming below 2 GB free at the heap's top.
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
