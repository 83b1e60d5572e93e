"""The statuses of runs, sweeps and sweep items: named once, stored as their text. No SQLAlchemy here, so the
window can name them before the run database is open."""

from __future__ import annotations

from enum import StrEnum

# Status of a run: created -> running <-> paused -> completed | stopped | failed | interrupted
STATUSES = ("created", "running", "paused", "completed", "stopped", "failed", "interrupted")
ACTIVE = ("created", "running", "paused")
ENDED = tuple(s for s in STATUSES if s not in ACTIVE)    # a run in one of these no longer changes by itself


class SweepStatus(StrEnum):
    """Status of a sweep: queued -> running <-> paused -> completed | cancelled (stored as its text)."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ItemStatus(StrEnum):
    """Status of one of a sweep's runs: queued -> running -> done | failed | stopped | interrupted (resumed
    next) | cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"


SWEEP_STATUSES = tuple(SweepStatus)
SWEEP_ITEM_STATUSES = tuple(ItemStatus)
WAITING = (ItemStatus.QUEUED, ItemStatus.INTERRUPTED)       # items a sweep still has to run
OPEN_SWEEPS = (SweepStatus.QUEUED, SweepStatus.RUNNING, SweepStatus.PAUSED)   # sweeps with runs left
