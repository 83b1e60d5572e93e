"""Comparing runs: which settings differ, and their metrics aligned by step."""

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
