"""The layering of pyproject.toml's import-linter contracts holds: Qt only in the window, the window never
imports the CLI's commands, core packages point one way (see [tool.importlinter])."""

import shutil
import sys
from pathlib import Path

import pytest

importlinter_cli = pytest.importorskip("importlinter.cli")

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_are_kept(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    code = importlinter_cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    report = capsys.readouterr().out
    assert code == 0, report
    assert "Contracts: 5 kept, 0 broken." in report


def test_a_broken_contract_is_reported(monkeypatch, capsys, tmp_path):
    """The check can fail: a copy of the package whose data layer imports Qt breaks the first contract."""
    copy = tmp_path / "workbench"
    shutil.copytree(ROOT / "workbench", copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "data" / "masking.py").open("a", encoding="utf-8") as f:
        f.write("\nimport PySide6  # noqa\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "workbench" or m.startswith("workbench.")]:
        monkeypatch.delitem(sys.modules, name)      # grimp finds the package through the import system
    code = importlinter_cli.lint_imports(config_filename=str(tmp_path / "pyproject.toml"), no_cache=True)
    report = capsys.readouterr().out
    assert code != 0 and "workbench.data is not allowed to import PySide6" in report
