"""The Compare panel and the Runs panel's expression filter, on a real SQLite history of synthetic runs."""

from __future__ import annotations

import csv
import os
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from workbench.config import WorkbenchConfig  # noqa: E402
from workbench.store.repository import RunRepository  # noqa: E402

pytest.importorskip("PySide6")


@pytest.fixture
def history(tmp_path):
    """Six completed runs: masking probability 0.15 or 0.3, seeds 0-2; the 0.3 runs end lower."""
    repository = RunRepository(f"sqlite:///{tmp_path / 'runs.db'}")
    for probability in (0.15, 0.3):
        for seed in range(3):
            config = WorkbenchConfig()
            config.train.seed, config.masking.probability = seed, probability
            run = repository.create_run(config.to_dict(), f"p{probability}-s{seed}", str(tmp_path / f"{probability}-{seed}"))
            repository.start(run.id, "cpu", 100)
            final = 3.0 if probability == 0.3 else 4.0
            steps = np.arange(1, 101)
            loss = final + 6.0 / steps + 0.05 * seed
            loss[0] = 1000.0 if seed == 0 else loss[0]          # one early spike: "ignore outliers" must cope
            rows = [{"run_id": run.id, "step": int(s), "name": "mlm_loss", "value": float(v), "wall_time": s * 0.5,
                     "is_eval": False} for s, v in zip(steps, loss)]
            rows += [{"run_id": run.id, "step": int(s), "name": "tokens_seen", "value": float(s * 1000),
                      "wall_time": s * 0.5, "is_eval": False} for s in steps]
            rows += [{"run_id": run.id, "step": s, "name": "mlm_loss", "value": final + 0.2 + 0.05 * seed,
                      "wall_time": s * 0.5, "is_eval": True} for s in (50, 100)]
            repository.add_metrics(rows)
            repository.update(run.id, status="completed", steps=100, final_metrics={
                "mlm_loss": float(loss[-1]), "eval_mlm_loss": final + 0.2 + 0.05 * seed})
    return repository


@pytest.fixture
def panel(qtbot, history):
    from workbench.gui.panels.compare_panel import ComparePanel

    widget = ComparePanel(history)
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    widget.show()
    widget.show_runs(history.list_runs())
    qtbot.waitUntil(lambda: not widget.loading and len(widget.drawn) == 6, timeout=10_000)
    return widget


def legend(panel) -> list[str]:
    return sorted(label.text for _, label in panel.legend.items)


def test_each_run_is_named_by_what_sets_it_apart_and_keeps_its_colour(panel):
    assert "1: masking.probability=0.15, train.seed=0" in legend(panel)
    assert "6: masking.probability=0.3, train.seed=2" in legend(panel)
    colours = {unit.id: unit.colour for unit in panel.units}
    panel.show_runs([run for run in panel.runs if run.id in (2, 5)])
    assert {unit.id: unit.colour for unit in panel.units} == {2: colours[2], 5: colours[5]}


def test_runs_differing_only_in_seed_are_one_mean_curve_with_a_band_and_one_row(panel, qtbot):
    panel.group.setCurrentIndex(panel.group.findData("seed"))
    qtbot.waitUntil(lambda: len(panel.drawn) == 2, timeout=5000)
    assert legend(panel) == ["masking.probability=0.15 (n=3)", "masking.probability=0.3 (n=3)"]
    header, rows = panel.table_rows()
    assert [row[1] for row in rows] == ["1,2,3", "4,5,6"]
    last = header.index("mlm_loss:last")
    assert rows[0][last] == pytest.approx(4.0 + 0.06 + 0.05)      # mean over seeds 0, 1, 2 of the last value
    x, mean = panel.drawn[4]
    assert mean[-1] == pytest.approx(3.0 + 0.06 + 0.05)
    bands = [item for item in panel.plot.getPlotItem().items if type(item).__name__ == "BandItem" and item.isVisible()]
    assert len(bands) == 2 and all(not band.path().isEmpty() for band in bands)
    outline = panel._items[(4, "band")].path().boundingRect()      # the band encloses its group's mean
    assert outline.top() <= mean.min() and outline.bottom() >= mean.max() and outline.right() == x[-1]


