"""Every panel module runs on its own (``python -m workbench.gui.panels.X``), as the README says."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

PANELS = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "workbench" / "gui" / "panels").glob("*.py")
                if p.stem != "__init__")

# Run the module as __main__ with the event loop replaced by one that shows the panel and returns.
RUNNER = """
import runpy, sys
from PySide6.QtWidgets import QApplication
def exec_once(*args):
    app = QApplication.instance()
    app.processEvents()
    shown = [w for w in app.topLevelWidgets() if w.isVisible()]
    print("shown:", ",".join(w.objectName() for w in shown))
    return 0
QApplication.exec = exec_once
sys.argv = [sys.argv[1]] + sys.argv[2:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    sys.exit(exc.code)
"""


@pytest.mark.slow
@pytest.mark.parametrize("panel", PANELS)
def test_a_panel_runs_on_its_own(panel, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    args = [f"sqlite:///{tmp_path / 'runs.db'}"] if panel in ("runs_panel", "compare_panel") else []
    done = subprocess.run([sys.executable, "-c", RUNNER, f"workbench.gui.panels.{panel}", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "shown:" in done.stdout and "Panel" in done.stdout.split("shown:")[1], done.stdout
    assert "Traceback" not in done.stderr
