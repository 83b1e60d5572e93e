"""Snapshots of a run after the fact, from its checkpoints: for runs recorded before inspection existed,
runs trained with ``inspect.enabled = false``, or to add probes or a treebank to a finished run.

Each checkpoint gives the snapshot of its step (only the steps a run kept checkpoints of: the series is
coarser than one recorded while training). Snapshots already stored are kept unless ``replace``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from workbench import checkpoint as ckpt
from workbench.config import WorkbenchConfig
from workbench.errors import WorkbenchError


@dataclasses.dataclass
class CheckpointInspection:
    steps: list[int]             # snapshots taken now
    kept: list[int]              # already there, left as they were
    seconds: float
    bytes: int


def inspect_checkpoints(run_dir: str | Path, probes: str = "", treebank: str = "", replace: bool = False,
                        progress: Callable[[int, int], None] | None = None,
                        should_stop: Callable[[], bool] | None = None) -> CheckpointInspection:
    """Take the snapshot of every checkpoint of ``run_dir`` that lacks one."""
    import torch

    from workbench.data.dataset import TokenizedDataset
    from workbench.interop.huggingface import load_for_inference
    from workbench.snapshots.recorder import SnapshotRecorder

    run_dir = Path(run_dir)
    checkpoints = ckpt.list_checkpoints(run_dir)
    if not checkpoints:
        raise WorkbenchError(f"{run_dir}: no checkpoints to inspect (a run folder holds them in checkpoints/)")
    config: WorkbenchConfig = ckpt.checkpoint_config(checkpoints[-1])
    if probes:
        config.inspect.probes = probes
    if treebank:
        config.inspect.treebank = treebank
    dataset = TokenizedDataset(config.data.dataset)
    if dataset.fingerprint != ckpt.read_info(checkpoints[-1]).get("dataset_fingerprint", dataset.fingerprint):
        raise WorkbenchError(f"{config.data.dataset}: not the dataset the run trained on (its fingerprint differs); "
                             "the probe pack must come from the run's own dataset")
    recorder = SnapshotRecorder(run_dir, dataset, config, resumed_step=2**62)
    if replace:
        for step in list(recorder.taken):
            recorder.store.path(step).unlink(missing_ok=True)
        recorder.taken.clear()
    kept = sorted(recorder.taken)
    taken: list[int] = []
    for done, folder in enumerate(checkpoints):
        if should_stop is not None and should_stop():
            break
        step = ckpt.step_of(folder)
        if step not in recorder.taken:
            model, _, _ = load_for_inference(folder)
            state = _state(folder)
            with torch.no_grad():
                recorder.record(model, step, state.get("tokens_seen", 0), state.get("elapsed", 0.0))
            taken.append(step)
        if progress is not None:
            progress(done + 1, len(checkpoints))
    return CheckpointInspection(taken, kept, recorder.seconds, recorder.store.size_bytes())


def _state(folder: Path) -> dict:
    """tokens_seen and elapsed of a checkpoint (zeros when its training state cannot be read)."""
    import torch

    rng = torch.get_rng_state()                # reading a training state restores its RNG: keep ours
    try:
        state = ckpt.load_training_state(folder, None)
    except ckpt.CheckpointError:
        return {}
    finally:
        torch.set_rng_state(rng)
    return {"tokens_seen": state.tokens_seen, "elapsed": state.elapsed}
