"""Running a sweep's queue on this machine: one run after another, or several worker processes at once
(the CLI's ``sweep`` command, ``--parallel N``).

Each run goes through the one launch path (``launch_run``), so it is recorded as
a normal run, tagged ``sweep:<id>``. A run interrupted by a killed process is
resumed from its last checkpoint when the sweep is started again (or run afresh
when it never wrote one). Pausing or cancelling (from another process, the
window or ``sweep --pause``) takes effect when the run in progress ends.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from workbench.config import WorkbenchConfig
from workbench.durable_io import first_line
from workbench.errors import StoreError, WorkbenchError
from workbench.store.statuses import ItemStatus, SweepStatus
@dataclass
class Worker:
    """One of several processes running a sweep at once (``sweep --parallel``): where its runs go."""

    device: str          # "cpu", "cuda:N", ...
    threads: int         # CPU threads for runs that leave train.threads at 0 (all cores)

    def place(self, config: WorkbenchConfig) -> None:
        """Put a run on this worker: its device unless the run asks for the CPU or MPS, and its share of
        the cores unless the run sets its threads."""
        if config.train.device == "auto" or config.train.device.startswith("cuda"):
            config.train.device = self.device
        if config.train.threads == 0:
            config.train.threads = self.threads


def plan_workers(count: int, devices: list[str] | None = None) -> list[Worker]:
    """``count`` workers over ``devices`` (default: every CUDA device, else the CPU), round robin; the
    cores are shared evenly among the workers."""
    if devices is None:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        devices = [f"cuda:{i}" for i in range(gpus)] or ["cpu"]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return [Worker(devices[i % len(devices)], max(1, cores // count)) for i in range(count)]


def start_sweep(repository, sweep_id: int, say: Callable[[str], None] = print) -> None:
    """Before running a sweep: items left running by a dead process become interrupted (resumed first), and
    a queued or paused sweep is marked running. Once per sweep, before any worker claims (``run_sweep``)."""
    sweep = repository.sweeps.get(sweep_id)
    for item_id in repository.sweeps.recover(sweep_id):
        say(f"sweep {sweep_id}: item {item_id} was interrupted; it resumes first")
    if sweep.status in (SweepStatus.QUEUED, SweepStatus.PAUSED):
        try:
            repository.sweeps.set_status(sweep_id, SweepStatus.RUNNING)
        except StoreError:  # cancelled (or completed) since it was read: run_sweep finds nothing to run
            pass


def run_sweep(repository, sweep_id: int, dataset: str | None = None, control=None,
              on_launch: Callable | None = None, say: Callable[[str], None] = print,
              worker: "Worker | None" = None) -> str:
    """Run the sweep's waiting runs until none is left, it is paused or cancelled, or ``control`` stops;
    the sweep's status at the end. ``dataset`` (if given) replaces every run's ``data.dataset``.

    Alone, it first recovers the sweep (``start_sweep``). As one of several ``worker`` processes it does
    not (the parent did, before starting them: a worker must not take another's fresh claim for a dead
    one), and its runs go to the worker's device and threads."""
    from workbench.services.run_launch import LaunchError, find_resume_target, launch_run

    sweep = repository.sweeps.get(sweep_id)
    if worker is None:
        start_sweep(repository, sweep_id, say)
    while True:
        if control is not None and control.stop_requested:
            return repository.sweeps.get(sweep_id).status
        step = repository.sweeps.claim_next(sweep_id)
        if step is None:
            return repository.sweeps.get(sweep_id).status
        config = WorkbenchConfig.from_record(step.config, source=f"sweep {sweep_id} ({step.label})")
        if dataset:
            config.data.dataset = dataset
        target = None
        if step.resume_run_id is not None:
            try:
                target = find_resume_target(str(step.resume_run_id), repository)
                config = target.config()
            except (LaunchError, WorkbenchError) as exc:
                say(f"sweep {sweep_id}: cannot resume run {step.resume_run_id} ({exc}); running it afresh")
        if worker is not None:
            worker.place(config)
        try:
            launched = launch_run(config, repository, resume=target, control=control)
        except WorkbenchError as exc:
            repository.sweeps.finish_item(step.item_id, ItemStatus.FAILED)
            say(f"sweep {sweep_id}: {step.label}: cannot start: {exc}")
            continue
        repository.sweeps.link_run(step.item_id, launched.run_id, sweep.name)
        say(f"sweep {sweep_id}: {'resuming' if target else 'starting'} run {launched.run_id} ({step.label})")
        if on_launch is not None:
            on_launch(launched)
        try:
            result = launched.run()
        except BaseException as exc:     # a bug, a second Ctrl-C, a full disk under the database: never "running"
            ended = ItemStatus.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else ItemStatus.FAILED
            _record_quietly(lambda: repository.sweeps.finish_item(step.item_id, ended), say, sweep_id)
            _record_quietly(lambda: repository.sweeps.set_status(sweep_id, SweepStatus.PAUSED), say, sweep_id)
            raise
        if control is not None and control.stop_requested and result.status == "stopped":
            # Ctrl-C or the window's Stop: the run kept a checkpoint; the sweep pauses and resumes it next time,
            # unless it was cancelled (from the window or ``sweep --cancel``): then its run is cancelled too.
            if repository.sweeps.get(sweep_id).status == SweepStatus.CANCELLED:
                _record_quietly(lambda: repository.sweeps.finish_item(step.item_id, ItemStatus.CANCELLED), say,
                                sweep_id)
                say(f"sweep {sweep_id}: cancelled; run {launched.run_id} stopped with a checkpoint")
                return SweepStatus.CANCELLED
            _record_quietly(lambda: repository.sweeps.finish_item(step.item_id, ItemStatus.INTERRUPTED), say, sweep_id)
            _record_quietly(lambda: repository.sweeps.set_status(sweep_id, SweepStatus.PAUSED), say, sweep_id)
            say(f"sweep {sweep_id}: paused; run {launched.run_id} resumes first when the sweep is resumed")
            return SweepStatus.PAUSED
        if not _record_quietly(lambda: repository.sweeps.finish_item(step.item_id, result.status), say,
                               sweep_id):
            return SweepStatus.PAUSED       # the database cannot be written: stop here rather than run blind
        say(f"sweep {sweep_id}: run {launched.run_id} {result.status}")


def _record_quietly(write: Callable[[], None], say: Callable[[str], None], sweep_id: int) -> bool:
    """A queue update after a run ended that may fail (the database's disk is full): say so in one line and
    go on; the next start finds the item's run ended and marks it interrupted (``recover``)."""
    try:
        write()
        return True
    except Exception as exc:
        say(f"sweep {sweep_id}: cannot update the sweep queue ({first_line(getattr(exc, 'orig', None) or exc)}); `sweep --resume {sweep_id}` sets it "
            f"right once the database can be written")
        return False
