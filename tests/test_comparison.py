"""Comparing runs: grouping by settings, mean and band over unequal step grids, the tidy CSV (real SQLite)."""

import csv
import json

import numpy as np
import pytest

from workbench.cli import main
from workbench.config import WorkbenchConfig
from workbench.compare.plot_math import band
from workbench.store.comparison import group_runs
from workbench.store.repository import RunRepository


def test_band_over_unequal_step_grids_counts_each_run_only_inside_its_range():
    a = ([0, 10, 20, 30], [4.0, 3.0, 2.0, 1.0])
    b = ([0, 5, 10], [4.0, 3.0, 2.0])                     # logged more often, stopped early
    out = band([a, b])
    assert out["steps"] == [0, 5, 10, 20, 30]
    assert out["count"] == [2, 2, 2, 1, 1]
    assert out["mean"] == pytest.approx([4.0, 3.25, 2.5, 2.0, 1.0])   # A at 5 is 3.5 (interpolated)
    assert out["min"][2] == 2.0 and out["max"][2] == 3.0
    assert out["std"][0] == 0.0 and out["std"][1] == pytest.approx(0.25)
    assert band([]) == {"steps": [], "mean": [], "std": [], "min": [], "max": [], "count": []}


def configs(*changes):
    out = []
    for change in changes:
        config = WorkbenchConfig()
        for key, value in change.items():
            section, name = key.split(".")
            setattr(getattr(config, section), name, value)
        out.append(config.to_dict())
    return out


def test_runs_that_differ_only_in_seed_or_name_form_one_group():
    runs = configs({"train.seed": 0}, {"masking.probability": 0.4}, {"train.seed": 1, "train.name": "again"},
                   {"masking.probability": 0.4, "train.seed": 5})
    assert group_runs(runs) == [[0, 2], [1, 3]]
    assert group_runs(runs, ignore=()) == [[0], [1], [2], [3]]


