"""Checkpoints: weights in safetensors, training state loadable with ``weights_only=True``.

A checkpoint is a self-contained directory (export, fill-mask and resume need
nothing else)::

    runs/NAME/checkpoints/step-0000500/
        model.safetensors      parameters, transformers names (tied copies left out)
        training_state.pt      optimizer state, RNG states (per rank), data position, metric sums
        checkpoint.json        step, metrics, dataset fingerprint, SHA-256 of every other file
        config.toml            the run's full config
        tokenizer.json, vocab.txt

Writing is durable: the files go into a hidden ``.step-N.partial-PID-RANDOM``
folder, are fsynced (files, then the folder), and the folder is renamed into
place and its parent fsynced. Only then are the oldest beyond ``keep``
removed. Reading verifies the checksums: a damaged checkpoint (truncated,
zeroed, garbage, non-finite weights) is named, resume falls back to the newest
good one, and export refuses it.

Order is by step, not by folder name. A run resumed from an older checkpoint
starts a new branch: the newer checkpoints of the abandoned branch are moved
into ``checkpoints/abandoned-TIME/`` (kept, never resumed by accident).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from workbench.config import WorkbenchConfig, dumps_toml, load_config
from workbench.durable_io import (
    WriteError, fault_point, first_line, fsync_dir, fsync_tree, is_write_failure, remove_stale_partials, sha256_file,
    temporary_sibling, writing,
)
from workbench.errors import WorkbenchError

CHECKPOINT_FORMAT = 2   # 2: checksums of every file, branches, per-rank RNG, metric sums
WEIGHTS = "model.safetensors"
STATE = "training_state.pt"
INFO = "checkpoint.json"


class CheckpointError(WorkbenchError):
    """A checkpoint path is missing, incomplete, damaged or not ours."""


@dataclass
class TrainingState:
    """Where a run stands; together with the weights and optimizer, enough to continue exactly."""

    step: int = 0            # optimizer steps done
    epoch: int = 0           # data position: the next micro-batch is (epoch, batch_index)
    batch_index: int = 0
    elapsed: float = 0.0     # training seconds (pauses excluded)
    tokens_seen: int = 0
    decay_start: float = 0.0  # schedule progress at which warm-up ended
    # The schedule after a budget change on resume: the decay continues from (anchor_progress, anchor_lr_fraction)
    anchor_progress: float = 0.0
    anchor_fraction: float = 0.0
    # The warm-up after such a change (``schedule.warmup_scale``): the scale reached, at which step and progress;
    # a scale of 0 means no change (warm-up by the run's own settings from step 0)
    warmup_anchor_scale: float = 0.0
    warmup_anchor_step: int = 0
    warmup_anchor_progress: float = 0.0
    # Metric sums of the reporting interval not yet reported (so a resumed run reports what an uninterrupted one would)
    interval: dict = field(default_factory=dict)

    @property
    def warmup_anchor(self) -> tuple[float, int, float] | None:
        """(scale, step, progress) where a changed warm-up goes on from, or None (``schedule.warmup_scale``)."""
        if not self.warmup_anchor_scale:
            return None
        return self.warmup_anchor_scale, self.warmup_anchor_step, self.warmup_anchor_progress


def step_of(folder: Path) -> int:
    """The step a ``step-N`` folder holds (its name; checkpoint.json says the same)."""
    try:
        return int(folder.name.split("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def save_checkpoint(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: TrainingState, config: WorkbenchConfig, dataset_dir: Path, metrics: dict,
                    fingerprint: str, keep: int, rng_states: list[torch.Tensor] | None = None) -> tuple[Path, int]:
    """Write a checkpoint for ``state.step`` durably; returns its path and size in bytes."""
    from safetensors.torch import save_file

    parent = Path(run_dir) / "checkpoints"
    folder = parent / f"step-{state.step:07d}"
    with writing(folder):
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(parent)
        partial = temporary_sibling(folder)
        partial.mkdir()
        try:
            tensors = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
            save_file(tensors, str(partial / WEIGHTS), metadata={"format": "pt"})
            fault_point("checkpoint:weights-written")
            torch.save({
                "optimizer": optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "rank_rng": rng_states or [],
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "state": dataclasses.asdict(state),
            }, partial / STATE)
            (partial / "config.toml").write_text(dumps_toml(config), encoding="utf-8")
            for name in ("tokenizer.json", "vocab.txt"):
                if (dataset_dir / name).exists():
                    shutil.copyfile(dataset_dir / name, partial / name)
            checksums = {p.name: sha256_file(p) for p in sorted(partial.iterdir())}
            (partial / INFO).write_text(json.dumps({
                "format": CHECKPOINT_FORMAT, "step": state.step,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "dataset": str(dataset_dir), "dataset_fingerprint": fingerprint, "metrics": metrics,
                "files": checksums,
            }, indent=1), encoding="utf-8")
            fsync_tree(partial)
            fault_point("checkpoint:before-rename")
            if folder.exists():  # the same step saved again (a stop right after a periodic save)
                old = temporary_sibling(folder, "old")
                os.replace(folder, old)
                os.replace(partial, folder)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(partial, folder)
            fsync_dir(parent)
        except BaseException as exc:
            shutil.rmtree(partial, ignore_errors=True)
            if is_write_failure(exc):  # safetensors and torch.save wrap the OSError in their own types
                raise WriteError(f"{folder}: cannot write the checkpoint ({first_line(exc)}); the previous "
                                 "checkpoints are kept") from None
            raise
    size = sum(f.stat().st_size for f in folder.iterdir())
    # Rotation only now that the new one is durable. Each old checkpoint is first renamed to a hidden
    # name (atomic), then removed: a kill during the removal leaves a stale partial (cleaned up at the
    # next save), never a half-deleted checkpoint that still looks like one.
    for old in list_checkpoints(run_dir)[:-keep]:
        doomed = temporary_sibling(old, "old")
        os.replace(old, doomed)
        fault_point("checkpoint:rotating")
        shutil.rmtree(doomed, ignore_errors=True)
    return folder, size


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete-looking checkpoints of a run's current branch, oldest (lowest step) first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.name.startswith("step-") and step_of(p) >= 0 and p.is_dir()
             and (p / WEIGHTS).exists() and (p / INFO).exists()]
    return sorted(found, key=step_of)


def read_info(folder: Path) -> dict:
    try:
        info = json.loads((folder / INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{folder / INFO}: damaged ({exc})") from None
    if not isinstance(info, dict):
        raise CheckpointError(f"{folder / INFO}: damaged (not a JSON object)")
    if int(info.get("format", 1)) > CHECKPOINT_FORMAT:
        raise CheckpointError(f"{folder}: written by a newer pretrain-workbench (format {info.get('format')})")
    return info


def verify_checkpoint(folder: Path, weights: bool = True) -> str:
    """What is wrong with a checkpoint ("" when nothing): missing files, checksum mismatches, non-finite weights."""
    try:
        info = read_info(folder)
    except CheckpointError as exc:
        return str(exc)
    for name in (WEIGHTS, "config.toml"):
        if not (folder / name).is_file():
            return f"{folder}: {name} is missing"
    for name, expected in (info.get("files") or {}).items():
        path = folder / name
        if not path.is_file():
            return f"{path}: missing"
        if sha256_file(path) != expected:
            return f"{path}: damaged (checksum does not match what was written)"
    if weights:
        from safetensors import safe_open

        try:
            with safe_open(str(folder / WEIGHTS), framework="pt") as f:
                for key in f.keys():
                    tensor = f.get_tensor(key)
                    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                        return f"{folder / WEIGHTS}: weight {key} holds NaN or infinite values"
        except Exception as exc:  # safetensors raises its own error types for damaged files
            return f"{folder / WEIGHTS}: cannot read weights ({exc})"
    return ""


def find_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint directory, or the latest checkpoint of a run directory (unverified)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint or run directory")
    if (path / WEIGHTS).exists() and (path / INFO).exists():
        return path
    checkpoints = list_checkpoints(path)
    if checkpoints:
        return checkpoints[-1]
    raise CheckpointError(f"{path}: not a checkpoint and holds no complete checkpoint")


def find_good_checkpoint(path: str | os.PathLike) -> tuple[Path, list[str]]:
    """The newest checkpoint that verifies, and what was wrong with each newer one skipped.

    ``path`` may be a checkpoint (it must verify) or a run directory (fall back
    through its checkpoints, newest first).
    """
    path = Path(path)
    if (path / INFO).exists() or (path / WEIGHTS).exists():
        problem = verify_checkpoint(path)
        if problem:
            raise CheckpointError(f"checkpoint is damaged: {problem}")
        return path, []
    candidates = list_checkpoints(path)
    if not candidates:
        find_checkpoint(path)  # raises the right message
    skipped = []
    for candidate in reversed(candidates):
        problem = verify_checkpoint(candidate)
        if not problem:
            return candidate, skipped
        skipped.append(problem)
    raise CheckpointError(f"{path}: every checkpoint is damaged; the newest: {skipped[0]}")


def verified_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint for export or inference: the given one, or a run's latest; refused when damaged."""
    folder = find_checkpoint(path)
    problem = verify_checkpoint(folder)
    if problem:
        raise CheckpointError(f"checkpoint is damaged: {problem}")
    return folder


