"""What the run list shows of a run, and a run's whole curves: read from the run history.

Shared by ``runs``/``show`` and the Runs panel. Latest values come from one
query per run (the last point of each metric), never from loading whole series.
"""

from __future__ import annotations

from workbench.metrics import EVAL_PREFIX, RUN_LIST
from workbench.store.repository import local_time

SUMMARY_METRICS = tuple(name for name in RUN_LIST if not name.startswith(EVAL_PREFIX))
# The held-out metrics of the run list, and the floor its MLM loss is read against.
HELDOUT_METRICS = tuple(name.removeprefix(EVAL_PREFIX) for name in RUN_LIST if name.startswith(EVAL_PREFIX)) + (
    "floor_mlm_loss",)


def run_summary(repository, run) -> dict:
    """A run's row: its state and the latest training and held-out values."""
    final = run.final_metrics or {}
    values = {k: v for k, v in final.items() if k in SUMMARY_METRICS}
    missing = [name for name in SUMMARY_METRICS if name not in values]
    if missing:
        values.update(repository.latest_values(run.id, missing))
    heldout = {k[len("eval_"):]: v for k, v in final.items() if k.startswith("eval_")}
    if not all(name in heldout for name in HELDOUT_METRICS):
        heldout.update(repository.latest_values(run.id, HELDOUT_METRICS, is_eval=True))
    created = local_time(run.created_at)
    return {
        "id": run.id, "name": run.name, "status": run.status, "steps": run.steps, "max_steps": run.max_steps,
        "duration_seconds": run.elapsed_seconds,
        **{name: values.get(name) for name in SUMMARY_METRICS},
        **{EVAL_PREFIX + name: heldout.get(name) for name in HELDOUT_METRICS if name != "floor_mlm_loss"},
        "floor_mlm_loss": heldout.get("floor_mlm_loss"),
        "device": run.device, "created": created.isoformat(timespec="seconds") if created else "",
        "tags": run.tag_names, "run_dir": run.run_dir,
    }


def all_series(repository, run_id: int) -> dict:
    """Every metric of a run: ``{name or eval_name: Series}`` (the one series type, ``repository.Series``)."""
    return {f"{EVAL_PREFIX}{name}" if is_eval else name: repository.series(run_id, name, is_eval)
            for name, is_eval in repository.metric_names(run_id)}
