"""At which steps a run takes inspection snapshots: 0, 1, 2, 4, 8, ... below ``every``, then every ``every`` steps.

Early training changes fastest (heads form, unigram statistics are learned within the first hundred
steps), so the first snapshots are log-spaced; a regular interval afterwards keeps the count linear in
run length at a bounded cost (see ``benchmarks/inspection_overhead.py``)."""

from __future__ import annotations


def is_snapshot_step(step: int, every: int) -> bool:
    if step < every:
        return step == 0 or step & (step - 1) == 0
    return step % every == 0


def snapshot_steps(last: int, every: int) -> list[int]:
    """Every snapshot step from 0 through ``last``."""
    early = [0] + [1 << k for k in range(max(0, every).bit_length()) if (1 << k) < min(every, last + 1)]
    return early + list(range(every, last + 1, every))
