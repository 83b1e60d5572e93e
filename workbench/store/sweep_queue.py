"""The sweep queue in the run database: it survives a restart, can be paused, reordered and cancelled.

``claim_next`` hands out the next run of a sweep (an interrupted one first, to
be resumed from its checkpoint); whoever runs it links the run (``link_run``)
and reports how it ended (``finish_item``). The CLI's ``sweep`` command and the
window both drive a sweep through ``SweepQueue`` (``repository.sweeps``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from workbench.errors import StoreError
from workbench.store.models import Run, Sweep, SweepItem
from workbench.store.statuses import ACTIVE, WAITING, ItemStatus, SweepStatus
from workbench.store.repository import now


@dataclass
class NextRun:
    item_id: int
    label: str
    config: dict
    resume_run_id: int | None      # an interrupted run of this item, to be resumed


class SweepQueue:
    """The sweeps of one run database (``RunRepository.sweeps``)."""

    def __init__(self, repository):
        self.repository = repository

    def _sweep(self, session, sweep_id: int) -> Sweep:
        """The sweep, or a StoreError naming it and the database (the one get-or-raise)."""
        sweep = session.get(Sweep, sweep_id)
        if sweep is None:
            raise StoreError(f"no sweep {sweep_id} in {self.repository.url}")
        return sweep

    def create(self, name: str, spec: dict, swept: list[str], runs: list[tuple[str, dict]]) -> int:
        """Queue a sweep: ``runs`` are (label, config dict) in order. Its id."""
        with self.repository.Session.begin() as session:
            sweep = Sweep(name=name, status=SweepStatus.QUEUED, spec=spec, swept=swept, created_at=now())
            sweep.items = [SweepItem(position=i, label=label, config=config, status=ItemStatus.QUEUED)
                           for i, (label, config) in enumerate(runs)]
            session.add(sweep)
            session.flush()
            return sweep.id

    def get(self, sweep_id: int) -> Sweep:
        with self.repository.Session() as session:
            sweep = self._sweep(session, sweep_id)
            session.expunge(sweep)
            return sweep

    def list_all(self) -> list[Sweep]:
        with self.repository.Session() as session:
            sweeps = list(session.scalars(select(Sweep).order_by(Sweep.id)))
            for sweep in sweeps:
                session.expunge(sweep)
            return sweeps

    def set_status(self, sweep_id: int, status: str) -> None:
        """``paused`` (the run in progress finishes; no new one starts), ``running``, ``cancelled`` (queued runs
        are cancelled too) or ``completed``."""
        final = (SweepStatus.COMPLETED, SweepStatus.CANCELLED)
        with self.repository.Session.begin() as session:
            sweep = self._sweep(session, sweep_id)
            if status not in final:
                # Compare and set in one statement: a cancel or completion committed by another thread or
                # process since ``sweep`` was read must not be undone (the read may be older than the write).
                changed = session.execute(update(Sweep).where(Sweep.id == sweep_id, Sweep.status.not_in(final))
                                          .values(status=status)).rowcount
                if not changed:
                    session.expire(sweep)
                    raise StoreError(f"sweep {sweep_id} is {sweep.status}")
                return
            if sweep.status in final and status != sweep.status:
                raise StoreError(f"sweep {sweep_id} is {sweep.status}")
            sweep.status = status
            if status in (SweepStatus.COMPLETED, SweepStatus.CANCELLED):
                sweep.finished_at = now()
            if status == SweepStatus.CANCELLED:
                for item in sweep.items:
                    if item.status in WAITING:
                        item.status = ItemStatus.CANCELLED

    def move_item(self, sweep_id: int, item_id: int, position: int) -> None:
        """Put a queued run at ``position`` (0 = next) among the sweep's runs still to run."""
        with self.repository.Session.begin() as session:
            sweep = self._sweep(session, sweep_id)
            waiting = [i for i in sweep.items if i.status in WAITING]
            item = next((i for i in waiting if i.id == item_id), None)
            if item is None:
                raise StoreError(f"sweep {sweep_id} has no waiting run {item_id}")
            waiting.remove(item)
            waiting.insert(max(0, min(position, len(waiting))), item)
            slots = sorted(i.position for i in waiting)
            for slot, entry in zip(slots, waiting):
                entry.position = slot

    def recover(self, sweep_id: int) -> list[int]:
        """Items left ``running`` by a process that died: ``interrupted`` (their run was marked interrupted by
        ``mark_interrupted_runs``; it is resumed when the item's turn comes). The item ids."""
        self.repository.mark_interrupted_runs()
        recovered = []
        with self.repository.Session.begin() as session:
            for item in session.scalars(select(SweepItem).where(SweepItem.sweep_id == sweep_id,
                                                                SweepItem.status == ItemStatus.RUNNING)):
                run = session.get(Run, item.run_id) if item.run_id is not None else None
                if run is None or run.status not in ACTIVE:
                    item.status = ItemStatus.INTERRUPTED
                    recovered.append(item.id)
        return recovered

    def claim_next(self, sweep_id: int) -> NextRun | None:
        """The next run of a running sweep, marked ``running``; None when the sweep is paused, cancelled, or
        has nothing left (then it is marked completed).

        Safe with several processes claiming from one sweep (``sweep --parallel``): an item is taken by a
        conditional UPDATE in a transaction of its own, which only one of them can win; the others move on."""
        while True:
            with self.repository.Session() as session:
                sweep = self._sweep(session, sweep_id)
                if sweep.status != SweepStatus.RUNNING:
                    return None
                waiting = [(i.id, i.label, dict(i.config), i.run_id if i.status == ItemStatus.INTERRUPTED else None)
                           for i in sorted((i for i in sweep.items if i.status in WAITING),
                                           key=lambda i: (i.status != ItemStatus.INTERRUPTED, i.position))]
                running = any(i.status == ItemStatus.RUNNING for i in sweep.items)
            if not waiting:
                if not running:
                    with self.repository.Session.begin() as session:
                        session.execute(update(Sweep).where(Sweep.id == sweep_id, Sweep.status == SweepStatus.RUNNING)
                                        .values(status=SweepStatus.COMPLETED, finished_at=now()))
                return None
            for item_id, label, config, resume in waiting:
                with self.repository.Session.begin() as session:
                    taken = session.execute(update(SweepItem).where(
                        SweepItem.id == item_id, SweepItem.status.in_(WAITING))
                        .values(status=ItemStatus.RUNNING)).rowcount
                if taken == 1:
                    return NextRun(item_id, label, config, resume)
            # every item seen was taken by another process meanwhile: look again

    def settle(self, sweep_id: int) -> Sweep:
        """Once no process of ours runs the sweep any more (every ``--parallel`` worker has exited): items left
        running by a process that died become interrupted, and a sweep still marked running becomes completed
        (nothing left) or paused (runs left: ``sweep --resume`` continues it). Runs still training in another
        process keep their items, and the sweep, running. The sweep."""
        self.recover(sweep_id)
        with self.repository.Session.begin() as session:
            sweep = self._sweep(session, sweep_id)
            statuses = {item.status for item in sweep.items}
            if sweep.status == SweepStatus.RUNNING and ItemStatus.RUNNING not in statuses:
                waiting = statuses & set(WAITING)
                sweep.status = SweepStatus.PAUSED if waiting else SweepStatus.COMPLETED
                if not waiting:
                    sweep.finished_at = now()
        return self.get(sweep_id)

    def link_run(self, item_id: int, run_id: int, sweep_name: str | None = None) -> None:
        """Record which run an item started, tag it ``sweep:<id>`` and name it after the item."""
        with self.repository.Session.begin() as session:
            item = session.get(SweepItem, item_id)
            item.run_id = run_id
            sweep_id, label = item.sweep_id, item.label
        self.repository.tag(run_id, add=[f"sweep:{sweep_id}"])
        self.repository.rename(run_id, f"{sweep_name or 'sweep'} · {label}"[:200])

    def finish_item(self, item_id: int, status: str) -> None:
        """How an item's run ended: done (completed), failed, stopped or interrupted."""
        with self.repository.Session.begin() as session:
            item = session.get(SweepItem, item_id)
            item.status = ItemStatus.DONE if status == "completed" else ItemStatus(status)   # a run status

    def runs(self, sweep_id: int) -> list[Run]:
        """The runs a sweep has started, in queue order."""
        ids = [i.run_id for i in self.get(sweep_id).items if i.run_id is not None]
        return [self.repository.get(run_id) for run_id in ids]