def abandon_newer(run_dir: Path, step: int) -> list[Path]:
    """Move the checkpoints newer than ``step`` aside (a resume from an older one starts a new branch)."""
    newer = [p for p in list_checkpoints(run_dir) if step_of(p) > step]
    if not newer:
        return []
    aside = Path(run_dir) / "checkpoints" / f"abandoned-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"
    with writing(aside):
        aside.mkdir()
        moved = []
        for p in newer:
            os.replace(p, aside / p.name)
            moved.append(aside / p.name)
        fsync_dir(aside)
        fsync_dir(aside.parent)
    return moved


def checkpoint_config(folder: Path) -> WorkbenchConfig:
    return load_config(folder / "config.toml", recorded=True)


def load_weights(folder: Path, model: torch.nn.Module) -> None:
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(folder / WEIGHTS))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{folder / WEIGHTS}: cannot read weights ({exc})") from None
    own = model.state_dict()
    wrong = [k for k, v in tensors.items() if k in own and own[k].shape != v.shape]
    if wrong:
        raise CheckpointError(f"{folder}: weight {wrong[0]} has shape {tuple(tensors[wrong[0]].shape)}, "
                              f"the model expects {tuple(own[wrong[0]].shape)}")
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{folder}: weights do not fit the model (missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
        )


def load_training_state(folder: Path, optimizer: torch.optim.Optimizer | None, rank: int = 0) -> TrainingState:
    path = folder / STATE
    if not path.exists():
        raise CheckpointError(f"{folder}: no {STATE}; it holds weights only and cannot be resumed")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if optimizer is not None:
            optimizer.load_state_dict(saved["optimizer"])
        rank_rng = saved.get("rank_rng") or []
        torch.set_rng_state(rank_rng[rank] if rank < len(rank_rng) else saved["torch_rng"])
        if saved.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        known = {f.name for f in dataclasses.fields(TrainingState)}
        return TrainingState(**{k: v for k, v in saved["state"].items() if k in known})
    except CheckpointError:
        raise
    except Exception as exc:  # pickle / zip / key errors of a damaged or foreign file
        raise CheckpointError(f"{path}: cannot read the training state ({type(exc).__name__}: {exc})") from None
