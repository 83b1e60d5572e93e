"""Packages only some corpus formats need: imported when a file needs one, else a ``CorpusError`` that
names the file and the pip extra that installs the package."""

from __future__ import annotations

import importlib

from workbench.errors import CorpusError


def needed_package(module: str, path: str, reading: str, extra: str):
    """``module`` imported, or the error for ``path``: "reading {reading} needs ... [extra]"."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise CorpusError(f"{path}: reading {reading} needs the {module} package: "
                          f"pip install 'pretrain-workbench[{extra}]'") from None