def test_a_baseline_gives_differences_in_the_plot_and_deltas_in_the_table(panel, qtbot):
    panel.smoothing.setValue(0.0)
    panel.baseline.setCurrentIndex(panel.baseline.findData(1))
    panel.difference.setChecked(True)
    x, y = panel.drawn[1]
    assert np.allclose(y, 0.0)
    x, y = panel.drawn[4]
    assert y[-1] == pytest.approx((3.0 + 0.06) - (4.0 + 0.06))
    assert panel.plot.getPlotItem().getAxis("left").labelText.startswith("Δ")
    cells = [panel.table.item(r, c).text() for r in range(panel.table.rowCount())
             for c in range(panel.table.columnCount())]
    assert any("(Δ -1" in text for text in cells)


def test_x_axis_by_tokens_and_outliers_ignored_in_the_y_range(panel, qtbot):
    panel.axis.setCurrentIndex(panel.axis.findData("tokens"))
    qtbot.waitUntil(lambda: not panel.loading and len(panel.drawn) == 6, timeout=5000)
    x, _ = panel.drawn[2]
    assert x[0] == 1000 and x[-1] == 100_000
    low, high = panel.plot.getPlotItem().viewRange()[1]
    assert high < 100                                  # the spike of 1000 at step 1 does not set the scale
    panel.robust.setChecked(False)
    panel.plot.getPlotItem().vb.updateAutoRange()
    qtbot.waitUntil(lambda: panel.plot.getPlotItem().viewRange()[1][1] >= 1000, timeout=3000)


def test_chosen_columns_and_every_export(panel, qtbot, tmp_path):
    panel.set_columns(["masking.probability", "mlm_loss:min", "eval_mlm_loss:last"])
    qtbot.waitUntil(lambda: not panel.loading, timeout=5000)
    header, rows = panel.table_rows()
    assert header == ["run", "runs", "masking.probability", "mlm_loss:min", "eval_mlm_loss:last"]
    assert rows[3][2:] == [0.3, pytest.approx(3.0 + 0.06), pytest.approx(3.2)]
    assert "eval_mlm_loss:best" in panel.available_columns() and "train.seed" in panel.available_columns()
    panel.export("table", str(tmp_path / "table.csv"))
    with open(tmp_path / "table.csv", newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    assert table[0] == header and len(table) == 7 and float(table[4][3]) == pytest.approx(3.06)
    panel.export("series", str(tmp_path / "series.csv"))
    with open(tmp_path / "series.csv", newline="", encoding="utf-8") as f:
        series = list(csv.DictReader(f))
    assert len(series) == 6 * (100 + 100 + 2)
    assert {"masking.probability", "train.seed", "metric", "step", "value"} <= set(series[0])
    panel.export("png", str(tmp_path / "plot.png"))
    png = (tmp_path / "plot.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 2400    # print resolution
    panel.export("svg", str(tmp_path / "plot.svg"))
    root = ElementTree.parse(tmp_path / "plot.svg").getroot()
    assert root.tag.endswith("svg") and len(list(root.iter("{http://www.w3.org/2000/svg}path"))) >= 6
    panel.tabs.setCurrentIndex(1)                      # parallel coordinates: the differing settings, the metric
    panel.export("svg", str(tmp_path / "parallel.svg"))
    text = (tmp_path / "parallel.svg").read_text(encoding="utf-8")
    assert "masking.probability" in text and "train.seed" in text and "mlm_loss (last)" in text


def test_the_runs_filter_takes_expressions_and_names_a_bad_one(qtbot, history):
    from workbench.gui.panels.runs_panel import RunsPanel

    runs = RunsPanel(history)
    qtbot.addWidget(runs)
    qtbot.waitUntil(lambda: runs.table.rowCount() == 6, timeout=10_000)
    runs.filter.setText("masking.probability >= 0.2 and eval_mlm_loss < 3.3")
    assert sorted(runs.visible_ids()) == [4, 5]
    runs.filter.setText("p0.15")                        # words still search names and tags
    assert sorted(runs.visible_ids()) == [1, 2, 3]
    runs.filter.setText("masking.probabilty > 0.2")
    assert not runs.filter_error.isHidden() and "unknown name 'masking.probabilty'" in runs.filter_error.text()
    assert sorted(runs.visible_ids()) == [1, 2, 3]      # a bad expression leaves the rows as they were
    runs.filter.setText("train.seed in [0, 2] or")
    assert "not an expression" in runs.filter_error.text()
    runs.filter.setText("")
    assert runs.filter_error.isHidden() and len(runs.visible_ids()) == 6
