"""The plot math of a comparison: x axes, group bands, differences to a baseline, outlier-proof ranges,
parallel-coordinate axes and a series' statistics. Plain numpy; no Qt, no database."""

from __future__ import annotations

import json
import warnings

import numpy as np

from workbench import metrics
from workbench.store.comparison import short_value

X_AXES = {"step": "step", "tokens": "tokens seen", "relative": "relative time (s)", "wall": "wall clock"}


def band(curves: list[tuple[list, list]]) -> dict[str, list]:
    """Mean, standard deviation, min and max over runs of a group, on the union of their steps.

    Step grids may differ (another log interval, a run stopped early): each curve is interpolated
    linearly onto the union grid inside its own range and counts only there, so a short run never
    drags the mean towards zero past its end. ``count`` says how many runs each point averages."""
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


def lower_is_better(metric: str) -> bool:
    """Whether the best value of ``metric`` is its minimum (the metric table says; see ``workbench.metrics``)."""
    return metrics.lower_is_better(metric)


def metric_stats(values, metric: str) -> dict[str, float]:
    """``last``, ``best``, ``min`` and ``max`` of a series (NaN points ignored; an empty series gives {})."""
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
            labels = [(where[level], short_value(json.loads(level))) for level in levels]
        axes.append({"key": key, "positions": positions, "labels": labels})
    return axes
