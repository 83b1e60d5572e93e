"""Comparing runs: which settings differ, and their metrics aligned by step."""

from __future__ import annotations

import json
import warnings

from workbench import metrics

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


def write_tidy_csv(repository, runs, setting_keys: list[str], path) -> int:
    """Write ``tidy_rows`` as CSV to ``path`` (columns: run, name, the settings, metric, step, value,
    wall_time); the number of points written. OSError when the file cannot be written."""
    import csv

    columns = ["run", "name", *setting_keys, "metric", "step", "value", "wall_time"]
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in tidy_rows(repository, runs, setting_keys):
            writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
            count += 1
    return count


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


# --- what the compare view draws and lists ------------------------------------------------------------------

# Names that never tell runs apart in a legend (every run has its own).
NOT_A_DIFFERENCE = ("train.name", "train.output_dir")
X_AXES = {"step": "step", "tokens": "tokens seen", "relative": "relative time (s)", "wall": "wall clock"}


def legend_names(configs: list[dict], names: list[str], ignore: tuple[str, ...] = NOT_A_DIFFERENCE,
                 most: int = 3) -> list[str]:
    """A name per run saying what sets it apart: ``masking.probability=0.3, train.seed=1``.

    Only settings whose values differ among ``configs`` count (``ignore`` left out); at most ``most`` of
    them, then ``…``. A run that differs in nothing keeps its own name."""
    differing = [key for key in config_differences(configs) if key not in ignore]
    out = []
    for config, name in zip(configs, names):
        flat = flat_config(config)
        parts = [f"{key}={_short(flat.get(key))}" for key in differing[:most]]
        if len(differing) > most:
            parts.append("…")
        out.append(", ".join(parts) if parts else name)
    return out


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value) if not isinstance(value, str) else value


def lower_is_better(metric: str) -> bool:
    """Whether the best value of ``metric`` is its minimum (the metric table says; see ``workbench.metrics``)."""
    return metrics.lower_is_better(metric)


def metric_stats(values, metric: str) -> dict[str, float]:
    """``last``, ``best``, ``min`` and ``max`` of a series (NaN points ignored; an empty series gives {})."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return {}
    low, high = float(values.min()), float(values.max())
    best = metrics.metric(metric).best(values.tolist())
    return {"last": float(values[-1]), "best": float(best), "min": low, "max": high}


def x_values(axis: str, steps, wall_times, tokens_steps=None, tokens_values=None, started: float = 0.0):
    """The x coordinates of a series on ``axis`` (``X_AXES``): steps, tokens seen (interpolated from the
    run's ``tokens_seen`` series), seconds since the run's first point, or epoch seconds (``started`` plus
    the recorded time)."""
    import numpy as np

    steps = np.asarray(steps, dtype=float)
    if axis == "step":
        return steps
    if axis == "tokens":
        if tokens_steps is None or len(tokens_steps) == 0:
            return np.full(len(steps), np.nan)
        return np.interp(steps, np.asarray(tokens_steps, dtype=float), np.asarray(tokens_values, dtype=float),
                         left=np.nan, right=np.nan)
    wall = np.asarray(wall_times, dtype=float)
    if axis == "relative":
        return wall - wall[0] if len(wall) else wall
    if axis == "wall":
        return started + wall
    raise ValueError(f"unknown x axis {axis!r}; one of {', '.join(X_AXES)}")


def difference_to(baseline_x, baseline_y, x, y):
    """``y`` minus the baseline interpolated at ``x`` (NaN outside the baseline's range)."""
    import numpy as np

    baseline_x, baseline_y = np.asarray(baseline_x, dtype=float), np.asarray(baseline_y, dtype=float)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(baseline_x) == 0:
        return np.full(len(y), np.nan)
    return y - np.interp(x, baseline_x, baseline_y, left=np.nan, right=np.nan)


def robust_range(arrays, low: float = 2.0, high: float = 98.0, margin: float = 0.1,
                 sample: int = 200_000) -> tuple[float, float] | None:
    """A y-range that ignores outliers: the ``low``-``high`` percentiles of all points, widened by ``margin``
    of its span on each side (so a fresh run's first loss of 10 does not flatten curves that end near 3).

    Past ``sample`` points in all, every k-th point of each array is used (200 runs of 100k points: 5 ms,
    not 50, for the same percentiles to a fraction of a percent)."""
    import numpy as np

    arrays = [np.asarray(a, dtype=float).ravel() for a in arrays]
    stride = max(1, -(-sum(len(a) for a in arrays) // sample))
    values = np.concatenate([a[::stride] for a in arrays]) if arrays else np.zeros(0)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    bottom, top = np.percentile(values, [low, high])
    span = top - bottom or abs(top) or 1.0
    return float(bottom - margin * span), float(top + margin * span)


def parallel_axes(rows: list[dict], keys: list[str]) -> list[dict]:
    """Axes of a parallel-coordinates plot: per key its ``labels`` (tick text at 0..1) and each row's
    position on it in 0..1 (None where a row lacks the value). Numbers are scaled between their min and
    max; anything else (strings, booleans) is spread evenly in sorted order."""
    axes = []
    for key in keys:
        values = [row.get(key) for row in rows]
        present = [v for v in values if v is not None]
        numeric = present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
        if numeric:
            low, high = min(present), max(present)
            span = (high - low) or 1.0
            positions = [None if v is None else (v - low) / span if high > low else 0.5 for v in values]
            labels = [(0.0, f"{low:.4g}"), (1.0, f"{high:.4g}")] if high > low else [(0.5, f"{low:.4g}")]
        else:
            levels = sorted({json.dumps(v, default=str) for v in present})
            where = {level: (i / (len(levels) - 1) if len(levels) > 1 else 0.5) for i, level in enumerate(levels)}
            positions = [None if v is None else where[json.dumps(v, default=str)] for v in values]
            labels = [(where[level], _short(json.loads(level))) for level in levels]
        axes.append({"key": key, "positions": positions, "labels": labels})
    return axes


def table_csv(header: list[str], rows: list[list]) -> str:
    """The table as CSV text (what the compare view's "Table as CSV" writes)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
