"""The Compare panel with a large history: GUI timer lateness while 200 runs of 100k points are compared. JSON.

    python benchmarks/compare_view.py [--runs 200] [--points 100000] [--seconds 30]

The run database gets ``--runs`` finished runs of ``--points`` metric points each (15 training metrics per
step; 10 masking probabilities x seeds, so grouping has something to group). The window then shows the Runs
and Compare panels; every runs are selected (the Compare panel reads their series on a worker thread), and
while a 10 ms timer on the GUI thread records how late it fires, the benchmark changes what a person would:
the metric, grouping by seed, the band, the x axis (tokens), smoothing, log y, a baseline with differences.
Reported: lateness p50 / p99 / max, the seconds until all selected curves were drawn, and each change's
redraw time. Runs offscreen (QT_QPA_PLATFORM=offscreen) unless a display is set.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path


def populate(db: str, runs: int, points: int) -> dict:
    import numpy as np

    from workbench.config import WorkbenchConfig
    from workbench.metrics import train_metrics

    STEP_METRICS = train_metrics()
    from workbench.store.repository import RunRepository, now

    started = time.perf_counter()
    repository = RunRepository(db)
    steps = max(1, points // len(STEP_METRICS))
    grid = np.arange(1, steps + 1)
    for i in range(runs):
        config = WorkbenchConfig()
        config.masking.probability = round(0.1 + 0.03 * (i % 10), 2)
        config.train.seed = i // 10
        run = repository.create_run(config.to_dict(), f"history-{i}", f"/nonexistent/history-{i}")
        rng = np.random.default_rng(i)
        rows = []
        for k, name in enumerate(STEP_METRICS):
            if name == "tokens_seen":
                values = grid * 4096.0
            else:
                values = 3 + k + 5 * np.exp(-grid / 2000) + 0.05 * rng.standard_normal(steps) + 0.1 * (i % 10)
            rows += [{"run_id": run.id, "step": int(s), "name": name, "value": float(v), "wall_time": s * 0.1,
                      "is_eval": False} for s, v in zip(grid, values)]
        for start in range(0, len(rows), 50_000):
            repository.add_metrics(rows[start:start + 50_000])
        repository.update(run.id, status="completed", steps=steps, finished_at=now(), elapsed_seconds=steps * 0.1,
                          final_metrics={"mlm_loss": 3.0, "mlm_accuracy": 0.4, "nsp_accuracy": 0.6,
                                         "tokens_per_second": 9000.0})
    return {"runs": runs, "points_per_run": steps * len(STEP_METRICS), "seconds": round(time.perf_counter() - started)}


def measure(db: str, work: Path, seconds: float) -> dict:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from gui_responsiveness import lateness_probe, lateness_summary   # the same probe as the training benchmark

    from workbench.gui.app import release
    from workbench.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    window = MainWindow(db=db, data_dir=work / "data", settings=QSettings(str(work / "c.ini"), QSettings.IniFormat),
                        prepare_on_start=False)
    window.resize(1600, 1000)
    window.show()
    window.docks["runs"].raise_()
    timer, late = lateness_probe()

    def spin(condition, limit: float) -> float:
        start = time.perf_counter()
        while not condition() and time.perf_counter() - start < limit:
            app.processEvents()
            time.sleep(0.002)
        return time.perf_counter() - start

    spin(lambda: window.runs.table.rowCount() > 0 and not window.runs.loading, 120)
    compare = window.compare
    started = time.perf_counter()
    window.runs.table.selectAll()
    spin(lambda: not compare.loading and len(compare.drawn) == window.runs.table.rowCount(), 600)
    all_drawn = time.perf_counter() - started
    redraws = {}
    changes = [
        ("metric: loss", lambda: compare.metric_choice.setCurrentIndex(next(
            i for i in range(compare.metric_choice.count()) if tuple(compare.metric_choice.itemData(i)) == ("loss", False)))),
        ("group by seed", lambda: compare.group.setCurrentIndex(compare.group.findData("seed"))),
        ("± std band", lambda: compare.band_kind.setCurrentIndex(1)),
        ("x: tokens seen", lambda: compare.axis.setCurrentIndex(compare.axis.findData("tokens"))),
        ("smoothing 0.9", lambda: compare.smoothing.setValue(0.9)),
        ("log y", lambda: compare.log_y.setChecked(True)),
        ("baseline + difference", lambda: (compare.baseline.setCurrentIndex(1), compare.difference.setChecked(True))),
        ("no grouping", lambda: compare.group.setCurrentIndex(0)),
    ]
    deadline = time.perf_counter() + seconds
    for name, change in changes:
        t = time.perf_counter()
        change()
        spin(lambda: not compare.loading, 300)
        redraws[name] = round(time.perf_counter() - t, 3)
        spin(lambda: False, max(0.0, min(2.0, deadline - time.perf_counter())))   # idle, as a person reads
    spin(lambda: False, max(0.0, deadline - time.perf_counter()))
    timer.stop()
    release(app, window)
    return {"selected_runs": len(compare.runs), "all_curves_drawn_s": round(all_drawn, 2),
            "redraw_s": redraws, "ticks": len(late), "lateness_ms": lateness_summary(late)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--db", help="reuse this database (populated by an earlier call) instead of a new one")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    work = Path(tempfile.mkdtemp(prefix="wb-compare-bench-"))
    results = {}
    db = args.db
    if db is None:
        db = f"sqlite:///{work / 'runs.db'}"
        results["history"] = populate(db, args.runs, args.points)
    results["compare"] = measure(db, work, args.seconds)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
