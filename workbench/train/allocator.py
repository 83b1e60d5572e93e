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

``restart_with_huge_pages`` has the program's entry points start it again, once, with glibc's
``glibc.malloc.hugetlb=1`` tunable: malloc then asks the kernel for transparent huge pages (2 MB) for the
heap it grows. A step's big buffers are walked over and over, and with 4 KB pages every walk misses the
TLB page after page: the mini ModernBERT step ran 297-307 -> 276-285 ms on the 2-core Xeon, tiny 86-89
-> 85-87 (bf16, full rows; ``transformers``' own step gained 4-5% in the same process), with the same
RSS. A tunable is read when a program starts, hence the restart; PyTorch's ``THP_MEM_ALLOC_ENABLE``,
which needs none, gained less (286-290 ms) and grew the RSS by 200-300 MB.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
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


HUGE_PAGES = "glibc.malloc.hugetlb"
THP_SETTING = "/sys/kernel/mm/transparent_hugepage/enabled"


def huge_pages_environment(environ: dict[str, str], libc_version: str, thp_setting: str) -> dict[str, str] | None:
    """The environment to start this program again in so that malloc takes transparent huge pages, or
    None where there is nothing to gain: a glibc before 2.35 has no such tunable, a kernel set to
    ``[never]`` (or without THP) gives none, and a ``GLIBC_TUNABLES`` that already names the tunable is
    the user's choice (``glibc.malloc.hugetlb=0`` turns it off).

    ``libc_version``: ``os.confstr("CS_GNU_LIBC_VERSION")`` ("glibc 2.36"); ``thp_setting``: the kernel's
    THP setting file's text ("always [madvise] never")."""
    name, _, version = libc_version.partition(" ")
    try:
        numbers = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return None
    tunables = environ.get("GLIBC_TUNABLES", "")
    if name != "glibc" or numbers < (2, 35) or "[never]" in thp_setting or "[" not in thp_setting:
        return None
    if any(item.split("=", 1)[0] == HUGE_PAGES for item in tunables.split(":")):
        return None
    return {**environ, "GLIBC_TUNABLES": ":".join(filter(None, (tunables, f"{HUGE_PAGES}=1")))}


def huge_pages_environment_here(environ: dict[str, str]) -> dict[str, str] | None:
    """``huge_pages_environment`` for this machine's glibc and kernel (None off Linux or where they
    cannot be read)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc_version = os.confstr("CS_GNU_LIBC_VERSION") or ""
        with open(THP_SETTING, encoding="ascii") as f:
            thp_setting = f.read()
    except (OSError, ValueError):
        return None
    return huge_pages_environment(environ, libc_version, thp_setting)


def restart_with_huge_pages() -> None:
    """Start this program again (``exec``: the same process, arguments and environment) with malloc on
    transparent huge pages, where ``huge_pages_environment`` says it gains; otherwise return. For entry
    points only, before any work: nothing after this call runs in the first start."""
    environment = huge_pages_environment_here(dict(os.environ)) if getattr(sys, "orig_argv", None) else None
    if environment is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environment)
    except OSError:
        return
