"""Keep glibc's allocator from handing a training step's big buffers back to the kernel every step.

A CPU training step allocates and frees the same activation, logit and gradient buffers, several MB to
100s of MB each, every step. glibc serves blocks above its mmap threshold (128 KB, adapting up to 32 MB)
with a fresh ``mmap`` each and unmaps them on free, and returns free memory at the heap's top to the
kernel beyond its trim threshold: so every step page-faults its buffers in again. On the 2-core machine
this project is measured on, writing a fresh 37 MB tensor took 15 ms against 1.3 ms for a reused one, and
the tiny ModernBERT step ran ~1.4x faster with the buffers kept (``benchmarks/modernbert_step_profile.py
--allocator`` measures glibc as is, tuned here, and jemalloc/tcmalloc when installed).

``keep_freed_memory_for_reuse`` serves every block from the heap (no per-block mmap) and returns heap
memory to the kernel only beyond 1 GB free at its top. Peak memory is unchanged - a step reuses what the
last one freed - but the process's RSS stays near its peak instead of falling between steps. Linux with
glibc only; elsewhere it does nothing and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
TRIM_THRESHOLD = 1 << 30     # free memory at the heap's top goes back to the kernel beyond 1 GB only
TOP_PAD = 64 << 20           # the heap grows by 64 MB at a time

_tuned = False


def keep_freed_memory_for_reuse() -> bool:
    """Tune glibc's malloc for this process as above (once); True when it is tuned."""
    global _tuned
    if _tuned or not sys.platform.startswith("linux"):
        return _tuned
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version                              # glibc only (musl has no such knobs)
    except (OSError, AttributeError):
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    _tuned = all(libc.mallopt(option, value) == 1 for option, value in
                 ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD)))
    return _tuned
