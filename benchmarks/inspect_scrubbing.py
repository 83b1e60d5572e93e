"""Does the window keep answering while a person scrubs the Inspect panel's step slider? JSON.

    python benchmarks/inspect_scrubbing.py RUN_DIR [--snapshots 50] [--vs RUN_DIR]

Makes a run folder with ``--snapshots`` snapshots from RUN_DIR's (its pack, and its snapshots repeated
under new step numbers: the panel's cost depends on the snapshots' shapes, not on their values), opens
the Inspect panel on it, and for each tab moves the slider one snapshot every 40 ms across all of them
(forth and back) while a 10 ms timer on the GUI thread records how late it fires. Reports per tab the
timer lateness (p50 / p99 / max, ms) and the time of one redraw. Runs offscreen unless a display is set.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def make_run(source: Path, count: int, folder: Path) -> Path:
    from workbench.snapshots.store import SnapshotStore

    src = SnapshotStore(source)
    dst = SnapshotStore(folder)
    dst.folder.mkdir(parents=True)
    shutil.copy(src.pack_path, dst.pack_path)
    steps = src.steps()
    for k in range(count):
        shutil.copy(src.path(steps[k % len(steps)]), dst.path(k * 10))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--vs", default="")
    parser.add_argument("--snapshots", type=int, default=50)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen" if not os.environ.get("DISPLAY") else "xcb")

    import numpy as np
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from workbench.gui.panels.inspect_panel import InspectPanel

    root = Path(tempfile.mkdtemp(prefix="scrub-"))
    runs = [("A", str(make_run(Path(args.run), args.snapshots, root / "a")))]
    if args.vs:
        runs.append(("B", str(make_run(Path(args.vs), args.snapshots, root / "b"))))
    app = QApplication(sys.argv)
    panel = InspectPanel()
    panel.resize(1500, 950)
    panel.show()
    started = time.perf_counter()
    panel.show_runs(runs)
    while panel.a is None or panel.loading:
        app.processEvents()
        time.sleep(0.005)
    load_seconds = time.perf_counter() - started
    report = {"snapshots": args.snapshots, "runs": len(runs), "load_seconds": round(load_seconds, 3), "tabs": {}}

    for tab in range(panel.tabs.count()):
        panel.tabs.setCurrentIndex(tab)
        if tab == 2:
            panel.embeddings.word.setText(panel.a.map_words[3])
        if tab == 1:
            panel.learned.words.selectRow(0)
        lateness: list[float] = []
        redraws: list[float] = []
        positions = list(range(args.snapshots)) + list(range(args.snapshots - 1, -1, -1))
        clock = QElapsedTimer()
        clock.start()
        expected = [clock.elapsed() + 10]

        def tick():
            now = clock.elapsed()
            lateness.append(max(0, now - expected[0]))
            expected[0] = now + 10

        def move():
            if not positions:
                app.quit()
                return
            begin = time.perf_counter()
            panel.slider.setValue(positions.pop(0))
            redraws.append(1000 * (time.perf_counter() - begin))

        ticker = QTimer()
        ticker.timeout.connect(tick)
        ticker.start(10)
        mover = QTimer()
        mover.timeout.connect(move)
        mover.start(40)
        app.exec()
        ticker.stop()
        mover.stop()
        late = np.array(lateness)
        report["tabs"][panel.tabs.tabText(tab)] = {
            "lateness_ms_p50": float(np.percentile(late, 50)), "lateness_ms_p99": float(np.percentile(late, 99)),
            "lateness_ms_max": float(late.max()), "redraw_ms_mean": float(np.mean(redraws)),
            "redraw_ms_max": float(np.max(redraws))}
    print(json.dumps(report, indent=1))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
