"""Resuming an interrupted ``prepare``: the checkpoint a partial dataset folder carries.

While tokens are written into the hidden ``.NAME.partial-PID-…`` folder, ``resume.json`` there records,
every ``CHECKPOINT_SECONDS``, how far the writer got at a batch boundary: how many document pieces it
had consumed, the size of each ``.bin`` file at that point (flushed to disk first), the running counts,
and the statistics gathered so far. The tokenizer is already in the folder. A later ``prepare`` of the
same corpus and settings (same fingerprint) whose writer is gone takes that folder over, cuts the files
back to the recorded sizes, reads past the pieces already written and goes on. The bytes written are the
same as an uninterrupted run's: batches restart at the recorded boundary and nothing depends on them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from workbench.durable_io import is_partial_name, pid_of_partial, process_alive, write_bytes_atomic

CHECKPOINT = "resume.json"
# Partial folders a prepare in this process is writing now; the others of this process were left by a prepare
# that stopped (cancelled, interrupted) and may be taken over.
IN_USE: set[str] = set()
CHECKPOINT_SECONDS = 20.0
VERSION = 1


def write_checkpoint(partial: Path, state: dict) -> None:
    write_bytes_atomic(partial / CHECKPOINT, json.dumps({"version": VERSION, **state}).encode("utf-8"))


def read_checkpoint(partial: Path) -> dict | None:
    try:
        state = json.loads((partial / CHECKPOINT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("version") == VERSION else None


def find_resumable(out: Path, fingerprint: str) -> tuple[Path, dict] | None:
    """The abandoned partial folder of ``out`` (its writer gone) with the most progress for ``fingerprint``."""
    best: tuple[Path, dict] | None = None
    if not out.parent.is_dir():
        return None
    for entry in out.parent.iterdir():
        name = entry.name
        if not (is_partial_name(name) and name.startswith(f".{out.name}.partial-") and entry.is_dir()):
            continue
        pid = pid_of_partial(name)
        if pid is None or (process_alive(pid) and (pid != os.getpid() or str(entry) in IN_USE)):
            continue
        state = read_checkpoint(entry)
        if state is None or state.get("fingerprint") != fingerprint or not (entry / "tokenizer.json").is_file():
            continue
        if best is None or state["pieces"] > best[1]["pieces"]:
            best = (entry, state)
    return best


def cut_back(path: Path, size: int) -> None:
    """Truncate ``path`` to ``size`` bytes (what the checkpoint recorded); refuse if it is shorter."""
    if path.stat().st_size < size:
        raise ValueError(f"{path.name} is shorter than its checkpoint")
    with open(path, "r+b") as handle:
        handle.truncate(size)
        os.fsync(handle.fileno())
