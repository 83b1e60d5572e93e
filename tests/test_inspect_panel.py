"""The Inspect panel on real runs' snapshots: every view draws, the slider moves them, two runs side by side,
exports, and a run without snapshots says what to do."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from workbench.train.trainer import Trainer  # noqa: E402

from conftest import tiny_train_config  # noqa: E402


@pytest.fixture(scope="module")
def inspected_runs(learnable_dataset, tmp_path_factory):
    """Two tiny runs with snapshots (masking 15% and 40%) and built-in-format probes."""
    root = tmp_path_factory.mktemp("inspected")
    probes = root / "probes.tsv"
    probes.write_text("fill\tThe old river holds two [MASK].\tkeys\n"
                      "minimal\tThe old river holds two keys.\tThe old river hold two keys.\n", encoding="utf-8")
    folders = []
    for name, rate in (("a", 0.15), ("b", 0.4)):
        config = tiny_train_config(learnable_dataset.path, max_steps=40, learning_rate=5e-3)
        config.masking.probability = rate
        config.inspect.every = 10
        config.inspect.first = 1
        config.inspect.sequences = 4
        config.inspect.probes = str(probes)
        Trainer(config, root / name).run()
        folders.append(str(root / name))
    return folders


def make_panel(qtbot, runs):
    from workbench.gui.panels.inspect_panel import InspectPanel

    panel = InspectPanel()
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    panel.show()
    panel.show_runs(runs)
    qtbot.waitUntil(lambda: panel.a is not None and not panel.loading, timeout=20000)
    return panel


def test_the_slider_moves_every_view_over_the_snapshots(qtbot, inspected_runs):
    panel = make_panel(qtbot, [("a", inspected_runs[0])])
    steps = panel.a.inspection.steps.tolist()
    assert steps == [0, 1, 2, 4, 8, 10, 20, 30, 40]
    assert panel.slider.maximum() == len(steps) - 1 and panel.slider.value() == len(steps) - 1
    assert panel.step_label.text().startswith("step 40 ")
    panel.slider.setValue(0)
    assert panel.step_label.text().startswith("step 0 ")

    assert len(panel.grid_a.tiles) == 4 and not panel.grid_b.isVisible()
    panel.grid_a.tiles[1, 1].clicked.emit(1, 1)
    assert panel.attention.tokens[0] == "[CLS]" and panel.attention.matrix.shape[0] == len(panel.attention.tokens)

    panel.tabs.setCurrentIndex(1)
    html_at_start = panel.passage.toHtml()
    panel.slider.setValue(panel.slider.maximum())
    assert "background-color" in panel.passage.toHtml() and panel.passage.toHtml() != html_at_start
    assert panel.words.rowCount() > 5
    panel.word_search.setText("keys")
    assert panel.words.rowCount() == 1 and panel.words.item(0, 0).text() == "keys"
    panel.words.selectRow(0)
    assert len(panel.word_plot.getPlotItem().listDataItems()) == 1

    panel.tabs.setCurrentIndex(2)
    panel.neighbour_word.setText("keys")
    assert panel.neighbours_a.count() == 11 and "step 40" in panel.neighbours_a.item(0).text()
    panel.neighbour_word.setText("zeppelin")
    assert "not among" in panel.neighbours_a.item(0).text()

    panel.tabs.setCurrentIndex(3)
    assert panel.probes_a.rowCount() == 2 and panel.probes_a.columnCount() == len(steps)

    panel.tabs.setCurrentIndex(4)
    assert "No treebank" in panel.syntax_note.text()


def test_two_runs_side_by_side_at_equal_steps(qtbot, inspected_runs):
    panel = make_panel(qtbot, [("15%", inspected_runs[0]), ("40%", inspected_runs[1])])
    assert panel.b is not None and panel.grid_b.isVisible()
    panel.slider.setValue(5)                                        # step 10
    assert panel.index_b() == 5 and "vs step 10" in panel.step_label.text()
    assert "40% at step 10" in panel.grid_b.title.text()
    panel.tabs.setCurrentIndex(1)
    styles = {item.opts["pen"].style() for item in panel.class_plot.getPlotItem().listDataItems()}
    assert len(styles) == 2                                          # run B dashed


def test_exports_write_images_and_numbers(qtbot, inspected_runs, tmp_path):
    panel = make_panel(qtbot, [("a", inspected_runs[0])])
    for index in range(panel.tabs.count()):
        panel.tabs.setCurrentIndex(index)
        for suffix in ("png", "svg"):
            path = tmp_path / f"view{index}.{suffix}"
            panel.write_image(str(path))
            assert path.stat().st_size > 1000
    panel.export_csv("words", str(tmp_path / "words.csv"))
    lines = (tmp_path / "words.csv").read_text().splitlines()
    assert lines[0].startswith("token,occurrences,frequency rank,learned at step") and len(lines) > 5


def test_a_run_without_snapshots_says_how_to_get_them(qtbot, tmp_path):
    from workbench.gui.panels.inspect_panel import InspectPanel

    panel = InspectPanel()
    qtbot.addWidget(panel)
    panel.show_runs([("old", str(tmp_path))])
    qtbot.waitUntil(lambda: not panel.loading, timeout=10000)
    assert panel.a is None and "--from-checkpoints" in panel.message.text()
    assert not panel.slider.isEnabled()
