"""The real window, offscreen: corpus, masking preview, training, runs, probe, closing."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QComboBox, QMessageBox, QPushButton, QWidget  # noqa: E402

from conftest import write_learnable_corpus  # noqa: E402


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch):
    from workbench.gui.main_window import MainWindow

    # A test that fails mid-run leaves a run training: closing the window then must not wait for an answer.
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.Yes)

    def make(**kwargs):
        window = MainWindow(db=str(tmp_path / "runs.db"), data_dir=tmp_path / "data",
                            settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat),
                            prepare_on_start=False, **kwargs)
        qtbot.addWidget(window)
        window.show()
        return window
    return make


def prepare(qtbot, window, corpus):
    window.corpus.set_sources([str(corpus)])
    window.corpus.vocab_size.setValue(256)
    window.corpus.request_prepare()
    qtbot.waitUntil(lambda: window.prepare_job is None, timeout=120_000)
    assert window.dataset is not None, window.last_error


def set_run(window, steps=20, **values):
    form = window.training.widgets
    form[("train", "max_steps")].setValue(steps)
    form[("train", "batch_size")].setValue(values.get("batch_size", 8))
    form[("train", "eval_every")].setValue(values.get("eval_every", 10))
    form[("train", "checkpoint_every")].setValue(values.get("checkpoint_every", 10))
    form[("train", "warmup_steps")].setValue(2)
    form[("train", "log_every")].setValue(1)
    form[("train", "learning_rate")].setValue(values.get("learning_rate", 0.002))
    window.masking.max_length.setValue(32)


def train(qtbot, window, timeout=240_000):
    assert window.training.start_button.isEnabled(), window.training.message.text()
    window.training.start_button.click()
    qtbot.waitUntil(lambda: window.runner.busy, timeout=5000)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=timeout)


@pytest.fixture
def corpus(tmp_path):
    return write_learnable_corpus(tmp_path / "topics.txt", documents=200)


def test_window_has_its_named_panels_and_controls(make_window):
    window = make_window()
    for name in ("corpusPanel", "maskingPanel", "trainingPanel", "plotsPanel", "runsPanel", "probePanel",
                 "finetunePanel"):
        assert window.findChild(QWidget, name) is not None, name
    for name in ("startButton", "pauseButton", "stopButton"):
        assert window.findChild(QPushButton, name) is not None, name
    assert window.training.widgets[("model", "preset")].currentText() == "tiny"
    assert not window.training.start_button.isEnabled()  # no dataset yet
    assert "Prepare a dataset" in window.training.message.text()
    # A fresh window explains itself: one line each instead of empty frames.
    assert "Press Start" in window.plots.hint.text() and not window.plots.hint.isHidden()
    assert not window.runs.empty_hint.isHidden() and not window.compare.hint.isHidden()
    assert window.compare.body.isHidden() and window.runs.diff.isHidden()
    assert "About" not in window.about_text() and window.data_dir.name in window.about_text()
    assert "torch" in window.about_text() and "Version" in window.about_text()


def test_a_new_panel_is_one_registry_line_and_an_older_saved_layout_does_not_hide_it(make_window, qtbot):
    from PySide6.QtWidgets import QLabel

    from workbench.gui.dock_layout import visible_tab_bars
    from workbench.gui.panel_registry import PANELS, PanelSpec

    window = make_window()
    window.save_settings()                                   # a layout saved before the new panel existed
    window.close()
    notes = PanelSpec("notes", "Notes", "bottom_right", lambda w: QLabel("notes", objectName="notesPanel"))
    again = make_window(panels=PANELS + (notes,))
    assert again.layout_version != window.layout_version
    qtbot.waitUntil(lambda: ["Runs", "Probe", "Fine-tune", "Notes"] in visible_tab_bars(again), timeout=5000)
    assert "Notes" in [a.text() for a in again.view_menu.actions()]
    assert again.docks["notes"].widget().objectName() == "notesPanel"


def test_each_dock_group_shows_one_tab_bar_fresh_restored_and_reset(make_window, qtbot):
    from workbench.gui.dock_layout import visible_tab_bars

    groups = [["Training", "Corpus"], ["Live plots", "Masking preview", "Compare", "Inspect"],
              ["Runs", "Probe", "Fine-tune"]]
    window = make_window()
    qtbot.waitUntil(lambda: sorted(visible_tab_bars(window)) == sorted(groups), timeout=5000)
    window.tabifyDockWidget(window.docks["corpus"], window.docks["probe"])      # a person rearranges
    qtbot.waitUntil(lambda: ["Training", "Corpus", "Probe"] in visible_tab_bars(window), timeout=5000)
    window.save_settings()
    window.close()
    again = make_window()                                                      # the saved layout comes back
    qtbot.waitUntil(lambda: sorted(visible_tab_bars(again)) == sorted(
        [["Training", "Corpus", "Probe"], ["Live plots", "Masking preview", "Compare", "Inspect"],
         ["Runs", "Fine-tune"]]),
        timeout=5000)
    again.reset_layout()
    qtbot.waitUntil(lambda: sorted(visible_tab_bars(again)) == sorted(groups), timeout=5000)
    assert [a.text() for a in again.view_menu.actions()[:9]] == [
        "Training", "Corpus", "Live plots", "Masking preview", "Runs", "Compare", "Inspect", "Probe", "Fine-tune"]
    again.view_menu.actions()[8].trigger()                                     # View still shows and hides them
    assert again.docks["finetune"].isHidden()
    assert again.docks["runs"].widget() is again.runs and again.runs.isVisible()


def test_form_validates_as_you_type(make_window, corpus, qtbot):
    window = make_window()
    prepare(qtbot, window, corpus)
    assert window.training.start_button.isEnabled()
    # A fresh form trains the default recipe: the automatic learning rate (0) survives the form unchanged.
    rate = window.training.widgets[("train", "learning_rate")]
    assert rate.text() == "auto (chosen for the model)" and window.training.config().train.learning_rate == 0.0
    assert window.training.config().model.architecture == "modernbert"
    window.run_settings.set("train", "max_steps", 321)          # set elsewhere (a sweep, the self-test): shown
    assert window.training.widgets[("train", "max_steps")].value() == 321
    seed = window.training.widgets[("train", "seed")]             # the config's whole range, not Qt's 32 bits
    seed.setValue(2**63 - 1)
    assert window.current_config().train.seed == 2**63 - 1 and seed.maximum() == 2**63 - 1
    window.training.widgets[("train", "batch_size")].setValue(10)
    window.run_settings.set("train", "gradient_accumulation_steps", 3)
    window.training.validate()
    assert "train.batch_size (10) must be divisible by train.gradient_accumulation_steps (3)" in \
        window.training.message.text()
    assert not window.training.start_button.isEnabled()
    window.run_settings.set("train", "gradient_accumulation_steps", 1)
    window.training.validate()
    assert window.training.start_button.isEnabled()
    preset = window.training.widgets[("model", "preset")]
    layers = window.training.widgets[("model", "num_hidden_layers")]
    preset.setCurrentText("mini")
    assert (layers.value(), layers.isEnabled()) == (4, False)  # a preset shows its sizes
    preset.setCurrentText("custom")
    assert layers.isEnabled()
    window.training.widgets[("model", "hidden_size")].setValue(100)
    window.training.widgets[("model", "num_attention_heads")].setValue(3)
    assert "model.hidden_size (100) must be divisible by model.num_attention_heads (3)" in window.training.message.text()
    window.training.widgets[("model", "num_attention_heads")].setValue(4)
    assert window.training.config().model.hidden_size == 100
    preset.setCurrentText("tiny")
    schedule = window.training.widgets[("train", "schedule")]
    cooldown = window.training.widgets[("train", "cooldown_fraction")]
    assert schedule.currentText() == "wsd" and cooldown.isEnabled()       # the default schedule
    cooldown.setValue(0.4)
    assert (window.training.config().train.schedule, window.training.config().train.cooldown_fraction) == ("wsd", 0.4)
    schedule.setCurrentText("linear")
    assert not cooldown.isEnabled()                              # the wsd schedule's setting: read-only without it
    schedule.setCurrentText("wsd")
    assert cooldown.isEnabled()
    command = window.training.torchrun_command()
    assert command.startswith("torchrun --nproc-per-node 1 -m workbench train") and "--set train.batch_size=10" in command


def fed_by_the_trainer(config, run_dir, monkeypatch, steps=1) -> list:
    """The micro-batches ``Trainer`` feeds its model in its first ``steps`` steps, captured from its stream."""
    from workbench.data.batches import BatchStream
    from workbench.train.trainer import Trainer

    fed, iterate = [], BatchStream.iterate

    def recording(self, epoch=0, index=0, progress=None):
        for item in iterate(self, epoch, index, progress):
            fed.append(item[2])
            yield item

    config.train.max_steps, config.train.max_minutes, config.train.eval_every_seconds = steps, 0.0, 0.0
    with monkeypatch.context() as patch:
        patch.setattr(BatchStream, "iterate", recording)
        Trainer(config, run_dir).run()
    return fed[: steps * config.train.gradient_accumulation_steps]


def shown_batch(panel, example: int, qtbot):
    panel.example.setValue(example)
    panel.redraw()                                        # the batch is cut on a worker thread
    qtbot.waitUntil(lambda: not panel.drawing, timeout=30_000)
    return panel.current


def settled(panel) -> bool:
    """The masking preview has drawn the example last asked for, with its guesses."""
    return not panel.drawing and not panel.predicting and not panel.redraw_timer.isActive()


def same_batch(a, b) -> bool:
    return all(np.array_equal(getattr(a, name), getattr(b, name))
               for name in ("input_ids", "token_type_ids", "attention_mask", "mlm_labels", "kinds", "nsp_labels"))


def test_masking_preview_shows_what_training_feeds_the_model(make_window, corpus, qtbot, monkeypatch, tmp_path):
    window = make_window()
    prepare(qtbot, window, corpus)
    panel = window.masking
    # Settings edited in both panels land in the one config the preview and Start read.
    panel.strategy.setCurrentText("whole_word")
    panel.probability.setValue(0.25)             # the default is 0.3
    panel.max_length.setValue(32)
    window.training.widgets[("train", "seed")].setValue(7)
    window.training.widgets[("train", "batch_size")].setValue(16)
    window.run_settings.set("train", "gradient_accumulation_steps", 2)       # micro-batches of 8
    assert window.current_config().masking.probability == 0.25 and window.current_config().train.seed == 7
    fed = fed_by_the_trainer(window.current_config(), tmp_path / "a", monkeypatch)
    assert len(fed) == 2 and len(fed[0]) == 8
    batch, row = shown_batch(panel, 11, qtbot)                                      # micro-batch 1, row 3
    assert row == 3 and same_batch(batch, fed[1])
    assert "micro-batch 1, row 3" in panel.header.text()
    html = panel.view.toHtml()
    assert "[MASK] (" in html and ("IsNext" in panel.header.text() or "NotNext" in panel.header.text())
    panel.stats_labels["selected_fraction"].setText("-")
    panel.measure(background=True)                       # what an edit does: on a worker thread
    qtbot.waitUntil(lambda: "(0.250)" in panel.stats_labels["selected_fraction"].text(), timeout=30_000)
    stats = panel.measure()
    assert stats["samples"] == 2000 and stats["special_selected"] == 0
    assert "(0.250)" in panel.stats_labels["selected_fraction"].text()

    # A falling rate: the first step is still masked at the start rate, and the header says where it goes.
    assert panel.final_probability.text() == "constant"
    panel.final_probability.setValue(0.1)
    assert window.current_config().masking.final_probability == 0.1
    fed = fed_by_the_trainer(window.current_config(), tmp_path / "falling", monkeypatch)
    batch, _ = shown_batch(panel, 11, qtbot)
    assert same_batch(batch, fed[1]) and "start rate 0.25; training lowers it to 0.1" in panel.header.text()
    panel.final_probability.setValue(0.0)

    # "New run from config" (or restored settings): every panel redraws from the replaced config.
    other = window.current_config()
    other.train.seed, other.train.batch_size, other.train.gradient_accumulation_steps = 3, 12, 3
    other.masking.probability, other.masking.strategy, other.nsp.objective = 0.2, "token", "sop"
    window.apply_config(other)
    assert panel.probability.value() == 0.2 and panel.objective.currentText() == "sop"
    assert window.training.widgets[("train", "seed")].value() == 3
    fed = fed_by_the_trainer(window.current_config(), tmp_path / "b", monkeypatch)
    assert [len(b) for b in fed] == [4, 4, 4]
    assert same_batch(shown_batch(panel, 9, qtbot)[0], fed[2])

    # Two processes: the preview is rank 0's micro-batch, as the trainer of rank 0 builds it.
    window.training.processes.setValue(2)
    window.run_settings.set("train", "gradient_accumulation_steps", 1)
    from workbench.train.trainer import Trainer

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    rank0 = Trainer(window.current_config(), tmp_path / "c").stream
    assert rank0.batch_size == 6 and rank0.world_size == 2
    assert same_batch(shown_batch(panel, 13, qtbot)[0], rank0.batch(0, 2))
    assert window.training.torchrun_command().startswith("torchrun --nproc-per-node 2 -m workbench train")


def test_bad_corpus_gives_a_message_and_the_panel_stays_usable(make_window, tmp_path, qtbot):
    window = make_window()
    bad = tmp_path / "broken.txt"
    bad.write_bytes(b"\x00\x01binary")
    window.corpus.set_sources([str(bad)])
    window.corpus.request_prepare()
    qtbot.waitUntil(lambda: window.prepare_job is None, timeout=30_000)
    assert "broken.txt" in window.last_error and "binary" in window.last_error
    assert window.corpus.prepare_button.isEnabled() and window.dataset is None


@pytest.mark.slow
def test_a_run_trains_plots_records_and_can_be_probed(make_window, corpus, qtbot):
    window = make_window()
    prepare(qtbot, window, corpus)
    set_run(window, steps=20)
    train(qtbot, window)
    assert window.last_error == ""
    assert window.plots.point_count() == 20 and window.plots.eval.n == 2
    run = window.repository.get(window.runner.run_id)
    assert run.status == "completed" and run.steps == 20 and [c.step for c in run.checkpoints] == [10, 20]
    qtbot.waitUntil(lambda: window.runs.table.rowCount() == 1 and not window.runs.loading, timeout=10_000)
    assert window.runs.empty_hint.isHidden() and window.plots.hint.isHidden()
    window.runs.select_runs([window.runner.run_id])
    assert not window.compare.body.isHidden() and window.compare.hint.isHidden()
    window.runs.table.setRowCount(0)
    window.runs.refresh(background=True)                 # the periodic refresh reads on a worker thread
    qtbot.waitUntil(lambda: window.runs.table.rowCount() == 1 and not window.runs.loading, timeout=10_000)
    assert window.runs.table.item(0, 2).text() == "completed"
    qtbot.waitUntil(lambda: window.probe.model is not None, timeout=30_000)     # loaded on a worker thread
    window.probe.fill_mask()                              # answered on a worker thread
    qtbot.waitUntil(lambda: not window.probe.busy, timeout=30_000)
    assert len(window.probe.predictions) == 1 and window.probe.results.rowCount() == 5
    window.probe.ask_nsp()
    qtbot.waitUntil(lambda: window.probe.probability is not None, timeout=30_000)
    assert 0 <= window.probe.probability <= 1
    assert window.masking.show_predictions.isEnabled()
    window.masking.redraw()                    # the example is cut, and guessed at, on worker threads
    qtbot.waitUntil(lambda: settled(window.masking), timeout=30_000)
    assert "%" in window.masking.view.toPlainText()  # predicted probabilities next to masked tokens
    # Accuracy by kind (this example, and the evaluation set on a worker thread) and a before/after view.
    assert "this example</b> [MASK]" in window.masking.eval_line.text()
    qtbot.waitUntil(lambda: window.masking.eval_by_kind is not None, timeout=60_000)
    assert "evaluation set</b>" in window.masking.eval_line.text() and "kept" in window.masking.eval_line.text()
    before = window.masking.before_choice
    assert [before.itemText(i) for i in range(before.count())] == ["no comparison", "step 10",
                                                                    "fresh weights (step 0)"]
    assert before.currentText() == "step 10"
    qtbot.waitUntil(lambda: window.masking.before is not None and settled(window.masking), timeout=30_000)
    assert "before: " in window.masking.view.toPlainText()
    before.setCurrentIndex(2)                  # loaded on a worker; the example is drawn again then
    qtbot.waitUntil(lambda: window.masking.before is not None and window.masking.before[0].startswith("fresh")
                    and settled(window.masking), timeout=30_000)
    assert "before (fresh weights (step 0))" in window.masking.view.toPlainText()
    # The Fine-tune panel: the finished run is filled in; both arms train and the comparison is recorded.
    assert window.finetune.source.text() == run.run_dir
    assert window.finetune.request().data == "builtin:word-order"     # a fresh form: the built-in task
    builtin = window.finetune.findChild(QComboBox, "finetuneBuiltin")
    builtin.activated.emit(2)
    assert window.finetune.request().data == "builtin:package" and builtin.currentIndex() == 0
    labelled = corpus.parent / "labelled.csv"
    labelled.write_text("text,label\n" + "\n".join(
        f"The {adjective} {topic} holds a secret.,{topic}" for topic in ("river", "castle", "engine")
        for adjective in ("old", "quiet", "bright", "small", "famous", "hidden")) + "\n", encoding="utf-8")
    window.finetune.data.setText(str(labelled))
    window.finetune.steps.setValue(4)
    window.finetune.seeds.setText("0")
    window.finetune.start_button.click()
    qtbot.waitUntil(lambda: window.finetune_job is None and window.finetune.results.rowCount() == 2, timeout=120_000)
    assert window.last_error == "" and "gain" in window.finetune.gain.text()
    assert {key[0] for key in window.finetune.curves} == {"pretrained", "scratch"}
    assert window.repository.children(window.runner.run_id, kind="finetune")


@pytest.mark.slow
def test_pause_resume_and_stop(make_window, corpus, qtbot):
    window = make_window()
    prepare(qtbot, window, corpus)
    set_run(window, steps=100_000, eval_every=0, checkpoint_every=0)
    window.training.start_button.click()
    qtbot.waitUntil(lambda: window.plots.point_count() >= 3, timeout=60_000)
    window.training.pause_button.click()
    qtbot.waitUntil(lambda: window.training.state == "paused", timeout=30_000)
    assert window.training.pause_button.text() == "Resume"
    assert window.repository.get(window.runner.run_id).status == "paused"
    window.training.pause_button.click()
    qtbot.waitUntil(lambda: window.training.state == "running", timeout=30_000)
    window.training.stop_button.click()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60_000)
    run = window.repository.get(window.runner.run_id)
    assert run.status == "stopped" and run.checkpoints and run.checkpoints[-1].step == run.steps


@pytest.mark.slow
def test_reopened_window_lists_runs_and_diffs_two(make_window, corpus, qtbot):
    window = make_window()
    prepare(qtbot, window, corpus)
    for lr in (0.002, 0.004):
        set_run(window, steps=5, learning_rate=lr, eval_every=0, checkpoint_every=0)
        train(qtbot, window)
    window.close()
    reopened = make_window()
    qtbot.waitUntil(lambda: reopened.runs.table.rowCount() == 2, timeout=10_000)  # the database opens after paint
    reopened.runs.select_runs([1, 2])
    assert "train.learning_rate" in reopened.runs.diff_keys()
    assert "model.hidden_size" not in reopened.runs.diff_keys()
    reopened.runs.ignore.setText("train.learning_rate, train.warmup")
    assert "train.learning_rate" not in reopened.runs.diff_keys()
    qtbot.waitUntil(lambda: not reopened.compare.loading and len(reopened.compare.drawn) == 2, timeout=10_000)
    labels = sorted(label.text for _, label in reopened.compare.legend.items)
    assert labels == ["1: train.learning_rate=0.002", "2: train.learning_rate=0.004"]


@pytest.mark.slow
def test_closing_during_a_run_stops_it_with_a_checkpoint(make_window, corpus, qtbot, monkeypatch):
    window = make_window()
    prepare(qtbot, window, corpus)
    set_run(window, steps=100_000, eval_every=0, checkpoint_every=0)
    window.training.start_button.click()
    qtbot.waitUntil(lambda: window.plots.point_count() >= 2, timeout=60_000)
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.Yes)
    run_id = window.runner.run_id
    window.close()
    assert not window.runner.busy
    run = window.repository.get(run_id)
    assert run.status == "stopped" and "window closed" in run.reason
    assert run.checkpoints and run.checkpoints[-1].step == run.steps


@pytest.mark.slow
def test_self_test_opens_the_window_prepares_the_sample_and_trains(qtbot, tmp_path, monkeypatch, capsys):
    from workbench.cli import main

    import tempfile

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))     # the sample text is unpacked here
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))           # and the throw-away profile made here
    assert main(["gui", "--self-test", "2"]) == 0
    out = capsys.readouterr().out
    assert "Start pressable" in out and "self-test passed" in out and "2 steps trained and recorded" in out
    assert list((tmp_path / "cache").rglob("python-docs-*.txt"))
    assert not list(tmp_path.glob("workbench-self-test-*"))         # the profile is gone afterwards


@pytest.mark.slow
def test_a_sweep_from_the_window_runs_its_queue_and_opens_the_comparison_grouped(make_window, corpus, qtbot):
    from workbench.gui.sweep_dialog import SweepDialog, parse_values
    assert parse_values("0.15, 0.3, nsp, true") == [0.15, 0.3, "nsp", True]
    window = make_window()
    prepare(qtbot, window, corpus)
    set_run(window, steps=4, eval_every=0, checkpoint_every=0)
    dialog = SweepDialog(window.current_config(), {"name": "rate", "grid": {"masking.probability": [0.15, 0.3]},
                                                   "seeds": [0, 1]})
    assert dialog.summary.text().startswith("4 runs varying masking.probability, train.seed")
    dialog.values[0].setText("0.15, 1.5")                # out of range: refused, naming the setting
    assert dialog.spec is None and "masking.probability" in dialog.summary.text()
    dialog.values[0].setText("0.15, 0.3")
    window.runner.start_sweep(dialog.spec)
    qtbot.waitUntil(lambda: window.sweeps.last_sweep_id is not None or bool(window.last_error), timeout=240_000)
    assert not window.last_error
    sweep_id = window.sweeps.last_sweep_id
    sweep = window.repository.sweeps.get(sweep_id)
    assert sweep.status == "completed" and [i.status for i in sweep.items] == ["done"] * 4
    runs = [window.repository.get(i.run_id) for i in sweep.items]
    assert all(run.status == "completed" and f"sweep:{sweep_id}" in run.tag_names for run in runs)
    assert [run.config["masking"]["probability"] for run in runs] == [0.15, 0.15, 0.3, 0.3]
    qtbot.waitUntil(lambda: not window.compare.loading and len(window.compare.drawn) == 2, timeout=20_000)
    assert window.compare.group.currentData() == "seed"
    assert sorted(label.text for _, label in window.compare.legend.items) == [
        "masking.probability=0.15 (n=2)", "masking.probability=0.3 (n=2)"]


@pytest.mark.slow
def test_a_stopped_sweep_continues_its_interrupted_run_with_that_runs_own_config(make_window, corpus, qtbot):
    from workbench.sweeps import sweep_from_dict
    window = make_window()
    prepare(qtbot, window, corpus)
    set_run(window, steps=30, eval_every=0, checkpoint_every=0)
    spec = sweep_from_dict({"name": "seeds", "seeds": [3, 4]}, source="test", base=window.current_config())
    window.runner.start_sweep(spec)
    qtbot.waitUntil(lambda: window.plots.point_count() >= 2, timeout=60_000)
    sweep_id, first_run = window.runner.sweep_id, window.runner.run_id
    window.training.stop_button.click()                       # Stop: the sweep pauses, its run is interrupted
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60_000)
    sweep = window.repository.sweeps.get(sweep_id)
    assert sweep.status == "paused" and [i.status for i in sweep.items] == ["interrupted", "queued"]
    stopped_at = window.repository.get(first_run).steps
    assert 0 < stopped_at < 30
    window.training.widgets[("train", "seed")].setValue(7)    # the form no longer matches the run
    window.training.widgets[("train", "max_steps")].setValue(12)
    window.runner.continue_sweep(sweep_id)                    # Run → Continue a sweep… on this sweep
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=120_000)
    assert not window.last_error
    sweep = window.repository.sweeps.get(sweep_id)
    assert sweep.status == "completed" and [i.status for i in sweep.items] == ["done", "done"]
    assert sweep.items[0].run_id == first_run                 # resumed, not restarted
    runs = [window.repository.get(i.run_id) for i in sweep.items]
    assert [run.config["train"]["seed"] for run in runs] == [3, 4]
    assert [run.steps for run in runs] == [30, 30] and all(run.status == "completed" for run in runs)


@pytest.mark.slow
def test_an_example_sweep_is_one_click_from_the_help_menu_over_the_current_config(make_window, corpus, qtbot):
    from workbench.gui.sweep_dialog import SweepDialog
    window = make_window()
    prepare(qtbot, window, corpus)
    set_run(window, steps=3, eval_every=0, checkpoint_every=0)
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    examples = next(a.menu() for a in help_menu.actions() if a.text() == "Example sweeps")
    action = next(a for a in examples.actions() if a.text() == "whole-word vs token masking")
    action.trigger()                                   # the one click
    qtbot.waitUntil(lambda: window.runner.sweep_id is not None, timeout=10_000)    # queued on a worker
    assert window.runner.busy
    sweep = window.repository.sweeps.get(window.runner.sweep_id)
    configs = [item.config for item in sweep.items]
    assert [(c["masking"]["strategy"], c["train"]["seed"]) for c in configs] == [
        ("whole_word", 0), ("whole_word", 1), ("token", 0), ("token", 1)]
    assert all(c["train"]["max_steps"] == 3 for c in configs)          # over the window's config
    window.runner.cancel_sweep()
    qtbot.waitUntil(lambda: window.runner.sweep_id is None and not window.runner.busy, timeout=60_000)
    sweep = window.repository.sweeps.get(sweep.id)
    assert sweep.status == "cancelled" and [i.status for i in sweep.items].count("queued") == 0

    # Run → New sweep… starts from an example and edits it.
    dialog = SweepDialog(window.current_config(), parent=window)
    dialog.example.setCurrentIndex(dialog.example.findData("masking-rate"))
    assert dialog.summary.text().startswith("6 runs varying masking.probability, train.seed")
    dialog.example.setCurrentIndex(dialog.example.findData("pair-task"))
    assert dialog.keys[0].currentData() == "nsp.objective" and dialog.keys[1].currentData() is None


def test_the_sweep_dialog_asks_before_queueing_more_than_200_runs(qtbot, monkeypatch):
    from PySide6.QtWidgets import QDialog, QDialogButtonBox

    from workbench.config import WorkbenchConfig
    from workbench.gui.sweep_dialog import SweepDialog

    dialog = SweepDialog(WorkbenchConfig(), {"grid": {"masking.probability": [0.1, 0.2, 0.3]},
                                             "seeds": list(range(100))})
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.Ok)
    assert "300 runs: you will be asked to confirm" in dialog.summary.text() and ok.isEnabled()
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.No)
    dialog.accept()
    assert asked and "300 runs" in asked[0] and dialog.spec is None and dialog.result() != QDialog.Accepted
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    dialog.accept()
    assert dialog.result() == QDialog.Accepted and dialog.spec.run_count == 300
    dialog.seeds.setText(", ".join(str(seed) for seed in range(4000)))      # 12,000 runs: never queued
    assert "at most 10,000" in dialog.summary.text() and not ok.isEnabled() and dialog.spec is None


def test_the_live_plots_say_a_run_without_a_pair_task_records_no_nsp(qtbot):
    import warnings

    from workbench.gui.panels.plots_panel import PlotsPanel
    from workbench.train.events import EvalMetrics, StepMetrics

    panel = PlotsPanel()
    qtbot.addWidget(panel)
    panel.resize(1200, 700)
    panel.show()
    with warnings.catch_warnings():
        warnings.simplefilter("error")                    # no all-NaN warnings from the plotting library
        for step in range(1, 41):
            panel.add_event(StepMetrics(
                step=step, epoch=0, loss=5 - step / 20, mlm_loss=5 - step / 20, nsp_loss=None, mlm_accuracy=step / 100,
                mlm_accuracy_masked=0.1, mlm_accuracy_random=0.1, mlm_accuracy_kept=0.1, nsp_accuracy=None, lr=1e-3,
                grad_norm=1.0, tokens_per_second=1000.0, padding_fraction=0.1,
                masking_rate=0.3, step_time=0.1, tokens_seen=step * 100,
                elapsed=step * 0.1, progress=step / 40, eta_seconds=1.0))
        panel.add_event(EvalMetrics(step=40, mlm_loss=4.0, mlm_accuracy=0.2, perplexity=54.6, nsp_loss=None,
                                    nsp_accuracy=None, sequences=10, chance_nsp_accuracy=0.0))
        panel.redraw()
        panel.plots["nsp_accuracy"].vb.updateAutoRange()
    assert panel.absent == {"nsp_loss", "nsp_accuracy"}
    assert panel.absent_notes["nsp_accuracy"].isVisible() and "no pair task" in panel.absent_notes["nsp_accuracy"].toPlainText()
    def points(item) -> int:
        return 0 if item.xData is None else len(item.xData)

    assert points(panel.curves["nsp_accuracy"]) == 0 and points(panel.eval_points["nsp_accuracy"]) == 0
    assert points(panel.curves["mlm_loss"]) == 40 and points(panel.eval_points["mlm_loss"]) == 1
    panel.clear()                                         # the next run has a pair task: the note goes
    panel.add_event(StepMetrics(
        step=1, epoch=0, loss=5.7, mlm_loss=5.0, nsp_loss=0.7, mlm_accuracy=0.0, mlm_accuracy_masked=0.0,
        mlm_accuracy_random=0.0, mlm_accuracy_kept=0.0, nsp_accuracy=0.5, lr=1e-3, grad_norm=1.0,
        tokens_per_second=1000.0, padding_fraction=0.1,
        masking_rate=0.3, step_time=0.1, tokens_seen=100, elapsed=0.1, progress=0.1,
        eta_seconds=1.0))
    panel.redraw()
    assert not panel.absent and not panel.absent_notes["nsp_accuracy"].isVisible()


def test_the_corpus_panel_binds_the_tokenizer_sample_both_ways_and_says_what_was_sampled(qtbot, tmp_path):
    from workbench.data.dataset import TokenizedDataset
    from workbench.data.prepare import prepare_dataset
    from workbench.gui.panels.corpus_panel import CorpusPanel

    panel = CorpusPanel(datasets_root=tmp_path)
    qtbot.addWidget(panel)
    assert panel.sample_mb.value() == panel.settings.config.tokenizer.sample_mb == 256
    panel.settings.set("tokenizer", "sample_mb", 64)
    assert panel.sample_mb.value() == 64
    panel.sample_mb.setValue(0)
    assert panel.settings.config.tokenizer.sample_mb == 0 and panel.sample_mb.text() == "whole corpus"

    corpus = write_learnable_corpus(tmp_path / "c.txt", 40)
    config = panel.settings.config
    config.tokenizer.vocab_size, config.tokenizer.min_frequency = 120, 1
    prepared = prepare_dataset([corpus], tmp_path / "ds", config).dataset
    panel.show_dataset(TokenizedDataset(prepared.path))
    assert "tokenizer trained on the whole corpus" in panel.stats.text()
