"""The error log: tracebacks of internal errors, kept out of the user's face.

One file in the user's log folder, created readable by the user only (it
holds paths and configs), rotated at ``MAX_BYTES`` with ``KEEP`` old copies.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

MAX_BYTES = 1 << 20
KEEP = 3


def log_path() -> Path:
    from workbench.user_folders import log_folder

    return log_folder() / "errors.log"


def append_error(text: str, path: Path | None = None) -> Path:
    """Append ``text`` (a traceback) with a time stamp; returns the file. Raises OSError when it cannot."""
    from workbench import __version__
    from workbench.redaction import scrub, scrub_argv

    path = path or log_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists() and path.stat().st_size > MAX_BYTES:
        for index in range(KEEP - 1, 0, -1):
            older = path.with_name(f"{path.name}.{index}")
            if older.exists():
                os.replace(older, path.with_name(f"{path.name}.{index + 1}"))
        os.replace(path, path.with_name(f"{path.name}.1"))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} pretrain-workbench {__version__} "
                f"{scrub_argv(sys.argv[1:])}\n{scrub(text)}")
    return path
