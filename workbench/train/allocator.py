"""Keep glibc's allocator from handing a training step's big buffers back to the kernel every step.

A CPU training step allocates and frees the same activation and gradient buffers, several MB each, every
step. glibc serves blocks above its mmap threshold (128 KB, adapting up to 32 MB) with fresh ``mmap``
calls and gives freed memory at the top of the heap back to the kernel (trim threshold), so each step
page-faults its buffers in again: on the 2-core machine this project is measured on, the tiny ModernBERT
step ran 1.35x faster with the limits raised (``benchmarks/modernbert_step_profile.py --allocators``
prints glibc as is, glibc tuned here, jemalloc and tcmalloc). Peak memory is unchanged: what a step frees
is kept for the next one, not returned in between (the process's RSS stays at its peak instead of falling
back after each step). Linux with glibc only; elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 32 << 20    # glibc's largest allowed value: blocks below it come from the heap, and are reused
TRIM_THRESHOLD = 1 << 30     # free memory at the heap's top is returned to the kernel beyond 1 GB only
TOP_PAD = 64 << 20           # the heap grows by 64 MB at a time

_tuned = False


def keep_freed_memory_for_reuse() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (once); True when they were set."""
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version                              # glibc only (musl has no mallopt knobs)
    except (OSError, AttributeError):
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    _tuned = all(libc.mallopt(option, value) == 1 for option, value in
                 ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD)))
    return _tuned
