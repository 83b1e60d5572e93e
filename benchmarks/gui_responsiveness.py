"""The window's speed: time to first paint, plots with a million points, lateness while training. JSON.

    python benchmarks/gui_responsiveness.py [--train-seconds 20] [--history-runs 100] [--history-points 100000]

* first paint: from starting a fresh Python process to the window painted (torch not imported);
* first run: on a profile that never prepared the sample, seconds from the window shown to Start
  pressable (the shipped sample text unpacked, its tokenizer trained, the text encoded), with and without
  the text already unpacked in the user cache;
* plots: append 1,000,000 points to every curve, then time redraws (setData + paint);
* model load (``--model-load`` alone; also in the full run): lateness while the window loads a base-size
  checkpoint (~1.3 GB, every file's hash verified) for the probe and the preview, on a worker thread, and
  how long the same load blocked the GUI thread before;
* fair share (``--fair-share`` alone): the window's run with and without two other training processes on
  the machine, for each way its thread can yield to the window (niceness, SCHED_BATCH): steps/s and lateness;
* responsiveness: while a ``tiny`` run trains at full speed on the sample corpus, a 10 ms timer
  on the GUI thread records how late it fires (p50 / p99 / max); the run database first gets
  ``--history-runs`` past runs of ``--history-points`` metric points each (default 100 x 100,000),
  and the Runs panel stays visible, refreshing every 3 s.
Runs offscreen (QT_QPA_PLATFORM=offscreen) unless a display is set.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST_PAINT = r"""
import sys, time
t0 = float(sys.argv[1])
def main():
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from workbench.gui.app import release
    from workbench.gui.main_window import MainWindow
    window = MainWindow(db=sys.argv[2], data_dir=sys.argv[3], settings=QSettings(sys.argv[4], QSettings.IniFormat),
                        prepare_on_start=False)
    window.show()
    window.repaint()  # painted here; the run database opens on the first turn of the event loop, after this
    print(time.time() - t0, "torch" in sys.modules, flush=True)
    app.processEvents()
    release(app, window)
main()
"""


READY = r"""
import sys, time
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
app = QApplication([])
from workbench.gui.app import release
from workbench.gui.main_window import MainWindow
window = MainWindow(db=sys.argv[1], data_dir=sys.argv[2], settings=QSettings(sys.argv[3], QSettings.IniFormat))
window.show()
app.processEvents()
shown = time.perf_counter()
while not window.training.start_button.isEnabled() and time.perf_counter() - shown < 600:
    app.processEvents()
    time.sleep(0.005)
