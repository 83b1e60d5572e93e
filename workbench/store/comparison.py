"""Comparing runs: which settings differ, and their metrics aligned by step."""

from __future__ import annotations

import json
import warnings

COMPARE_METRICS = ("loss", "mlm_loss", "mlm_accuracy", "nsp_accuracy")


def config_differences(configs: list[dict]) -> dict[str, list]:
    """Flattened ``section.key`` -> values per run, for the keys whose values differ."""
    flat = [{f"{section}.{key}": value for section, values in config.items() if isinstance(values, dict)
             for key, value in values.items()} for config in configs]
    keys = sorted(set().union(*flat))
    return {key: [f.get(key) for f in flat] for key in keys if len({json.dumps(f.get(key)) for f in flat}) > 1}


def aligned_series(repository, run_ids: list[int], metrics=COMPARE_METRICS) -> tuple[list[int], dict]:
    """All steps any run recorded, and per (run, metric) the value at each step (None where missing)."""
    data = {}
    steps: set[int] = set()
    for run_id in run_ids:
        for name in metrics:
            series = repository.series(run_id, name)
            data[(run_id, name)] = dict(zip(series.steps.tolist(), series.values.tolist()))
            steps.update(data[(run_id, name)])
    ordered = sorted(steps)
    return ordered, {key: [values.get(step) for step in ordered] for key, values in data.items()}


# Settings that tell runs apart without changing what is trained: ignored when runs are grouped.
NOT_A_SETTING = ("train.name", "train.output_dir", "train.seed")


def flat_config(config: dict) -> dict[str, object]:
    return {f"{section}.{key}": value for section, values in config.items() if isinstance(values, dict)
            for key, value in values.items()}


def group_runs(configs: list[dict], ignore: tuple[str, ...] = NOT_A_SETTING) -> list[list[int]]:
    """Indices of ``configs`` grouped by every setting except ``ignore`` (by default: runs that differ only in
    their seed, name or folder form one group), in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for index, config in enumerate(configs):
        key = json.dumps({k: v for k, v in flat_config(config).items() if k not in ignore}, sort_keys=True,
                         default=str)
        groups.setdefault(key, []).append(index)
    return list(groups.values())


def band(curves: list[tuple[list, list]]) -> dict[str, list]:
    """Mean, standard deviation, min and max over runs of a group, on the union of their steps.

    Step grids may differ (another log interval, a run stopped early): each curve is interpolated
    linearly onto the union grid inside its own range and counts only there, so a short run never
    drags the mean towards zero past its end. ``count`` says how many runs each point averages."""
    import numpy as np

    grid = np.unique(np.concatenate([np.asarray(steps, dtype=float) for steps, _ in curves])) if curves else \
        np.zeros(0)
    stacked = np.full((len(curves), len(grid)), np.nan)
    for row, (steps, values) in enumerate(curves):
        steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
        if len(steps) == 0:
            continue
        inside = (grid >= steps[0]) & (grid <= steps[-1])
        stacked[row, inside] = np.interp(grid[inside], steps, values)
    count = (~np.isnan(stacked)).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # a column no run covers is NaN, not a warning
        mean = np.nanmean(stacked, axis=0) if len(curves) else grid
        std = np.nanstd(stacked, axis=0) if len(curves) else grid
        low = np.nanmin(stacked, axis=0) if len(curves) else grid
        high = np.nanmax(stacked, axis=0) if len(curves) else grid
    return {"steps": grid.tolist(), "mean": mean.tolist(), "std": std.tolist(), "min": low.tolist(),
            "max": high.tolist(), "count": count.tolist()}


def tidy_rows(repository, runs, setting_keys: list[str]):
    """One row per recorded point of every run: run, name, the chosen settings, metric, step, value, time.

    Held-out metrics are named ``eval_<name>``; the tidy form every plotting tool reads."""
    for run in runs:
        settings = flat_config(run.config or {})
        fixed = {"run": run.id, "name": run.name, **{key: settings.get(key) for key in setting_keys}}
        for name, is_eval in repository.metric_names(run.id):
            series = repository.series(run.id, name, is_eval)
            metric = f"eval_{name}" if is_eval else name
            for step, value, wall in zip(series.steps.tolist(), series.values.tolist(), series.wall_times.tolist()):
                yield {**fixed, "metric": metric, "step": step, "value": value, "wall_time": wall}
