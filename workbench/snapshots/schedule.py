"""At which steps a run takes inspection snapshots: 0, then ``first``, 2 x ``first``, 4 x ``first``, ... below
``every``, then every ``every`` steps (and the run's last step, which the trainer adds).

Early training changes fastest (the unigram statistics are learned within the first hundred steps), so
the first snapshots are log-spaced; a regular interval afterwards keeps the count linear in run length at
a bounded cost. Steps 1 to 4 are left out by default (``first = 8``): on the sample and on Debian's
descriptions nothing measurable changes before step 8 (the stage meter moves by < 0.01 bit), and a
snapshot costs about one training step of a ``tiny`` model (see ``benchmarks/inspection_overhead.py``)."""

from __future__ import annotations


def is_snapshot_step(step: int, every: int, first: int = 1) -> bool:
    if step < every:
        return step == 0 or (step >= first and step % first == 0 and (step // first) & (step // first - 1) == 0)
    return step % every == 0


def snapshot_steps(last: int, every: int, first: int = 1) -> list[int]:
    """Every snapshot step from 0 through ``last`` (without the run's last step)."""
    return [s for s in range(last + 1) if is_snapshot_step(s, every, first)]
