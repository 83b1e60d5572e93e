"""Comparing runs in the run history: which settings differ, their series aligned by step, the tidy CSV.

The plot math of the Compare view (bands, x axes, differences, ranges) is in ``workbench.compare``."""

from __future__ import annotations

import json


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



def legend_names(configs: list[dict], names: list[str], ignore: tuple[str, ...] = NOT_A_DIFFERENCE,
                 most: int = 3) -> list[str]:
    """A name per run saying what sets it apart: ``masking.probability=0.3, train.seed=1``.

    Only settings whose values differ among ``configs`` count (``ignore`` left out); at most ``most`` of
    them, then ``…``. A run that differs in nothing keeps its own name."""
    differing = [key for key in config_differences(configs) if key not in ignore]
    out = []
    for config, name in zip(configs, names):
        flat = flat_config(config)
        parts = [f"{key}={short_value(flat.get(key))}" for key in differing[:most]]
        if len(differing) > most:
            parts.append("…")
        out.append(", ".join(parts) if parts else name)
    return out


def short_value(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value) if not isinstance(value, str) else value


def table_csv(header: list[str], rows: list[list]) -> str:
    """The table as CSV text (what the compare view's "Table as CSV" writes)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
