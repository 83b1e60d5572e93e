"""The program's start on transparent huge pages (``workbench.train.allocator``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from workbench.train.allocator import HUGE_PAGES, huge_pages_environment, huge_pages_environment_here

MADVISE = "always [madvise] never\n"


def test_huge_pages_are_asked_for_where_glibc_and_the_kernel_give_them():
    assert huge_pages_environment({"PATH": "/bin"}, "glibc 2.36", MADVISE) == {
        "PATH": "/bin", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}
    assert huge_pages_environment({}, "glibc 2.35", "[always] madvise never")["GLIBC_TUNABLES"] == \
        "glibc.malloc.hugetlb=1"
    # the user's other tunables stay, in order
    assert huge_pages_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, "glibc 2.39", MADVISE) == {
        "GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"}


@pytest.mark.parametrize("environ, libc, thp", [
    ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, "glibc 2.36", MADVISE),         # the user said no
    ({"GLIBC_TUNABLES": "a.b=1:glibc.malloc.hugetlb=1"}, "glibc 2.36", MADVISE),   # already on: no second start
    ({}, "glibc 2.34", MADVISE),                                                    # no such tunable yet
    ({}, "glibc 2.36", "always madvise [never]\n"),                                 # the kernel gives none
    ({}, "glibc 2.36", ""),
    ({}, "musl 1.2", MADVISE),
    ({}, "", MADVISE),
])
def test_nothing_changes_where_huge_pages_gain_nothing_or_were_decided(environ, libc, thp):
    assert huge_pages_environment(environ, libc, thp) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and Linux's THP")
@pytest.mark.parametrize("given", [None, "glibc.malloc.hugetlb=0"])
def test_the_program_starts_again_once_with_the_tunable_and_keeps_its_arguments(given):
    code = ("import os, sys; from workbench.train.allocator import restart_with_huge_pages; "
            "restart_with_huge_pages(); print(os.environ.get('GLIBC_TUNABLES', ''), sys.argv[1:])")
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if given:
        env["GLIBC_TUNABLES"] = given
    out = subprocess.run([sys.executable, "-c", code, "--x", "a b"], env=env, capture_output=True, text=True,
                         check=True, timeout=120).stdout.splitlines()
    assert len(out) == 1                                   # the first start printed nothing: it was replaced
    if given:
        expected = given
    else:
        expected = f"{HUGE_PAGES}=1" if huge_pages_environment_here({}) is not None else ""
    assert out[0] == f"{expected} ['--x', 'a b']"