print(time.perf_counter() - shown)
release(app, window)
"""


def ready_on_a_fresh_profile(work: Path, cached_text: bool) -> float:
    """Seconds from the window first shown to Start pressable, on a profile that has never prepared the sample
    (``cached_text``: the sample's text already unpacked in the user cache)."""
    home = work / ("fresh-cached" if cached_text else "fresh")
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    if not cached_text:
        env.update(HOME=str(home), XDG_CACHE_HOME=str(home / "cache"), XDG_DATA_HOME=str(home / "data"))
    out = subprocess.run([sys.executable, "-c", READY, str(home / "runs.db"), str(home / "data"),
                          str(home / "s.ini")], capture_output=True, text=True, check=True, env=env)
    return round(float(out.stdout.split()[-1]), 2)


def first_paint(work: Path) -> dict:
    times = []
    torch_loaded = False
    for i in range(3):
        start = time.time()
        out = subprocess.run([sys.executable, "-c", FIRST_PAINT, str(start), str(work / "runs.db"), str(work / "data"),
                              str(work / f"s{i}.ini")], capture_output=True, text=True, check=True,
                             env=dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen")))
        seconds, loaded = out.stdout.split()
        times.append(float(seconds))
        torch_loaded = torch_loaded or loaded == "True"
    return {"seconds_best_of_3": round(min(times), 3), "seconds_all": [round(t, 3) for t in times],
            "torch_imported_before_paint": torch_loaded}


def plots_million(app) -> dict:
    import numpy as np

    from workbench.gui.panels.plots_panel import PlotsPanel

    panel = PlotsPanel()
    panel.resize(1200, 800)
    panel.show()
    n = 1_000_000
    steps = np.arange(1, n + 1, dtype=float)
    columns = {name: np.random.rand(n) for name in panel.train.data}
    columns.update(step=steps, tokens_seen=steps * 4096, elapsed=steps * 0.05)
    panel.train.extend(columns)
    def timed_redraws() -> list[float]:
        timings = []
        for _ in range(5):
            panel.dirty = True
            start = time.perf_counter()
            panel.redraw()
            panel.graphics.repaint()
            app.processEvents()
            timings.append(time.perf_counter() - start)
        return sorted(timings)

    timings = timed_redraws()
    panel.plots["mlm_loss"].vb.setXRange(400_000, 410_000)  # zoomed in: only the visible stretch is drawn
    zoom = timed_redraws()
    panel.close()
    return {"points_per_curve": n, "curves": len(panel.curves), "redraw_ms_median": round(1000 * sorted(timings)[2], 1),
            "redraw_ms_zoomed_median": round(1000 * sorted(zoom)[2], 1)}


def populate_history(db: str, runs: int, points: int) -> dict:
    """``runs`` past runs with ``points`` metric points each (15 training metrics per step); a tenth of
    them without final metrics, so the Runs panel reads their last values from the points."""
    import numpy as np

    from workbench.config import WorkbenchConfig
    from workbench.metrics import train_metrics

    STEP_METRICS = train_metrics()
    from workbench.store.repository import RunRepository, now

    started = time.perf_counter()
    repository = RunRepository(db)
    config = WorkbenchConfig().to_dict()
    steps = max(1, points // len(STEP_METRICS))
    for i in range(runs):
        run = repository.create_run(config, f"history-{i}", f"/nonexistent/history-{i}")
        rows = [{"run_id": run.id, "step": step, "name": name, "value": float(np.exp(-step / 2000) + k),
                 "wall_time": step * 0.1, "is_eval": False}
                for step in range(1, steps + 1) for k, name in enumerate(STEP_METRICS)]
        for start in range(0, len(rows), 50_000):
            repository.add_metrics(rows[start:start + 50_000])
        final = {} if i % 10 == 0 else {"mlm_loss": 2.0, "mlm_accuracy": 0.4, "nsp_accuracy": 0.6,
                                        "tokens_per_second": 9000.0}
        repository.update(run.id, status="stopped" if not final else "completed", steps=steps, finished_at=now(),
                          elapsed_seconds=steps * 0.1, final_metrics=final)
    return {"runs": runs, "points_per_run": steps * len(STEP_METRICS), "seconds": round(time.perf_counter() - started)}


def lateness_while_training(app, work: Path, seconds: float, priority: tuple[str, int] | None = None,
                            before_stop=None) -> dict:
    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    from workbench.gui import workers
    from workbench.gui.main_window import MainWindow

    if priority is not None:
        workers.TRAINING_PRIORITY = priority

    window = MainWindow(db=str(work / "runs.db"), data_dir=work / "data",
                        settings=QSettings(str(work / "train.ini"), QSettings.IniFormat))
    window.show()
    window.docks["runs"].raise_()          # visible: it refreshes every 3 s while the run trains
    deadline = time.time() + 600
    while window.dataset is None and time.time() < deadline:
        app.processEvents()
        time.sleep(0.01)
    form = window.training.widgets
    form[("train", "max_steps")].setValue(100_000)
    form[("train", "eval_every")].setValue(0)
    form[("train", "checkpoint_every")].setValue(0)
    window.training.start_button.click()
    pressed = time.perf_counter()
    if priority is None:                   # the plain measurement starts once the run steps
        while window.plots.point_count() < 3:
            app.processEvents()
            time.sleep(0.005)
    timer, late = lateness_probe()
    first = window.plots.point_count()
    begun = time.perf_counter()
    first_step = [None]

    def watch_first_step():
        if first_step[0] is None and window.plots.point_count() > 0:
            first_step[0] = time.perf_counter() - pressed

    watcher = QTimer()
    watcher.timeout.connect(watch_first_step)
    watcher.start(100)
    loop = QEventLoop()  # the application's own event loop, as when a person watches the run
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    timer.stop()
    watcher.stop()
    steps = window.plots.point_count()
    measured = time.perf_counter() - begun
    dataset = str(window.dataset.path)
    if before_stop is not None:          # the competitors go first: a starved run would take minutes to stop
        before_stop()
    window.runner.stop_and_wait()
    window.close()
    return {"ticks": len(late), "steps_trained": steps, "steps_per_second": round((steps - first) / measured, 2),
            "seconds_from_start_to_first_step": None if first_step[0] is None else round(first_step[0], 1),
            "lateness_ms": lateness_summary(late), "dataset": dataset}


def base_checkpoint(work: Path, dataset: str) -> Path:
    """A checkpoint of a ``base`` model (110M parameters, AdamW state: about 1.3 GB) on ``dataset``'s tokenizer."""
    import torch

    from workbench.checkpoint import TrainingState, save_checkpoint
    from workbench.config import WorkbenchConfig
    from workbench.data.dataset import TokenizedDataset
    from workbench.model import build_model

    data = TokenizedDataset(dataset)
    config = WorkbenchConfig()
    config.data.dataset = dataset
    config.model.preset = "base"
    model = build_model(config.model.resolved(vocab_size=data.vocabulary.size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()                                       # the moments exist, as in a real run's checkpoint
    folder, _ = save_checkpoint(work / "base-run", model, optimizer, TrainingState(step=1), config, Path(dataset),
                                {}, data.manifest["fingerprint"], keep=1)
    return folder


def lateness_while_loading(app, work: Path, checkpoint: Path) -> dict:
    """The window's timer lateness while it loads ``checkpoint`` for the probe and the preview (verifying every
    file's hash and building the model), and the same load done on the GUI thread, as before."""
    from PySide6.QtCore import QSettings

    from workbench.gui.main_window import MainWindow
    from workbench.interop.huggingface import load_for_inference

    window = MainWindow(db=str(work / "runs.db"), data_dir=work / "data",
                        settings=QSettings(str(work / "load.ini"), QSettings.IniFormat), prepare_on_start=False)
    window.show()
    app.processEvents()
    timer, late = lateness_probe()
    begun = time.perf_counter()
    window.run_actions.load_model(str(checkpoint), "a base model")
    while window.probe.model is None and time.perf_counter() - begun < 600:
        app.processEvents()
        time.sleep(0.002)
    seconds = time.perf_counter() - begun
    timer.stop()
    begun = time.perf_counter()
    load_for_inference(str(checkpoint))                     # before: the same work on the GUI thread
    blocked = time.perf_counter() - begun
    window.close()
    size = sum(f.stat().st_size for f in checkpoint.iterdir())
    return {"checkpoint_bytes": size, "load_seconds": round(seconds, 2), "lateness_ms": lateness_summary(late),
            "before_gui_thread_blocked_s": round(blocked, 2)}


PRIORITIES = {"nice 10 (before)": ("nice", 10), "nice 3": ("nice", 3), "nice 0": ("nice", 0),
              "SCHED_BATCH": ("batch", 0), "SCHED_BATCH + nice 3": ("batch", 3)}


def fair_share(app, work: Path, seconds: float, competitors: int = 2) -> dict:
    """The window's run against ``competitors`` other training processes (CLI runs of the same tiny model on the
    same data, torch's default threads): its steps/s and the window's timer lateness, for each way the
    training thread can yield (``PRIORITIES``), alone and with the competitors."""
    import signal

    results = {}
    dataset = None
    for label, priority in PRIORITIES.items():
        alone = lateness_while_training(app, work, seconds, priority)
        dataset = alone.pop("dataset")
        others = [subprocess.Popen([sys.executable, "-m", "workbench", "train", "--dataset", dataset, "--no-db",
                                    "--set", 'model.preset="tiny"', "--set", "train.max_minutes=30",
                                    "--out", str(work / f"competitor-{label}-{i}".replace(" ", "_"))],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(competitors)]
        time.sleep(8)                                    # they import torch and start training

        def stop_others():
            for other in others:
                other.send_signal(signal.SIGKILL)
                other.wait()
        try:
            loaded = lateness_while_training(app, work, seconds, priority, before_stop=stop_others)
        finally:
            stop_others()
        loaded.pop("dataset")
        keys = ("steps_per_second", "seconds_from_start_to_first_step", "lateness_ms")
        results[label] = {"alone": {key: alone[key] for key in keys},
                          f"with_{competitors}_training_processes": {key: loaded[key] for key in keys}}
        print(label, json.dumps(results[label]), file=sys.stderr, flush=True)
    return results


def lateness_probe():
    """A 10 ms timer on the GUI thread that records how late each tick fires (ms); (timer, the list)."""
    from PySide6.QtCore import QElapsedTimer, QTimer

    late: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]

    def tick():
        now = clock.nsecsElapsed()
        late.append(max(0.0, (now - last[0]) / 1e6 - 10.0))
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    return timer, late


def lateness_summary(late: list[float]) -> dict:
    ordered = sorted(late)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)  # noqa: E731
    return {"p50": pick(0.5), "p99": pick(0.99), "max": round(ordered[-1], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-seconds", type=float, default=20.0)
    parser.add_argument("--history-runs", type=int, default=100)
    parser.add_argument("--history-points", type=int, default=100_000)
    parser.add_argument("--model-load", action="store_true", help="only: the window's timer lateness while it "
                        "loads a base-size checkpoint (about 1.3 GB) for the probe and the preview")
    parser.add_argument("--fair-share", action="store_true", help="only: the window's run against two other "
                        "training processes, for each way its thread can yield (steps/s and timer lateness)")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    work = Path(tempfile.mkdtemp(prefix="wb-gui-bench-"))
    if args.model_load:
        from PySide6.QtWidgets import QApplication

        app = QApplication([])
        dataset = lateness_while_training(app, work, 2.0)["dataset"]       # prepares the sample
        print(json.dumps({"while_loading_a_base_model": lateness_while_loading(app, work,
                                                                              base_checkpoint(work, dataset))}, indent=1))
        return
    if args.fair_share:
        from PySide6.QtWidgets import QApplication

        app = QApplication([])
        print(json.dumps({"fair_share": fair_share(app, work, args.train_seconds)}, indent=1))
        return
    results = {"first_paint": first_paint(work),
               "start_pressable_after_window_shown_s": {"fresh_profile_and_cache": ready_on_a_fresh_profile(work, False),
                                                        "fresh_profile": ready_on_a_fresh_profile(work, True)}}
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    results["plots"] = plots_million(app)
    results["history"] = populate_history(str(work / "runs.db"), args.history_runs, args.history_points)
    results["while_training"] = lateness_while_training(app, work, args.train_seconds)
    results["while_loading_a_base_model"] = lateness_while_loading(
        app, work, base_checkpoint(work, results["while_training"]["dataset"]))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
