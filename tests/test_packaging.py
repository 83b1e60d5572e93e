"""What an installed wheel needs ships inside the package; the packaged copies equal their sources."""

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.config import WorkbenchConfig
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


@pytest.mark.slow
def test_the_wheel_holds_every_runtime_file(tmp_path):
    pytest.importorskip("setuptools")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    names = set(zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist())
    needed = ["workbench/resources/workbench.svg", "workbench/resources/tiny-sample.toml",
              "workbench/store/migrations/env.py", "workbench/store/migrations/script.py.mako",
              "workbench/store/migrations/versions/0001_initial.py"]
    needed += [f"workbench/resources/sample/{p.name}" for p in (ROOT / "workbench" / "resources" / "sample").iterdir()]
    needed += [f"workbench/store/migrations/versions/{p.name}"
               for p in (ROOT / "workbench" / "store" / "migrations" / "versions").glob("*.py")]
    assert not [n for n in needed if n not in names]
    assert not [n for n in names if n.startswith("tests/") or "/__pycache__/" in n]


def test_linux_desktop_entry_installs_for_the_user_and_uninstalls_only_its_own_files(tmp_path):
    import shutil

    linux = ROOT / "packaging" / "linux"
    data = tmp_path / "share"
    program = tmp_path / "bin" / "pretrain-workbench"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_DATA_HOME": str(data)}
    done = subprocess.run(["bash", str(linux / "install.sh"), str(program)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    desktop = data / "applications" / "pretrain-workbench.desktop"
    assert f'Exec="{program}"' in desktop.read_text()
    assert (data / "icons" / "hicolor" / "256x256" / "apps" / "pretrain-workbench.png").is_file()
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / "pretrain-workbench.svg").is_file()
    assert (data / "metainfo" / "pretrain-workbench.metainfo.xml").is_file()
    if shutil.which("desktop-file-validate"):
        assert subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True).returncode == 0
    mine = data / "applications" / "someone-else.desktop"
    mine.write_text("[Desktop Entry]\n")
    changed = data / "icons" / "hicolor" / "16x16" / "apps" / "pretrain-workbench.png"
    changed.write_bytes(b"edited by the user")
    done = subprocess.run(["bash", str(linux / "uninstall.sh")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not desktop.exists() and mine.exists() and changed.exists()
    assert "kept" in done.stdout and str(changed) in done.stdout
    # A file the script did not write is never overwritten by an install.
    foreign = data / "metainfo" / "pretrain-workbench.metainfo.xml"
    foreign.write_text("not ours")
    changed.unlink()
    done = subprocess.run(["bash", str(linux / "install.sh"), str(program)], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "not overwriting" in done.stderr and foreign.read_text() == "not ours"
    assert not desktop.exists()                          # a refused install writes nothing
