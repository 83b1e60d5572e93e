"""Sweeps: expanding a sweep file, the queue in the database (order, pause, cancel), and a sweep killed mid-run
that continues where it stopped, resuming the interrupted run from its checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import tiny_train_config
from workbench.cli import main
from workbench.config import dumps_toml
from workbench.errors import ConfigError
from workbench.store.repository import RunRepository
from workbench.sweeps import EXAMPLES, plan, sweep_from_dict


def test_a_grid_times_random_draws_times_seeds_each_validated():
    spec = sweep_from_dict({"name": "lr and rate", "seeds": [0, 1], "random_count": 3, "random_seed": 7,
                            "set": {"train.max_steps": 10},
                            "grid": {"masking.probability": [0.15, 0.3]},
                            "random": {"train.learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}}})
    runs = plan(spec)
    assert len(runs) == 2 * 3 * 2 and spec.swept == ["masking.probability", "train.learning_rate", "train.seed"]
    assert [r.config.train.seed for r in runs[:2]] == [0, 1]
    assert {r.config.masking.probability for r in runs} == {0.15, 0.3}
    rates = {r.config.train.learning_rate for r in runs}
    assert len(rates) == 3 and all(1e-4 <= rate <= 1e-2 for rate in rates)
    assert all(r.config.train.max_steps == 10 and r.config.train.name == "" for r in runs)
    assert runs[0].label.startswith("masking.probability=0.15 train.learning_rate=") and runs[0].label.endswith("seed=0")
    assert [r.config.to_dict() for r in plan(spec)] == [r.config.to_dict() for r in runs]   # draws reproducible
    for example in EXAMPLES.values():
        assert plan(sweep_from_dict(example))


@pytest.mark.parametrize("raw, message", [
    ({"grid": {"masking.probabilty": [0.1]}}, "probabilty"),
    ({"grid": {"masking.probability": [1.5]}}, "masking.probability"),
    ({"grid": {"probability": [0.1]}}, "section.key"),
    ({"grid": {"masking.probability": []}}, "non-empty list"),
    ({"seeds": []}, "seeds"),
    ({"random": {"train.learning_rate": {"low": 0, "high": 1, "log": True}}}, "log scale"),
    ({"grids": {}}, "unknown key 'grids'"),
])
def test_a_bad_sweep_is_refused_naming_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        sweep_from_dict(raw, source="s.toml")


def write_sweep(tmp_path, dataset, name: str, probabilities: list[float], seeds: list[int], **train):
    """A sweep file over a tiny base config, both in ``tmp_path``; (the sweep file, the database URL)."""
    base = tiny_train_config(dataset.path, **train)
    base.train.output_dir = str(tmp_path / "runs")
    (tmp_path / "base.toml").write_text(dumps_toml(base), encoding="utf-8")
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(f'name = "{name}"\nbase = "base.toml"\nseeds = {seeds}\n[grid]\n'
                     f'"masking.probability" = {probabilities}\n', encoding="utf-8")
    return sweep, f"sqlite:///{tmp_path / 'runs.db'}"


def test_a_seed_varied_in_the_grid_is_the_seed_each_run_trains_with():
    runs = plan(sweep_from_dict({"grid": {"train.seed": [1, 2, 3]}}))
    assert [run.config.train.seed for run in runs] == [1, 2, 3]
    assert [run.label for run in runs] == ["train.seed=1", "train.seed=2", "train.seed=3"]
    runs = plan(sweep_from_dict({"random": {"train.seed": {"low": 5, "high": 9}}, "random_count": 3}))
    assert all(5 <= run.config.train.seed <= 9 for run in runs)
    assert [r.config.train.seed for r in runs] == [int(r.label.split("=")[1]) for r in runs]
    assert plan(sweep_from_dict({"set": {"train.seed": 7}, "grid": {"masking.probability": [0.1]}}))[0] \
        .config.train.seed == 7


@pytest.mark.parametrize("raw, message", [
    ({"seeds": [0, 1], "grid": {"train.seed": [1, 2]}}, "train.seed is set both by seeds and by \\[grid\\]"),
    ({"seeds": [0], "random": {"train.seed": [1, 2]}}, "both by seeds and by \\[random\\]"),
    ({"set": {"masking.probability": 0.2}, "grid": {"masking.probability": [0.1, 0.3]}},
     "masking.probability is set both by \\[set\\] and by \\[grid\\]"),
    ({"grid": {"masking.probability": [0.1, 0.1]}}, "lists 0.1 twice"),
    ({"seeds": [0, 0, 0]}, "seeds lists 0 twice"),
    ({"seeds": [True]}, "seeds must be"),
    ({"random_seed": "abc", "random": {"masking.probability": [0.1, 0.2]}}, "random_seed must be a whole number"),
    ({"random_seed": float("inf"), "random": {"masking.probability": [0.1]}}, "random_seed"),
    ({"random_seed": [1], "random": {"masking.probability": [0.1]}}, "random_seed"),
    ({"random_seed": 2**64, "random": {"masking.probability": [0.1]}}, "random_seed"),
    ({"random_count": True, "random": {"masking.probability": [0.1]}}, "random_count"),
    ({"random": {"train.learning_rate": {"low": 1e-4, "high": float("inf")}}}, "finite numbers"),
    ({"random": {"train.learning_rate": {"low": 1e-4, "high": 1e-3, "log": "yes"}}}, "log must be true or false"),
    ({"random": {"train.learning_rate": {"low": 1e-4, "high": 1e-3, "scale": 2}}}, "unknown field 'scale'"),
    ({"base": 3}, "base must be the path"),
    ({"config": [1]}, "\\[config\\] must be a table"),
])
def test_a_sweep_field_of_the_wrong_kind_or_set_twice_is_refused_naming_it(raw, message):
    with pytest.raises(ConfigError, match=message):
        sweep_from_dict(raw, source="s.toml")


def test_a_huge_sweep_is_counted_before_anything_is_built(tmp_path, capsys):
    import time

    from workbench.sweeps import CONFIRM_RUNS, MAX_RUNS, LargeSweep

    begun = time.perf_counter()
    grid = {f"masking.{key}": list(range(10)) for key in ("probability", "mask_fraction", "random_fraction",
                                                          "max_predictions_per_seq", "min_predictions_per_seq")}
    with pytest.raises(ConfigError, match=f"100,000 runs; a sweep queues at most {MAX_RUNS:,}"):
        sweep_from_dict({"grid": grid})
    with pytest.raises(ConfigError, match="1,000,000,000,000 runs"):
        sweep_from_dict({"random": {"masking.probability": {"low": 0.1, "high": 0.2}}, "random_count": 10**12})
    assert time.perf_counter() - begun < 5                # refused by counting, not by building runs
    with pytest.raises(LargeSweep) as large:
        sweep_from_dict({"grid": {"masking.probability": [0.1, 0.2, 0.3]}, "seeds": list(range(100))})
    assert large.value.runs == 300 > CONFIRM_RUNS and "confirm" in str(large.value)
    spec = sweep_from_dict({"grid": {"masking.probability": [0.1, 0.2, 0.3]}, "seeds": list(range(100))},
                           confirmed=True)
    assert spec.run_count == len(plan(spec)) == 300
    (tmp_path / "big.toml").write_text('seeds = [' + ", ".join(map(str, range(201))) + ']\n', encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    assert main(["sweep", str(tmp_path / "big.toml"), "--queue-only", "--db", db]) == 2
    err = capsys.readouterr().err
    assert "201 runs" in err and "--yes" in err and len(err.strip().splitlines()) == 1
    assert main(["sweep", "--list", "--json", "--db", db]) == 0 and json.loads(capsys.readouterr().out) == []
    assert main(["sweep", str(tmp_path / "big.toml"), "--queue-only", "--yes", "--db", db]) == 0
    assert "queued sweep 1" in capsys.readouterr().out


def test_the_queue_reorders_pauses_and_cancels(tmp_path):
    repository = RunRepository(f"sqlite:///{tmp_path / 'runs.db'}")
    runs = plan(sweep_from_dict({"grid": {"masking.probability": [0.1, 0.2, 0.3]}}))
    sweep_id = repository.sweeps.create("s", {}, ["masking.probability"],
                                        [(r.label, r.config.to_dict()) for r in runs])
    assert repository.sweeps.claim_next(sweep_id) is None                 # queued, not running yet
    items = repository.sweeps.get(sweep_id).items
    repository.sweeps.move_item(sweep_id, items[2].id, 0)
    repository.sweeps.set_status(sweep_id, "running")
    first = repository.sweeps.claim_next(sweep_id)
    assert first.label == "masking.probability=0.3" and first.resume_run_id is None
    repository.sweeps.set_status(sweep_id, "paused")
    assert repository.sweeps.claim_next(sweep_id) is None
    repository.sweeps.finish_item(first.item_id, "completed")
    repository.sweeps.set_status(sweep_id, "cancelled")
    statuses = [i.status for i in repository.sweeps.get(sweep_id).items]
    assert statuses == ["done", "cancelled", "cancelled"]                        # in queue order


@pytest.mark.slow
def test_a_killed_sweep_resumes_its_queue_and_the_interrupted_run(learnable_dataset, tmp_path):
    sweep_file, db = write_sweep(tmp_path, learnable_dataset, "rate", [0.15, 0.3], [0], max_steps=400,
                                 checkpoint_every=10, log_every=1)
    process = subprocess.Popen([sys.executable, "-m", "workbench", "sweep", str(sweep_file),
                                "--db", db], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=dict(os.environ, NO_COLOR="1"))
    for line in process.stdout:                     # kill it once the first run has a checkpoint
        if line.startswith("checkpoint"):
            break
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)

    repository = RunRepository(db)
    (first,) = repository.list_runs()
    assert first.status in ("running", "interrupted") and first.tag_names == ["sweep:1"]
    assert main(["sweep", "--resume", "1", "--db", db]) == 0
    sweep = repository.sweeps.get(1)
    assert sweep.status == "completed" and [i.status for i in sweep.items] == ["done", "done"]
    assert sweep.items[0].run_id == first.id                    # the interrupted run resumed, not restarted
    runs = {run.id: run for run in repository.list_runs()}
    assert len(runs) == 2 and all(run.status == "completed" and run.steps == 400 for run in runs.values())
    steps = repository.series(first.id, "loss").steps.tolist()
    assert steps == list(range(1, 401))                          # its curve continues, no step twice
    assert runs[sweep.items[1].run_id].name == "rate · masking.probability=0.3"


def test_sweep_cli_lists_shows_and_refuses_bad_input(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    assert main(["sweep", "--example", "masking-rate", "--queue-only", "--db", db]) == 0
    assert "6 runs varying masking.probability, train.seed" in capsys.readouterr().out
    assert main(["sweep", "--list", "--json", "--db", db]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["status"] == "queued" and listed["by_status"] == {"queued": 6}
    assert main(["sweep", "--move", "1", "6", "0", "--db", db]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[1] == "6"        # item 6 is next
    assert main(["sweep", "--example", "nope", "--db", db]) == 2
    assert "no example 'nope'" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "missing.toml"), "--db", db]) == 2
    assert "sweep file not found" in capsys.readouterr().err
    assert main(["sweep", "--db", db]) == 2


def test_processes_claiming_from_one_sweep_never_take_the_same_run(tmp_path, database_url):
    import threading

    repository = RunRepository(database_url)
    sweep_id = repository.sweeps.create("race", {}, ["x"], [(f"x={i}", {"x": i}) for i in range(40)])
    repository.sweeps.set_status(sweep_id, "running")
    claimed: list[list[int]] = [[] for _ in range(4)]

    def claim(into):
        own = RunRepository(database_url)            # its own engine and connections, as another process has
        while (step := own.sweeps.claim_next(sweep_id)) is not None:
            into.append(step.item_id)
            own.sweeps.finish_item(step.item_id, "completed")
        own.engine.dispose()

    threads = [threading.Thread(target=claim, args=(into,)) for into in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    every = sorted(i for into in claimed for i in into)
    assert every == sorted(i.id for i in repository.sweeps.get(sweep_id).items)    # each once
    assert repository.sweeps.get(sweep_id).status == "completed"


@pytest.mark.slow
def test_a_sweep_runs_n_at_a_time_in_worker_processes(learnable_dataset, tmp_path):
    from workbench.services.sweep_runner import plan_workers

    sweep_file, db = write_sweep(tmp_path, learnable_dataset, "two at once", [0.15, 0.3], [0, 1], max_steps=6,
                                 checkpoint_every=0, log_every=3, threads=0, device="auto")
    result = subprocess.run([sys.executable, "-m", "workbench", "sweep", str(sweep_file),
                             "--parallel", "2", "--devices", "cpu", "--db", db], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    workers = plan_workers(2, ["cpu"])
    assert f"2 workers: cpu ({workers[0].threads} threads), cpu ({workers[1].threads} threads)" in result.stdout
    lines = result.stdout.splitlines()
    assert any(line.startswith("[1:cpu] sweep 1: starting run") for line in lines)
    assert any(line.startswith("[2:cpu] sweep 1: starting run") for line in lines)
    assert "sweep 1: completed; compare its runs" in result.stdout
    repository = RunRepository(db)
    sweep = repository.sweeps.get(1)
    assert [i.status for i in sweep.items] == ["done"] * 4
    runs = [repository.get(i.run_id) for i in sweep.items]
    assert len({run.id for run in runs}) == 4 and all(run.status == "completed" for run in runs)
    assert all(run.config["train"]["threads"] == workers[0].threads and run.config["train"]["device"] == "cpu"
               for run in runs)                       # each run on its worker's device and share of the cores
    assert main(["sweep", "--resume", "1", "--parallel", "0", "--db", db]) == 2


@pytest.mark.slow
def test_workers_of_a_killed_parallel_sweep_stop_with_it_and_pause_the_sweep(learnable_dataset, tmp_path):
    import time

    from workbench.durable_io import process_alive

    sweep_file, db = write_sweep(tmp_path, learnable_dataset, "orphans", [0.1, 0.2, 0.3], [0], max_steps=5000,
                                 checkpoint_every=5, log_every=1)
    parent = subprocess.Popen([sys.executable, "-m", "workbench", "sweep", str(sweep_file),
                               "--parallel", "2", "--devices", "cpu", "--db", db], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    checkpointed = set()
    for line in parent.stdout:                   # both workers train and have each written a checkpoint
        if "] checkpoint " in line:
            checkpointed.add(line.split("]")[0])
        if len(checkpointed) == 2:
            break
    repository = RunRepository(db)
    pids = {run.pid for run in repository.list_runs()}
    assert len(pids) == 2 and all(process_alive(pid) for pid in pids)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(timeout=60)
    deadline = time.monotonic() + 120
    while any(process_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(process_alive(pid) for pid in pids), "a worker kept training after its parent died"
    sweep = repository.sweeps.get(1)
    assert sweep.status == "paused"                                      # the workers paused it as they stopped
    assert sorted(i.status for i in sweep.items) == ["interrupted", "interrupted", "queued"]
    assert all(run.status == "stopped" and run.checkpoints for run in repository.list_runs())


def test_a_run_that_breaks_inside_a_sweep_never_leaves_its_item_running(learnable_dataset, tmp_path, monkeypatch):
    from workbench.services import run_launch
    from workbench.services.sweep_runner import run_sweep

    repository = RunRepository(f"sqlite:///{tmp_path / 'runs.db'}")
    base = tiny_train_config(learnable_dataset.path, max_steps=2)
    base.train.output_dir = str(tmp_path / "runs")
    runs = plan(sweep_from_dict({"grid": {"masking.probability": [0.1, 0.2]}}, base=base))
    sweep_id = repository.sweeps.create("s", {}, ["masking.probability"],
                                        [(r.label, r.config.to_dict()) for r in runs])

    def broken(self):
        self.claim.release()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_launch.LaunchedRun, "run", broken)
    with pytest.raises(OSError):
        run_sweep(repository, sweep_id, say=lambda line: None)
    sweep = repository.sweeps.get(sweep_id)
    assert [i.status for i in sweep.items] == ["failed", "queued"] and sweep.status == "paused"
    monkeypatch.undo()
    assert run_sweep(repository, sweep_id, say=lambda line: None) == "completed"
    assert repository.sweeps.settle(sweep_id).status == "completed"
    assert [i.status for i in repository.sweeps.get(sweep_id).items] == ["failed", "done"]


def test_settling_a_sweep_its_workers_left_follows_its_items(tmp_path):
    repository = RunRepository(f"sqlite:///{tmp_path / 'runs.db'}")
    sweep_id = repository.sweeps.create("s", {}, ["x"], [(f"x={i}", {"x": i}) for i in range(3)])
    repository.sweeps.set_status(sweep_id, "running")
    first = repository.sweeps.claim_next(sweep_id)       # claimed by a worker that died before linking a run
    assert repository.sweeps.settle(sweep_id).status == "paused"
    assert [i.status for i in repository.sweeps.get(sweep_id).items] == ["interrupted", "queued", "queued"]
    repository.sweeps.set_status(sweep_id, "running")
    while (step := repository.sweeps.claim_next(sweep_id)) is not None:
        repository.sweeps.finish_item(step.item_id, "completed")
    assert first is not None and repository.sweeps.settle(sweep_id).status == "completed"
