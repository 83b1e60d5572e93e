"""DistributedDataParallel with gloo: two CPU processes agree and match one process in expectation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

WORKER = textwrap.dedent("""
    import hashlib, json, os, sys
    sys.path.insert(0, sys.argv[1])
    import torch
    from conftest import tiny_train_config
    from workbench.train.control import TrainingControl
    from workbench.train.trainer import Trainer

    resume = sys.argv[5] if len(sys.argv) > 5 else None
    config = tiny_train_config(sys.argv[2], max_steps=int(sys.argv[4]), log_every=1, checkpoint_every=5)
    config.nsp.objective = os.environ.get("WB_TEST_OBJECTIVE", "nsp")
    events, control = [], TrainingControl()
    stop_at = int(os.environ.get("WB_TEST_STOP_AT", "0"))     # rank 0 asks; every rank stops there
    trainer = Trainer(config, sys.argv[3], resume_from=resume, control=control)
    trainer.subscribe(events.append)
    trainer.subscribe(lambda e: e.type == "step" and e.step == stop_at and control.stop("the test stops here"))
    result = trainer.run()
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in trainer.model.parameters())).hexdigest()
    rank = os.environ.get("RANK", "0")
    with open(os.path.join(sys.argv[3], f"rank{rank}.json"), "w") as f:
        json.dump({"digest": digest, "status": result.status,
                   "losses": [e.loss for e in events if e.type == "step"]}, f)
""")


@pytest.mark.slow
def test_two_gloo_processes_agree_and_match_one_process(learnable_dataset, tmp_path):
    from pathlib import Path

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    tests = str(Path(__file__).parent)
    steps = "40"
    ddp = tmp_path / "ddp"
    ddp.mkdir()
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
              str(script), tests, str(learnable_dataset.path), str(ddp), steps]
    result = subprocess.run(launch, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((ddp / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["digest"] == ranks[1]["digest"]           # the replicas hold the same weights
    assert ranks[0]["status"] == "completed"
    assert len(ranks[0]["losses"]) == 40 and ranks[1]["losses"] == []  # only rank 0 reports
    assert (ddp / "checkpoints" / "step-0000040").exists()
    from workbench.snapshots.store import SnapshotStore

    assert SnapshotStore(ddp).steps() == [0, 8, 16, 32, 40]       # rank 0 records the inspection snapshots

    single = tmp_path / "single"
    single.mkdir()
    result = subprocess.run([sys.executable, str(script), tests, str(learnable_dataset.path), str(single), steps],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    alone = json.loads((single / "rank0.json").read_text())["losses"]
    together = ranks[0]["losses"]
    # Same global batch of the same pairs; masks and dropout differ, so equal in expectation.
    assert np.mean(together[-10:]) == pytest.approx(np.mean(alone[-10:]), rel=0.1)
    assert together[-1] < together[0]


def torchrun(script, tests, dataset, out, steps, *resume, env=None):
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
              str(script), tests, str(dataset), str(out), str(steps), *map(str, resume)]
    result = subprocess.run(launch, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "rank0.json").read_text())


@pytest.mark.slow
def test_a_ddp_resume_continues_exactly(learnable_dataset, tmp_path):
    """Per-rank RNG (dropout) and data position are restored: the resumed curve equals the uninterrupted one."""
    from pathlib import Path

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    tests = str(Path(__file__).parent)
    (tmp_path / "whole").mkdir()
    (tmp_path / "split").mkdir()
    whole = torchrun(script, tests, learnable_dataset.path, tmp_path / "whole", 10)
    # Stopped at 5 with the same budget (a budget changed on resume: test_training).
    first = torchrun(script, tests, learnable_dataset.path, tmp_path / "split", 10,
                     env=dict(os.environ, WB_TEST_STOP_AT="5"))
    assert first["status"] == "stopped" and first["losses"] == whole["losses"][:5]
    resumed = torchrun(script, tests, learnable_dataset.path, tmp_path / "split", 10, tmp_path / "split")
    assert resumed["losses"] == whole["losses"][5:]
    assert resumed["digest"] == whole["digest"]


@pytest.mark.slow
def test_two_nodes_train_one_run_with_the_cluster_script(learnable_dataset, tmp_path):
    """packaging/cluster/torchrun-multinode.sh on two "nodes" of this machine (static rendezvous on
    localhost, gloo, one process each), with a TOML as the window saves it: one run, recorded once."""
    import os
    import socket
    from pathlib import Path

    from conftest import tiny_train_config
    from workbench.config import dumps_toml
    from workbench.store.repository import RunRepository

    script = Path(__file__).resolve().parent.parent / "packaging" / "cluster" / "torchrun-multinode.sh"
    config = tiny_train_config(learnable_dataset.path, max_steps=6, checkpoint_every=3)
    (tmp_path / "run.toml").write_text(dumps_toml(config), encoding="utf-8")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    nodes = []
    for rank in (0, 1):
        env = dict(os.environ, NNODES="2", NODE_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   GPUS_PER_NODE="1", PYTHON=sys.executable)
        nodes.append(subprocess.Popen(["bash", str(script), str(tmp_path / "run.toml"), "--out",
                                       str(tmp_path / "run"), "--db", db], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert (tmp_path / "run" / "checkpoints" / "step-0000006").is_dir()
    runs = RunRepository(db).list_runs()
    assert len(runs) == 1 and runs[0].status == "completed" and runs[0].steps == 6


@pytest.mark.slow
def test_ddp_without_a_pair_task_trains_though_the_pair_head_gets_no_gradient(learnable_dataset, tmp_path):
    import os
    from pathlib import Path

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "ddp"
    out.mkdir()
    rank0 = torchrun(script, str(Path(__file__).parent), learnable_dataset.path, out, 6,
                     env={**os.environ, "WB_TEST_OBJECTIVE": "none"})
    rank1 = json.loads((out / "rank1.json").read_text())
    assert rank0["status"] == "completed" and len(rank0["losses"]) == 6
    assert rank0["digest"] == rank1["digest"]
