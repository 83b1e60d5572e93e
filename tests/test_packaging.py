"""What an installed wheel needs ships inside the package; the packaged copies equal their sources."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.config import WorkbenchConfig, tomllib
from workbench.packaged import example_config, example_names, icon_path

ROOT = Path(__file__).resolve().parent.parent


def test_packaged_copies_equal_their_sources():
    assert icon_path().read_bytes() == (ROOT / "icons" / "workbench.svg").read_bytes()
    sources = sorted(p.stem for p in (ROOT / "resources").glob("*.toml"))
    assert example_names() == sources and sources
    for name in sources:
        assert example_config(name) == (ROOT / "resources" / f"{name}.toml").read_text(encoding="utf-8")


def test_examples_command_lists_and_prints_configs_that_load(capsys):
    assert main(["examples"]) == 0
    assert "tiny-sample" in capsys.readouterr().out
    assert main(["examples", "tiny-sample"]) == 0
    config = WorkbenchConfig.from_dict(tomllib.loads(capsys.readouterr().out))
    assert config.model.preset == "tiny"
    assert main(["examples", "nope"]) == 2
    assert "no example config 'nope'; there are: tiny-sample" in capsys.readouterr().err


def test_the_wheel_holds_every_runtime_file(tmp_path):
    pytest.importorskip("setuptools")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    names = set(zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist())
    needed = ["workbench/resources/workbench.svg", "workbench/resources/tiny-sample.toml",
              "workbench/store/migrations/env.py", "workbench/store/migrations/script.py.mako",
              "workbench/store/migrations/versions/0001_initial.py"]
    needed += [f"workbench/store/migrations/versions/{p.name}"
               for p in (ROOT / "workbench" / "store" / "migrations" / "versions").glob("*.py")]
    assert not [n for n in needed if n not in names]
    assert not [n for n in names if n.startswith("tests/") or "/__pycache__/" in n]
