"""Files the program reads at run time, shipped inside the package (found with ``importlib.resources``).

``workbench/resources/`` holds copies of the sources at the top of the repository (``icons/``,
``resources/*.toml``); a test keeps them equal, so an installed wheel works without the source tree.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from workbench.errors import WorkbenchError


def resource(name: str) -> Path:
    """A packaged file as a path (the package is installed as plain files, never zipped)."""
    return Path(str(files("workbench") / "resources" / name))


def icon_path() -> Path:
    return resource("workbench.svg")


def example_names() -> list[str]:
    """The example run configs shipped with the program (``pretrain-workbench examples``)."""
    return sorted(p.stem for p in resource("").iterdir() if p.suffix == ".toml")


def example_config(name: str) -> str:
    """The text of example config ``name`` (with or without ``.toml``)."""
    stem = name.removesuffix(".toml")
    if stem not in example_names():
        raise WorkbenchError(f"no example config {name!r}; there are: {', '.join(example_names())}")
    return resource(f"{stem}.toml").read_text(encoding="utf-8")
