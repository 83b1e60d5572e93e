"""Recording a fine-tuning comparison in the run history, linked to the pre-training run it started from.

A comparison is a run of kind ``finetune``: its config holds the fine-tuning
settings and the labelled data, its final metrics the summary (each arm's
accuracy and macro-F1, the gain and its spread), and its curves each arm's
held-out accuracy and macro-F1 averaged over seeds (``{arm}_accuracy`` ...).
Its ``parent_run_id`` is the pre-training run, found through the source
folder's ownership marker (never through a path stored in the database).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from workbench.ownership import read_marker
from workbench.store.repository import now


def source_run_id(repository, source: str | Path) -> int | None:
    """The pre-training run that wrote ``source`` (a run folder or one of its checkpoints), in this database."""
    path = Path(source)
    for folder in (path, path.parent.parent):
        marker = read_marker(folder) if folder.is_dir() else None
        if marker and marker.get("database_id") == repository.database_id and isinstance(marker.get("run_id"), int):
            return marker["run_id"]
    return None


def flat_summary(summary: dict) -> dict[str, float]:
    out = {}
    for arm in ("pretrained", "scratch", "frozen"):
        for key, value in (summary.get(arm) or {}).items():
            if key != "seeds":
                out[f"{arm}_{key}"] = float(value)
    for key, value in (summary.get("gain_points") or {}).items():
        if key != "per_seed":
            out[f"gain_{key}_points"] = float(value)
    return out


def record_comparison(repository, comparison, config, source: str, data_source: str) -> int:
    """Write ``comparison`` as a finished ``finetune`` run; returns its id."""
    parent = source_run_id(repository, source)
    name = f"fine-tune of run {parent}" if parent is not None else f"fine-tune of {Path(source).name}"
    settings = {"finetune": {**asdict(config), "seeds": list(config.seeds)}, "data": {"labelled": data_source},
                "source": {"path": str(Path(source).resolve())}}
    run = repository.create_run(settings, name, "", kind="finetune", parent_run_id=parent)
    rows = []
    for arm in ("pretrained", "scratch", "frozen"):
        results = [r for r in comparison.arms if r.arm == arm]
        if not results:
            continue
        steps = sorted({p["step"] for r in results for p in r.curve})
        for step in steps:
            points = [p for r in results for p in r.curve if p["step"] == step]
            for metric in ("accuracy", "macro_f1"):
                rows.append({"run_id": run.id, "step": step, "name": f"{arm}_{metric}", "is_eval": True,
                             "value": float(np.mean([p[metric] for p in points])),
                             "wall_time": float(np.mean([p["seconds"] for p in points]))})
    repository.add_metrics(rows)
    seconds = sum(r.seconds for r in comparison.arms)
    repository.update(run.id, status="completed", reason=f"{len(comparison.arms)} arms fine-tuned",
                      started_at=run.created_at, finished_at=now(), steps=max((r.steps for r in comparison.arms),
                                                                              default=0),
                      max_steps=config.steps, elapsed_seconds=seconds, final_metrics=flat_summary(comparison.summary()))
    return run.id
