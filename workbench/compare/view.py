"""What the Compare panel shows, without Qt: the runs on display, how they group into units (one curve and one
table row each), their legend labels, the series the view needs, each unit's curve and band, and the table.

The panel owns the widgets and the drawing; it sets the choices here (metric, axis, grouping, band, columns),
reads series into ``series`` on a worker thread, and asks this object what to draw. Everything here is plain
Python and numpy, so it is tested and reused without a window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from workbench.compare.plot_math import band, metric_stats, x_values
from workbench.metrics import EVAL_PREFIX, title
from workbench.store.comparison import (
    NOT_A_DIFFERENCE, NOT_A_SETTING, config_differences, flat_config, group_runs, legend_names,
)

STATS = ("last", "best", "min", "max")
DEFAULT_METRIC = ("mlm_loss", False)
NOT_PLOTTED = {("tokens_seen", False), ("elapsed", False)}     # x axes, not metrics to choose
# One colour per run, chosen by its id, so a run keeps its colour in every plot and whatever else is selected.
PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def run_colour(run_id: int) -> tuple[int, int, int]:
    return PALETTE[(run_id - 1) % len(PALETTE)]


@dataclass
class CompareUnit:
    """What one curve and one table row stand for: a run, or a group of runs that differ only in ignored keys."""

    runs: list
    label: str = ""

    @property
    def id(self) -> int:
        return self.runs[0].id

    @property
    def is_group(self) -> bool:
        return len(self.runs) > 1

    @property
    def colour(self) -> tuple[int, int, int]:
        return run_colour(self.id)


@dataclass
class CompareView:
    runs: list = field(default_factory=list)           # Run rows on display, in selection order
    series: dict = field(default_factory=dict)         # (run id, metric, is_eval) -> Series
    names: set | None = None                            # (metric, is_eval) the runs recorded
    metric: tuple[str, bool] = DEFAULT_METRIC
    axis: str = "step"
    group_by: str | None = None                         # None, "seed", or a setting key grouped over as well
    band_kind: str = "minmax"                           # or "std"
    columns: list[str] | None = None                    # chosen table columns (None: the defaults)
    units: list[CompareUnit] = field(default_factory=list)
    _differences: list[str] | None = None

    def set_runs(self, runs: list) -> None:
        self.runs = list(runs)
        self._differences = None
        self.names = None

    # --- choices ----------------------------------------------------------------------------------------

    def metric_options(self) -> list[tuple[str, tuple[str, bool]]]:
        """(label, (metric, is_eval)) of every metric the runs recorded: training first, then held-out."""
        names = (set(self.names or ()) | {self.metric}) - NOT_PLOTTED
        ordered = sorted(names, key=lambda n: (n[1], n[0] != "mlm_loss", n[0]))
        return [(title(EVAL_PREFIX + name if is_eval else name), (name, is_eval)) for name, is_eval in ordered]

    def differing_keys(self, ignore: tuple[str, ...] = NOT_A_DIFFERENCE) -> list[str]:
        """The settings whose values differ among the runs on display (names and folders left out)."""
        if self._differences is None:             # computed once per selection: 200 configs take a while
            self._differences = list(config_differences([r.config or {} for r in self.runs]))
        return [k for k in self._differences if k not in ignore]

    def group_options(self) -> list[tuple[str, str | None]]:
        return [("no grouping", None), ("runs differing only in seed", "seed"),
                *((f"… in seed and {key}", key) for key in self.differing_keys(NOT_A_SETTING))]

    def grouped_over(self) -> tuple[str, ...]:
        """The settings that do not tell the units apart: names and folders, and with grouping the seed (and
        the chosen key) too."""
        if self.group_by is None:
            return NOT_A_DIFFERENCE
        return NOT_A_SETTING + (() if self.group_by == "seed" else (self.group_by,))

    def regroup(self) -> list[CompareUnit]:
        """The units for the grouping chosen, each labelled by what sets it apart."""
        if self.group_by is None:
            self.units = [CompareUnit([run]) for run in self.runs]
        else:
            groups = group_runs([run.config or {} for run in self.runs], ignore=self.grouped_over())
            self.units = [CompareUnit([self.runs[i] for i in group]) for group in groups]
        labels = legend_names([u.runs[0].config or {} for u in self.units], [u.runs[0].name for u in self.units],
                              ignore=self.grouped_over())
        for unit, label in zip(self.units, labels):
            unit.label = f"{label} (n={len(unit.runs)})" if unit.is_group else f"{unit.id}: {label}"
        return self.units

    # --- series -------------------------------------------------------------------------------------------

    def needed(self) -> list[tuple[str, bool]]:
        """The series the plot and the table need: the metric, tokens seen for that axis, table metrics."""
        keys = {self.metric}
        if self.axis == "tokens":
            keys.add(("tokens_seen", False))
        for column in self.table_columns():
            if ":" in column:
                name = column.split(":")[0]
                keys.add((name.removeprefix(EVAL_PREFIX), name.startswith(EVAL_PREFIX)))
        return sorted(keys)

    def missing(self) -> list[tuple[int, str, bool]]:
        """(run id, metric, is_eval) of the needed series not read yet."""
        return [(run.id, name, is_eval) for run in self.runs for name, is_eval in self.needed()
                if (run.id, name, is_eval) not in self.series]

    def take(self, series: dict, ended: set[int]) -> None:
        """Series read for the runs on display; those of runs still training are read again next time."""
        self.series = {k: v for k, v in self.series.items() if k[0] in ended}
        self.series.update(series)

    def curve(self, run, metric: tuple[str, bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of one run's metric on the chosen axis (empty when not read yet)."""
        name, is_eval = metric or self.metric
        series = self.series.get((run.id, name, is_eval))
        if series is None or len(series.steps) == 0:
            return np.zeros(0), np.zeros(0)
        tokens = self.series.get((run.id, "tokens_seen", False))
        started = run.started_at.timestamp() if getattr(run, "started_at", None) else 0.0
        x = x_values(self.axis, series.steps, series.wall_times, tokens.steps if tokens else None,
                     tokens.values if tokens else None, started)
        keep = ~np.isnan(x)
        return x[keep], np.asarray(series.values)[keep]

    def unit_curve(self, unit: CompareUnit) -> dict:
        """x, y (the mean for a group) and, for a group, the band's low and high edges."""
        curves = [(x, y) for x, y in (self.curve(run) for run in unit.runs) if len(x)]
        if not curves:
            return {"x": np.zeros(0), "y": np.zeros(0)}
        if not unit.is_group:
            return {"x": curves[0][0], "y": curves[0][1]}
        stats = band(curves)
        x, mean = np.asarray(stats["steps"]), np.asarray(stats["mean"])
        if self.band_kind == "std":
            low, high = mean - np.asarray(stats["std"]), mean + np.asarray(stats["std"])
        else:
            low, high = np.asarray(stats["min"]), np.asarray(stats["max"])
        return {"x": x, "y": mean, "low": low, "high": high, "count": stats["count"]}

    # --- the table ----------------------------------------------------------------------------------------

    def available_columns(self) -> list[str]:
        settings = sorted(set().union(*(flat_config(r.config or {}) for r in self.runs))) if self.runs else []
        columns = []
        for name, is_eval in sorted(self.names or ()):
            prefix = EVAL_PREFIX if is_eval else ""
            columns += [f"{prefix}{name}:{stat}" for stat in STATS]
        return columns + settings

    def table_columns(self) -> list[str]:
        if self.columns is not None:
            return self.columns
        name, is_eval = self.metric
        metric = f"{EVAL_PREFIX}{name}" if is_eval else name
        held_out = [] if is_eval else [f"{EVAL_PREFIX}{name}:last"]
        return self.differing_keys()[:6] + [f"{metric}:last", f"{metric}:best", *held_out]

    def unit_value(self, unit: CompareUnit, column: str):
        """A table cell's value: a setting (the first run's), or a metric statistic (the group's mean)."""
        if ":" not in column:
            values = [flat_config(run.config or {}).get(column) for run in unit.runs]
            distinct = list(dict.fromkeys(json.dumps(v, default=str) for v in values))
            return values[0] if len(distinct) == 1 else ", ".join(distinct)     # a group's seeds: "0, 1, 2"
        name, stat = column.rsplit(":", 1)
        key = (name.removeprefix(EVAL_PREFIX), name.startswith(EVAL_PREFIX))
        values = []
        for run in unit.runs:
            series = self.series.get((run.id, *key))
            if series is not None:
                value = metric_stats(series.values, name).get(stat)
                if value is not None:
                    values.append(value)
        return float(np.mean(values)) if values else None

    def table_rows(self) -> tuple[list[str], list[list]]:
        """The header and rows of the table as plain values (what *Table CSV* writes)."""
        columns = self.table_columns()
        rows = [[unit.label, ",".join(str(r.id) for r in unit.runs), *(self.unit_value(unit, c) for c in columns)]
                for unit in self.units]
        return ["run", "runs", *columns], rows
