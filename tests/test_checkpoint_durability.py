"""Checkpoints are verified, damaged ones are skipped or refused, branches never mix, resume is exact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from workbench.errors import ConfigError, WorkbenchError
from workbench.interop.huggingface import export_checkpoint
from workbench.services.run_launch import find_resume_target
from workbench import checkpoint as ckpt
from workbench.train.trainer import Trainer

from conftest import tiny_train_config, write_learnable_corpus
from test_cli_train import TINY


def train(config, run_dir, resume_from=None):
    events = []
    trainer = Trainer(config, run_dir, resume_from=resume_from)
    trainer.subscribe(events.append)
    return trainer.run(), events


@pytest.fixture()
def run_with_checkpoints(learnable_dataset, tmp_path):
    config = tiny_train_config(learnable_dataset.path, max_steps=12, checkpoint_every=4, keep_checkpoints=5)
    train(config, tmp_path / "run")
    return config, tmp_path / "run"


@pytest.mark.parametrize("damage", ["truncate", "zero", "garbage", "nan", "info"])
def test_a_damaged_latest_checkpoint_is_named_skipped_on_resume_and_refused_by_export(run_with_checkpoints, damage,
                                                                                      tmp_path):
    config, run_dir = run_with_checkpoints
    latest = ckpt.list_checkpoints(run_dir)[-1]
    weights = latest / ckpt.WEIGHTS
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "zero":
        weights.write_bytes(b"")
    elif damage == "garbage":
        weights.write_bytes(os.urandom(weights.stat().st_size))
    elif damage == "nan":  # a checkpoint written from poisoned weights: checksums match, values do not
        from safetensors.torch import load_file, save_file

        tensors = load_file(str(weights))
        first = sorted(tensors)[0]
        tensors[first] = torch.full_like(tensors[first], float("nan"))
        save_file(tensors, str(weights), metadata={"format": "pt"})
        info = json.loads((latest / ckpt.INFO).read_text())
        info["files"][ckpt.WEIGHTS] = ckpt.sha256_file(weights)
        (latest / ckpt.INFO).write_text(json.dumps(info))
    else:
        (latest / ckpt.INFO).write_text("{not json")
    problem = ckpt.verify_checkpoint(latest)
    assert problem and str(latest) in problem
    target = find_resume_target(run_dir)
    assert target.checkpoint == ckpt.list_checkpoints(run_dir)[-2]
    assert any(str(latest) in notice for notice in target.notices)
    with pytest.raises(WorkbenchError, match="damaged"):
        export_checkpoint(latest, tmp_path / "export")
    config.train.max_steps = 14
    result, events = train(config, run_dir, resume_from=run_dir)
    assert result.status == "completed"
    assert events[0].start_step == 8
    assert any(e.type == "notice" and "skipped a damaged checkpoint" in e.message for e in events)


def test_resuming_an_older_checkpoint_starts_a_branch_and_keeps_the_newer_ones(run_with_checkpoints):
    config, run_dir = run_with_checkpoints
    steps = [ckpt.step_of(p) for p in ckpt.list_checkpoints(run_dir)]
    assert steps == [4, 8, 12]
    older = ckpt.list_checkpoints(run_dir)[0]
    config.train.max_steps = 6
    result, events = train(config, run_dir, resume_from=older)
    assert result.status == "completed" and result.step == 6
    assert any(e.type == "notice" and "steps 8, 12" in e.message for e in events)
    assert [ckpt.step_of(p) for p in ckpt.list_checkpoints(run_dir)] == [4, 6]
    abandoned = [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith("abandoned-")]
    assert len(abandoned) == 1 and sorted(p.name for p in abandoned[0].iterdir()) == ["step-0000008", "step-0000012"]
    assert find_resume_target(run_dir).checkpoint.name == "step-0000006"  # never the abandoned step 12


def test_resume_refuses_another_dataset(run_with_checkpoints, tmp_path, small_config):
    from workbench.data.prepare import prepare_dataset

    config, run_dir = run_with_checkpoints
    other = prepare_dataset([write_learnable_corpus(tmp_path / "other.txt", seed=7)], tmp_path / "other-ds",
                            small_config).dataset
    config.data.dataset = str(other.path)
    with pytest.raises(ConfigError, match="trained on another dataset"):
        Trainer(config, run_dir, resume_from=run_dir)


def test_metric_bookkeeping_and_schedule_survive_resume(learnable_dataset, tmp_path):
    config = tiny_train_config(learnable_dataset.path, max_steps=12, checkpoint_every=5, log_every=3,
                               warmup_steps=2)
    config.model.hidden_dropout_prob = config.model.attention_probs_dropout_prob = 0.0
    _, whole = train(config, tmp_path / "whole")
    config.train.max_steps = 5
    train(config, tmp_path / "split")
    config.train.max_steps = 12
    _, resumed = train(config, tmp_path / "split", resume_from=tmp_path / "split")
    last_whole = [e for e in whole if e.type == "step"][-1]
    last_resumed = [e for e in resumed if e.type == "step"][-1]
    assert last_resumed.tokens_seen == last_whole.tokens_seen
    first_resumed = [e for e in resumed if e.type == "step"][0]
    assert first_resumed.step == 6  # the interval 4..6 started before the checkpoint and is reported whole
    # Raising max_steps on resume continues the decay: the learning rate does not jump up.
    lrs_before = [e.lr for e in train(config.__class__.from_dict({**config.to_dict(), "train": {
        **config.to_dict()["train"], "max_steps": 5}}), tmp_path / "lr")[1] if e.type == "step"]
    config.train.log_every = 1
    config.train.max_steps = 20
    lrs_after = [e.lr for e in train(config, tmp_path / "lr", resume_from=tmp_path / "lr")[1] if e.type == "step"]
    assert lrs_after[0] <= lrs_before[-1] + 1e-12
    assert all(b <= a + 1e-12 for a, b in zip(lrs_after, lrs_after[1:]))


@pytest.mark.slow
def test_sigterm_stops_cleanly_with_a_checkpoint(learnable_dataset, tmp_path):
    args = ["train", "--dataset", str(learnable_dataset.path), "--no-db", "--out", str(tmp_path / "run"), *TINY,
            "--set", "train.max_steps=100000", "--json"]
    process = subprocess.Popen([sys.executable, "-m", "workbench", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if json.loads(line)["type"] == "step":
            break
    process.send_signal(signal.SIGTERM)
    rest = [json.loads(line) for line in process.stdout]
    assert process.wait(timeout=60) == 0
    finished = [e for e in rest if e["type"] == "finished"]
    assert finished and finished[0]["status"] == "stopped" and "SIGTERM" in finished[0]["reason"]
    assert ckpt.list_checkpoints(tmp_path / "run") and not ckpt.verify_checkpoint(ckpt.list_checkpoints(tmp_path / "run")[-1])
