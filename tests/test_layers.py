"""The core must import and work on a machine without Qt (a GPU node, a cluster)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CORE_WITHOUT_QT = textwrap.dedent("""
    import importlib.abc, sys

    class NoQt(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("PySide6", "shiboken6", "PyQt5", "PyQt6", "pyqtgraph"):
                raise ImportError(f"{name} is blocked: the core must not import Qt")
            return None

    sys.meta_path.insert(0, NoQt())
    import pkgutil, workbench
    for module in pkgutil.walk_packages(workbench.__path__, "workbench."):
        if not module.name.startswith("workbench.gui"):
            __import__(module.name)

    from workbench.cli import main
    corpus, out = sys.argv[1], sys.argv[2]
    assert main(["prepare", corpus, "--out", out, "--vocab-size", "120", "--max-seq-length", "32"]) == 0
    assert main(["inspect", out, "--samples", "50", "--json"]) == 0
    print("core ok without Qt")
""")


def test_core_imports_and_runs_without_qt(tmp_path):
    from conftest import write_text_corpus

    corpus = write_text_corpus(tmp_path / "c.txt", documents=30)
    result = subprocess.run([sys.executable, "-c", CORE_WITHOUT_QT, str(corpus), str(tmp_path / "ds")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "core ok without Qt" in result.stdout
