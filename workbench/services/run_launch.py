"""One launch path for a training run, shared by the CLI and the window.

``find_resume_target`` applies the resume policy (a run id or a folder; the
run must not be running; the newest checkpoint that verifies, falling back
past damaged ones). ``launch_run`` then claims the run folder exclusively
(a new, unique folder for a new run), builds the ``Trainer`` (which validates
everything), creates or reuses the run's row, writes the folder's ownership
marker and attaches the recorder. ``LaunchedRun.run()`` trains and releases
the claim however training ends.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from workbench.config import WorkbenchConfig
from workbench.errors import WorkbenchError
from workbench.ownership import (
    RUN_LOCK, RunFolderClaim, check_run_name, claim_run_folder, new_run_folder, read_marker, write_run_marker,
)
from workbench import checkpoint as ckpt
from workbench.train.trainer import RunResult, Trainer, default_run_dir


class LaunchError(WorkbenchError):
    """A run cannot be started or resumed as asked."""


@dataclass
class ResumeTarget:
    run_dir: Path
    checkpoint: Path
    run_id: int | None
    notices: list[str] = field(default_factory=list)

    def config(self) -> WorkbenchConfig:
        return ckpt.checkpoint_config(self.checkpoint)


def find_resume_target(what: str | os.PathLike, repository=None) -> ResumeTarget:
    """Where to resume ``what`` (a run id, a run folder or a checkpoint folder) from."""
    text = str(what)
    run_id = None
    if text.isascii() and text.isdigit() and not Path(text).exists():
        if repository is None:
            raise LaunchError("--resume RUN_ID needs the run database (drop --no-db)")
        run = repository.get(int(text))
        if run.status in ("running", "paused"):
            raise LaunchError(f"run {run.id} is still {run.status} (process {run.pid} on {run.host})")
        run_dir = Path(run.run_dir) if run.run_dir else None
        if run_dir is None or not run_dir.is_absolute() or not run_dir.is_dir():
            raise LaunchError(f"run {run.id} has no run folder to resume from ({run.run_dir or 'none recorded'})")
        marker = read_marker(run_dir)
        if marker is not None and (marker.get("run_id") != run.id or marker.get("database_id") != repository.database_id):
            raise LaunchError(f"{run_dir} belongs to run {marker.get('run_id')} of another database, not to run {run.id}")
        run_id = run.id
        source = run_dir
    else:
        source = Path(text)
        if not source.exists():
            raise LaunchError(f"{source}: no such run or checkpoint folder")
    try:
        checkpoint, skipped = ckpt.find_good_checkpoint(source)
    except ckpt.CheckpointError as exc:
        raise LaunchError(f"cannot resume: {exc}") from None
    run_dir = checkpoint.parent.parent
    notices = [f"skipped a damaged checkpoint: {problem}" for problem in skipped]
    return ResumeTarget(run_dir.resolve(), checkpoint, run_id, notices)


@dataclass
class _NotClaimed:
    """What a non-zero rank holds instead of the folder's claim: nothing to release."""
    folder: Path

    def release(self) -> None:
        pass


@dataclass
class LaunchedRun:
    trainer: Trainer
    run_dir: Path
    run_id: int | None
    repository: object | None
    claim: RunFolderClaim
    recorder: object | None = None     # the RunRecorder: its ``failure`` says what the database could not record

    def run(self) -> RunResult:
        try:
            return self.trainer.run()
        finally:
            self.claim.release()

    def abandon(self) -> None:
        """Release the claim of a run that will not be run."""
        self.claim.release()


def launch_run(config: WorkbenchConfig, repository=None, out: str | os.PathLike | None = None,
               resume: ResumeTarget | None = None, control=None) -> LaunchedRun:
    """Claim the folder, build the trainer, record the run: everything before the first step."""
    config.validate()
    check_run_name(config.train.name)
    created = False
    if int(os.environ.get("RANK", "0")) != 0:
        # Under torchrun only global rank 0 claims, writes and records the run folder (the other ranks,
        # on this node or others, write nothing there); they must not compete for its claim.
        run_dir = (Path(out) if out else resume.run_dir if resume else default_run_dir(config)).resolve()
        trainer = Trainer(config, run_dir, resume_from=resume.checkpoint if resume else None, control=control)
        return LaunchedRun(trainer, run_dir, None, None, _NotClaimed(run_dir))
    if resume is not None:
        run_dir = Path(out).resolve() if out else resume.run_dir
        if run_dir != resume.run_dir:
            raise LaunchError(f"--out {run_dir} differs from the folder of the run being resumed ({resume.run_dir})")
        claim = claim_run_folder(run_dir)
    else:
        base = Path(out) if out else default_run_dir(config)
        claim = new_run_folder(base, unique=not out and not config.train.name)
        run_dir = claim.folder.resolve()
        created = True
    try:
        trainer = Trainer(config, run_dir, resume_from=resume.checkpoint if resume else None, control=control)
        trainer.notices.extend(resume.notices if resume else [])
        run_id = resume.run_id if resume else None
        recorder = None
        database_id = repository.database_id if repository is not None else ""
        if repository is not None:
            if run_id is None and resume is not None:
                marker = read_marker(run_dir) or {}
                if marker.get("database_id") == database_id and isinstance(marker.get("run_id"), int):
                    run_id = marker["run_id"]
            if run_id is None:
                run_id = repository.create_run(config.to_dict(), config.train.name or run_dir.name, str(run_dir),
                                               trainer.dataset).id
            from workbench.store.recorder import RunRecorder
            from workbench.train.events import Notice

            recorder = RunRecorder(repository, run_id, warn=lambda message: trainer.bus.emit(Notice(message)))
            trainer.subscribe(lambda event: recorder(event.to_dict()))
        if created or read_marker(run_dir) is None:
            write_run_marker(run_dir, run_id, database_id)
    except BaseException:
        claim.release()
        if created:  # leave nothing behind for a run that never started
            with contextlib.suppress(OSError):
                (run_dir / RUN_LOCK).unlink()
                run_dir.rmdir()
        raise
    return LaunchedRun(trainer, run_dir, run_id, repository, claim, recorder)