@pytest.fixture
def history(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    repository = RunRepository(url)
    ids = []
    for seed, probability, final_loss in ((0, 0.15, 4.0), (1, 0.15, 4.2), (0, 0.3, 5.0)):
        config = WorkbenchConfig()
        config.train.seed, config.masking.probability = seed, probability
        run = repository.create_run(config.to_dict(), f"p{probability}-s{seed}", str(tmp_path / f"r{seed}{probability}"))
        rows = [{"run_id": run.id, "step": step, "name": "mlm_loss", "value": final_loss + 5 / step,
                 "wall_time": step * 0.1, "is_eval": False} for step in range(1, 11)]
        rows.append({"run_id": run.id, "step": 10, "name": "mlm_loss", "value": final_loss + 0.1, "wall_time": 1.0,
                     "is_eval": True})
        repository.add_metrics(rows)
        repository.update(run.id, status="completed", steps=10, final_metrics={
            "mlm_loss": final_loss, "mlm_accuracy": 0.3, "nsp_accuracy": 0.6, "tokens_per_second": 1.0,
            "eval_mlm_loss": final_loss + 0.1, "eval_mlm_accuracy": 0.3, "eval_nsp_accuracy": 0.6})
        ids.append(run.id)
    return url, ids


def test_compare_writes_a_tidy_csv_and_groups_seeds(history, tmp_path, capsys):
    url, ids = history
    out = tmp_path / "tidy.csv"
    assert main(["compare", *map(str, ids), "--tidy-csv", str(out), "--group", "--json", "--db", url]) == 0
    groups = json.loads(capsys.readouterr().out)
    assert [g["count"] for g in groups] == [2, 1] and groups[0]["runs"] == ids[:2]
    assert groups[0]["mlm_loss"]["mean"] == pytest.approx(4.1) and groups[0]["mlm_loss"]["std"] == pytest.approx(0.1)
    assert groups[0]["settings"] == {"masking.probability": 0.15} and groups[1]["settings"] == {"masking.probability": 0.3}
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 11
    assert set(rows[0]) == {"run", "name", "masking.probability", "train.seed", "metric", "step",
                            "value", "wall_time"}
    held_out = [r for r in rows if r["metric"] == "eval_mlm_loss"]
    assert [(int(r["run"]), float(r["value"])) for r in held_out] == [(ids[0], 4.1), (ids[1], 4.3), (ids[2], 5.1)]
    first = [float(r["value"]) for r in rows if r["run"] == str(ids[0]) and r["metric"] == "mlm_loss"]
    assert np.allclose(first, [4.0 + 5 / s for s in range(1, 11)])
    assert main(["compare", *map(str, ids), "--group", "--db", url]) == 0
    text = capsys.readouterr().out
    assert "3 runs in 2 group(s)" in text and "masking.probability=0.15" in text and "± 0.1000" in text


def test_legend_names_say_what_differs_and_stats_know_which_way_is_better():
    from workbench.compare.plot_math import lower_is_better, metric_stats
    from workbench.store.comparison import legend_names

    runs = configs({"masking.probability": 0.15, "train.seed": 1}, {"train.seed": 2})   # the default is 0.3
    assert legend_names(runs, ["a", "b"]) == ["masking.probability=0.15, train.seed=1",
                                              "masking.probability=0.3, train.seed=2"]
    assert legend_names(configs({}, {}), ["a", "b"]) == ["a", "b"]           # nothing differs: their names
    assert lower_is_better("eval_mlm_loss") and not lower_is_better("mlm_accuracy")
    assert metric_stats([5.0, float("nan"), 2.0, 3.0], "mlm_loss") == {"last": 3.0, "best": 2.0, "min": 2.0, "max": 5.0}
    assert metric_stats([0.2, 0.5, 0.4], "nsp_accuracy")["best"] == 0.5 and metric_stats([], "loss") == {}


def test_axes_differences_robust_ranges_and_parallel_axes():
    from workbench.compare.plot_math import difference_to, parallel_axes, robust_range, x_values

    steps, wall = [1, 2, 4], [10.0, 11.0, 13.0]
    assert x_values("tokens", steps, wall, [1, 4], [100, 400]).tolist() == [100, 200, 400]
    assert x_values("relative", steps, wall).tolist() == [0, 1, 3]
    assert x_values("wall", steps, wall, started=1000.0).tolist() == [1010, 1011, 1013]
    with pytest.raises(ValueError, match="unknown x axis"):
        x_values("epochs", steps, wall)
    out = difference_to([0, 10], [1.0, 2.0], [5, 20], [3.0, 3.0])
    assert out[0] == 1.5 and np.isnan(out[1])                               # outside the baseline: no value
    low, high = robust_range([np.r_[1000.0, np.linspace(2, 3, 200)]])
    assert high < 10 and low < 2                                             # the spike is ignored
    many = [np.random.default_rng(i).normal(3.0 + 0.01 * i, 0.5, 100_000) for i in range(20)]  # 2M points
    exact = robust_range(many, sample=10**9)
    assert robust_range(many) == pytest.approx(exact, abs=0.01)               # sampled: the same range
    axes = parallel_axes([{"p": 0.1, "o": "nsp"}, {"p": 0.3, "o": "sop"}, {"p": None, "o": "nsp"}], ["p", "o"])
    assert axes[0]["positions"] == [0.0, 1.0, None] and axes[1]["positions"] == [0.0, 1.0, 0.0]
    assert axes[1]["labels"] == [(0.0, "nsp"), (1.0, "sop")]


@pytest.mark.parametrize("text, expected", [
    ("masking.probability >= 0.2 and eval_mlm_loss < 5", [2]),
    ("not masking.probability > 0.2", [1, 3]),
    ("status == 'completed' or name == 'x'", [1, 2, 3]),
    ("train.seed in [0, 2] and mlm_loss < 4.5", [1]),
    ("eval_nsp_accuracy > 0.5", []),                                        # a value no run has: no match
    ("0.1 < masking.probability < 0.2", [1, 3]),
])
def test_filter_expressions_select_runs(text, expected):
    from workbench.store.run_filter import compile_filter, looks_like_expression

    rows = [{"id": 1, "name": "a", "status": "completed", "masking.probability": 0.15, "train.seed": 0,
             "mlm_loss": 4.0, "eval_mlm_loss": 4.1},
            {"id": 2, "name": "b", "status": "completed", "masking.probability": 0.3, "train.seed": 1,
             "mlm_loss": 4.2, "eval_mlm_loss": 4.5},
            {"id": 3, "name": "c", "status": "completed", "masking.probability": 0.15, "train.seed": 2,
             "mlm_loss": 5.0, "eval_mlm_loss": None}]
    assert looks_like_expression(text)
    predicate = compile_filter(text, set(rows[0]) | {"eval_nsp_accuracy"})
    assert [row["id"] for row in rows if predicate(row)] == expected


@pytest.mark.parametrize("text, message", [
    ("masking.probability >=", "not an expression"),
    ("__import__('os').system('x') == 0", "not allowed"),
    ("mlm_loss + 1 > 2", "not allowed"),
    ("masking.prob > 0.1", "unknown name 'masking.prob'"),
])
def test_bad_filter_expressions_say_what_is_wrong(text, message):
    from workbench.store.run_filter import FilterError, compile_filter

    with pytest.raises(FilterError, match=message):
        compile_filter(text, {"masking.probability", "mlm_loss"})


def test_the_compare_view_groups_labels_draws_and_tabulates_without_qt(history):
    """The Compare panel's model (``workbench.compare.view``) works from the run history alone (no Qt: the
    import-linter contract keeps it so)."""
    from workbench.compare.view import CompareView

    url, ids = history
    repository = RunRepository(url)
    view = CompareView()
    view.set_runs([repository.get(i) for i in ids])
    view.group_by = "seed"
    units = view.regroup()
    assert [u.label for u in units] == ["masking.probability=0.15 (n=2)", f"{ids[2]}: masking.probability=0.3"]
    assert view.needed() == [("mlm_loss", False), ("mlm_loss", True)]
    missing = view.missing()
    assert len(missing) == 6
    view.take({key: repository.series(*key) for key in missing}, ended=set(ids))
    view.names = set().union(*(repository.metric_names(i) for i in ids))
    assert view.missing() == []
    assert [label for label, _ in view.metric_options()] == ["MLM loss", "held-out MLM loss"]
    group = view.unit_curve(units[0])                            # mean of seeds 0 and 1, with its band
    assert group["y"][-1] == pytest.approx(4.6) and group["low"][-1] == pytest.approx(4.5)
    header, rows = view.table_rows()
    assert header == ["run", "runs", "masking.probability", "train.seed", "mlm_loss:last", "mlm_loss:best",
                      "eval_mlm_loss:last"]
    assert rows[0][:4] == ["masking.probability=0.15 (n=2)", f"{ids[0]},{ids[1]}", 0.15, "0, 1"]
    assert rows[0][4] == pytest.approx(4.6) and rows[0][5] == pytest.approx(4.6) and rows[1][6] == pytest.approx(5.1)
