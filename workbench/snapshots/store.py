"""Where a run's inspection data lives: ``RUN/inspect/pack.npz`` and one ``step-NNNNNNN.npz`` per snapshot.

Plain ``.npz`` files of numeric and fixed-width text arrays, read with ``allow_pickle=False`` (nothing in
them can run code), each written atomically: a run killed mid-write leaves the previous snapshots whole
and no half file under a real name. A snapshot is a few hundred KB at most; the run's checkpoints are
the large files.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np

from workbench.durable_io import write_bytes_atomic
from workbench.errors import WorkbenchError

FOLDER = "inspect"
PACK = "pack.npz"
_STEP = re.compile(r"^step-(\d{7,})\.npz$")


class SnapshotError(WorkbenchError):
    """Inspection data that is missing, damaged or of another kind than expected."""


def write_npz(path: str | Path, arrays: dict, format: int) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, format=np.int64(format), **{k: np.asarray(v) for k, v in arrays.items()})
    write_bytes_atomic(path, buffer.getvalue())


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise SnapshotError(f"{path}: cannot read inspection data ({exc})") from None


class SnapshotStore:
    """The inspection files of one run folder."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.folder = self.run_dir / FOLDER

    @property
    def pack_path(self) -> Path:
        return self.folder / PACK

    def path(self, step: int) -> Path:
        return self.folder / f"step-{step:07d}.npz"

    def steps(self) -> list[int]:
        """Steps with a snapshot, in order."""
        if not self.folder.is_dir():
            return []
        found = (_STEP.match(p.name) for p in self.folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def has_pack(self) -> bool:
        return self.pack_path.is_file()

    def write(self, step: int, arrays: dict, format: int) -> int:
        """Store one snapshot; its size in bytes."""
        self.folder.mkdir(parents=True, exist_ok=True)
        write_npz(self.path(step), arrays, format)
        return self.path(step).stat().st_size

    def read(self, step: int) -> dict[str, np.ndarray]:
        return read_npz(self.path(step))

    def remove_after(self, step: int) -> list[int]:
        """Delete the snapshots of steps after ``step`` (a run resumed from an older checkpoint retrains
        them); the steps removed."""
        removed = [s for s in self.steps() if s > step]
        for s in removed:
            self.path(s).unlink(missing_ok=True)
        return removed

    def size_bytes(self) -> int:
        if not self.folder.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())
