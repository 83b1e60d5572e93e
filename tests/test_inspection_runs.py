"""Snapshots as runs record them: on the schedule, resumable, off when asked, and after the fact from
checkpoints; ``pretrain-workbench inspect RUN``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.snapshots.store import SnapshotStore
from workbench.snapshots.views import RunInspection
from workbench.train.control import TrainingControl
from workbench.train.trainer import Trainer

from conftest import tiny_train_config
from test_cli import run_inside


def train(config, run_dir, **kwargs):
    events = []
    trainer = Trainer(config, run_dir, **kwargs)
    trainer.subscribe(events.append)
    return trainer.run(), events


def test_a_run_records_snapshots_on_the_schedule_and_at_its_end(learnable_dataset, tmp_path):
    config = tiny_train_config(learnable_dataset.path, max_steps=100, learning_rate=5e-3)
    config.inspect.every = 40
    config.inspect.first = 1
    config.inspect.sequences = 4
    result, events = train(config, tmp_path / "run")
    assert SnapshotStore(tmp_path / "run").steps() == [0, 1, 2, 4, 8, 16, 32, 40, 80, 100]
    taken = [e for e in events if e.type == "snapshot"]
    assert [e.step for e in taken] == [0, 1, 2, 4, 8, 16, 32, 40, 80, 100]
    assert all(0 < e.size_bytes < 200_000 for e in taken)
    inspection = RunInspection(tmp_path / "run")
    surprisal = inspection.mean_surprisal()
    assert surprisal[-1] < surprisal[0] - 1.0                       # the model learned, and the pack shows it
    stages = inspection.stages()
    assert stages["unigram"][-1] < stages["unigram"][0]             # first it learns the word frequencies


def test_a_resumed_run_continues_the_series_and_retakes_what_it_trains_again(learnable_dataset, tmp_path):
    config = tiny_train_config(learnable_dataset.path, max_steps=40, checkpoint_every=10)
    config.inspect.every = 10
    config.inspect.first = 1
    control = TrainingControl()
    trainer = Trainer(config, tmp_path / "run", control=control)
    trainer.subscribe(lambda e: control.stop() if e.type == "step" and e.step == 25 else None)
    trainer.run()
    store = SnapshotStore(tmp_path / "run")
    assert store.steps()[-1] == 25                                  # stopped: its end is inspected too
    before = store.read(20)["surprisal"]
    result, events = train(config, tmp_path / "run", resume_from=tmp_path / "run" / "checkpoints" / "step-0000020")
    assert store.steps() == [0, 1, 2, 4, 8, 10, 20, 30, 40]          # 25 was trained again: its snapshot went
    assert [e.step for e in events if e.type == "snapshot"] == [30, 40]
    assert np.array_equal(store.read(20)["surprisal"], before, equal_nan=True)


def test_inspection_can_be_turned_off(learnable_dataset, tmp_path):
    config = tiny_train_config(learnable_dataset.path, max_steps=5)
    config.inspect.enabled = False
    train(config, tmp_path / "run")
    assert not (tmp_path / "run" / "inspect").exists()


def test_a_bad_probe_file_stops_the_run_before_it_starts(learnable_dataset, tmp_path):
    from workbench.snapshots.probes import ProbeFileError

    probes = tmp_path / "probes.tsv"
    probes.write_text("fill\tThe old [MASK] holds two keys.\triver\n", encoding="utf-8")
    config = tiny_train_config(learnable_dataset.path, max_steps=5)
    config.inspect.probes = str(probes)
    with pytest.raises(ProbeFileError, match="probes.tsv:1: the answer 'river' is 4 tokens"):
        Trainer(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_inspect_from_checkpoints_and_every_view_from_the_command_line(learnable_dataset, tmp_path, capsys,
                                                                        monkeypatch):
    config = tiny_train_config(learnable_dataset.path, max_steps=30, checkpoint_every=10, keep_checkpoints=5)
    config.inspect.enabled = False                  # as a run recorded before inspection existed
    train(config, tmp_path / "run")
    run_dir = tmp_path / "run"

    result = run_inside(capsys, monkeypatch, "inspect", run_dir)
    assert result.returncode == 2 and "--from-checkpoints" in result.stderr

    probes = tmp_path / "probes.tsv"
    probes.write_text("fill\tThe old river holds two [MASK].\tkeys\n", encoding="utf-8")
    result = run_inside(capsys, monkeypatch, "inspect", run_dir, "--from-checkpoints", "--probes", probes, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["steps"] == [10, 20, 30] and "took 3 snapshot(s)" in result.stderr

    result = run_inside(capsys, monkeypatch, "inspect", run_dir, "--view", "heads", "--step", "19", "--json")
    rows = json.loads(result.stdout)
    assert len(rows) == 4 and {r["step"] for r in rows} == {20} and {"kind", "previous", "entropy"} <= set(rows[0])

    out = tmp_path / "classes.csv"
    result = run_inside(capsys, monkeypatch, "inspect", run_dir, "--view", "classes", "--csv", out)
    lines = out.read_text().splitlines()
    assert result.returncode == 0 and lines[0].startswith("step,tokens seen,all,") and len(lines) == 4

    result = run_inside(capsys, monkeypatch, "inspect", run_dir, "--view", "probes")
    assert result.stdout.splitlines()[1].startswith("fill 1")

    result = run_inside(capsys, monkeypatch, "inspect", run_dir, "--view", "neighbours", "--word", "zeppelin")
    assert result.returncode == 2 and "'zeppelin' is not among" in result.stderr

    result = run_inside(capsys, monkeypatch, "inspect", learnable_dataset.path, "--view", "heads")
    assert result.returncode == 2 and "--view is for a run" in result.stderr
