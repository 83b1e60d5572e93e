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
    treebank = root / "bank.conllu"
    treebank.write_text("1\tthe\t_\tDET\t_\t_\t3\tdet\t_\t_\n2\told\t_\tADJ\t_\t_\t3\tamod\t_\t_\n"
                        "3\triver\t_\tNOUN\t_\t_\t4\tnsubj\t_\t_\n4\tholds\t_\tVERB\t_\t_\t0\troot\t_\t_\n"
                        "5\ttwo\t_\tNUM\t_\t_\t6\tnummod\t_\t_\n6\tkeys\t_\tNOUN\t_\t_\t4\tobj\t_\t_\n\n",
                        encoding="utf-8")
    folders = []
    for name, rate in (("a", 0.15), ("b", 0.4)):
        config = tiny_train_config(learnable_dataset.path, max_steps=40, learning_rate=5e-3)
        config.masking.probability = rate
        config.inspect.every = 10
        config.inspect.first = 1
        config.inspect.sequences = 4
        config.inspect.probes = str(probes)
        config.inspect.treebank = str(treebank) if name == "a" else ""
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

    assert len(panel.heads.grid_a.tiles) == 4 and not panel.heads.grid_b.isVisible()
    panel.heads.grid_a.tiles[1, 1].clicked.emit(1, 1)
    assert panel.heads.attention.tokens[0] == "[CLS]" and panel.heads.attention.matrix.shape[0] == len(panel.heads.attention.tokens)

    panel.tabs.setCurrentIndex(1)
    html_at_start = panel.learned.passage.toHtml()
    panel.slider.setValue(panel.slider.maximum())
    assert "background-color" in panel.learned.passage.toHtml() and panel.learned.passage.toHtml() != html_at_start
    assert panel.learned.words.rowCount() > 5
    panel.learned.search.setText("keys")
    assert panel.learned.words.rowCount() == 1 and panel.learned.words.item(0, 0).text() == "keys"
    panel.learned.words.selectRow(0)
    assert len(panel.learned.word_plot.getPlotItem().listDataItems()) == 1

    panel.tabs.setCurrentIndex(2)
    panel.embeddings.word.setText("keys")
    assert panel.embeddings.lists[0].count() == 11 and "step 40" in panel.embeddings.lists[0].item(0).text()
    panel.embeddings.word.setText("zeppelin")
    assert "not among" in panel.embeddings.lists[0].item(0).text()

    panel.tabs.setCurrentIndex(3)
    assert panel.probes.tables[0].rowCount() == 2 and panel.probes.tables[0].columnCount() == len(steps)

    panel.tabs.setCurrentIndex(4)
    assert "the best head finds the dependency head of" in panel.syntax.note.text()
    assert panel.syntax.table.rowCount() == 2 and panel.syntax.table.item(1, 1).text().endswith("%")
    assert len(panel.syntax.plot.getPlotItem().listDataItems()) == 2


def test_two_runs_side_by_side_at_equal_steps(qtbot, inspected_runs):
    panel = make_panel(qtbot, [("40%", inspected_runs[1]), ("15%", inspected_runs[0])])
    panel.tabs.setCurrentIndex(4)
    assert "No treebank" in panel.syntax.note.text()                 # run A (40%) was recorded without one
    panel.show_runs([("15%", inspected_runs[0]), ("40%", inspected_runs[1])])
    qtbot.waitUntil(lambda: panel.a.label == "15%" and not panel.loading, timeout=20000)
    panel.tabs.setCurrentIndex(0)
    assert panel.b is not None and panel.heads.grid_b.isVisible()
    panel.slider.setValue(5)                                        # step 10
    assert panel.index_b() == 5 and "vs step 10" in panel.step_label.text()
    assert "40% at step 10" in panel.heads.grid_b.title.text()
    heads = panel.heads
    heads.diff.setCurrentIndex(heads.diff.findData("b"))               # run A against run B, head by head
    assert heads.grid_a.tiles[0, 0].caption.startswith("Δ ") and "against 40% step 10" in heads.grid_a.tiles[0, 0].caption
    heads.diff.setCurrentIndex(heads.diff.findData(0))                 # against the untrained model
    assert "against 15% step 0" in heads.grid_a.tiles[1, 1].caption
    heads.diff.setCurrentIndex(0)
    assert not heads.grid_a.tiles[1, 1].caption.startswith("Δ")
    panel.tabs.setCurrentIndex(1)
    styles = {item.opts["pen"].style() for item in panel.learned.class_plot.getPlotItem().listDataItems()}
    assert len(styles) == 2                                          # run B dashed
    text = panel.learned.passage.toPlainText()
    assert "15%, step 10" in text and "40%, step 10" in text          # one pack: both runs' passages


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
