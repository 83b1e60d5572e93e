"""Checkpoints: weights in safetensors, training state loadable with ``weights_only=True``.

A checkpoint is a self-contained directory (export, fill-mask and resume need
nothing else)::

    runs/NAME/checkpoints/step-0000500/
        model.safetensors      parameters, transformers names (tied copies left out)
        training_state.pt      optimizer state, RNG states, data position (torch.load(weights_only=True))
        checkpoint.json        step, metrics, dataset fingerprint, format version
        config.toml            the run's full config
        tokenizer.json, vocab.txt

It is written under a hidden ``.partial`` name and renamed, so a crash never
leaves a checkpoint that looks complete; the oldest beyond ``keep`` are removed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from workbench.config import WorkbenchConfig, load_config, save_config
from workbench.errors import WorkbenchError

CHECKPOINT_FORMAT = 1
WEIGHTS = "model.safetensors"
STATE = "training_state.pt"


class CheckpointError(WorkbenchError):
    """A checkpoint path is missing, incomplete or not ours."""


@dataclass
class TrainingState:
    """Where a run stands; together with the weights and optimizer, enough to continue exactly."""

    step: int = 0            # optimizer steps done
    epoch: int = 0           # data position: the next micro-batch is (epoch, batch_index)
    batch_index: int = 0
    elapsed: float = 0.0     # training seconds (pauses excluded)
    tokens_seen: int = 0
    decay_start: float = 0.0  # schedule progress at which warm-up ended


def save_checkpoint(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: TrainingState, config: WorkbenchConfig, dataset_dir: Path, metrics: dict,
                    fingerprint: str, keep: int) -> tuple[Path, int]:
    """Write a checkpoint for ``state.step``; returns its path and size in bytes."""
    from safetensors.torch import save_file

    folder = run_dir / "checkpoints" / f"step-{state.step:07d}"
    partial = folder.parent / f".{folder.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    tensors = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
    save_file(tensors, str(partial / WEIGHTS), metadata={"format": "pt"})
    torch.save({
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "state": dataclasses.asdict(state),
    }, partial / STATE)
    (partial / "checkpoint.json").write_text(json.dumps({
        "format": CHECKPOINT_FORMAT, "step": state.step, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "dataset": str(dataset_dir), "dataset_fingerprint": fingerprint, "metrics": metrics,
    }, indent=1), encoding="utf-8")
    save_config(config, partial / "config.toml")
    for name in ("tokenizer.json", "vocab.txt"):
        if (dataset_dir / name).exists():
            shutil.copyfile(dataset_dir / name, partial / name)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(partial, folder)
    size = sum(f.stat().st_size for f in folder.iterdir())
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return folder, size


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.name.startswith("step-") and (p / WEIGHTS).exists()
             and (p / "checkpoint.json").exists()]
    return sorted(found, key=lambda p: p.name)


def find_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint directory, or the latest checkpoint of a run directory."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint or run directory")
    if (path / WEIGHTS).exists() and (path / "checkpoint.json").exists():
        return path
    checkpoints = list_checkpoints(path)
    if checkpoints:
        return checkpoints[-1]
    raise CheckpointError(f"{path}: not a checkpoint and holds no complete checkpoint")


def checkpoint_config(folder: Path) -> WorkbenchConfig:
    return load_config(folder / "config.toml")


def checkpoint_info(folder: Path) -> dict:
    return json.loads((folder / "checkpoint.json").read_text(encoding="utf-8"))


def load_weights(folder: Path, model: torch.nn.Module) -> None:
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(folder / WEIGHTS))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{folder / WEIGHTS}: cannot read weights ({exc})") from None
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{folder}: weights do not fit the model (missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
        )


def load_training_state(folder: Path, optimizer: torch.optim.Optimizer | None) -> TrainingState:
    path = folder / STATE
    if not path.exists():
        raise CheckpointError(f"{folder}: no {STATE}; it holds weights only and cannot be resumed")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if optimizer is not None:
        optimizer.load_state_dict(saved["optimizer"])
    torch.set_rng_state(saved["torch_rng"])
    if saved.get("cuda_rng") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    return TrainingState(**saved["state"])
