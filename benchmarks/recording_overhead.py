"""Cost of recording a run in the database, as a share of training time. Prints JSON.

    python benchmarks/recording_overhead.py [--steps 300]

Trains the ``tiny`` preset on the sample corpus with every step's metrics
recorded (log_every = 1, the worst case) into a fresh SQLite file, and reports
the time spent inside the recorder (buffering, batched INSERTs, heartbeats)
against the run's total time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()

    from workbench.config import WorkbenchConfig
    from workbench.data.sample import sample_corpus_path
    from workbench.data.prepare import prepare_dataset
    from workbench.store.recorder import RunRecorder
    from workbench.store.repository import RunRepository
    from workbench.train.trainer import Trainer

    work = Path(tempfile.mkdtemp(prefix="wb-record-"))
    dataset = prepare_dataset([sample_corpus_path()], Path(tempfile.gettempdir()) / "wb-bench-sample",
                              WorkbenchConfig()).dataset
    config = WorkbenchConfig()
    config.data.dataset = str(dataset.path)
    config.train.max_steps = args.steps
    config.train.log_every = 1
    config.train.eval_every = 0
    config.train.checkpoint_every = 0
    config.train.warmup_steps = 10
    repository = RunRepository(str(work / "runs.db"))
    run = repository.create_run(config.to_dict(), "overhead", str(work / "run"), dataset)
    trainer = Trainer(config, work / "run")
    recorder = RunRecorder(repository, run.id)
    trainer.subscribe(lambda event: recorder(event.to_dict()))
    start = time.perf_counter()
    result = trainer.run()
    total = time.perf_counter() - start
    points = repository.count_metrics(run.id)
    print(json.dumps({
        "preset": "tiny", "steps": result.step, "metric_points": points,
        "run_seconds": round(total, 2), "recorder_seconds": round(recorder.seconds_spent, 4),
        "recorder_share_of_run": round(recorder.seconds_spent / total, 5),
        "recorder_microseconds_per_step": round(1e6 * recorder.seconds_spent / max(1, result.step), 1),
        "step_milliseconds": round(1e3 * total / max(1, result.step), 2),
        "note": "includes the final checkpoint and evaluation flushes",
    }, indent=1))


if __name__ == "__main__":
    main()
