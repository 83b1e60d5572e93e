"""What the workbench may touch: markers on the folders it creates, exclusive claims, safe removal.

The workbench deletes and overwrites only what it provably created:

* a **run folder** carries ``.workbench-run.json`` naming its run id and the
  database it belongs to (the database's random ``database_id``). Deleting a
  run removes its folder only when that marker names that run of that
  database, and even then only the entries the workbench writes (checkpoints,
  config.toml, its own hidden files): anything a person added stays, and is
  reported. A path read from the database is never trusted on its own.
* an **export folder** carries ``.workbench-export.json``; export writes only
  into a new or empty folder or one it exported before, and replaces only the
  files it writes.
* a run folder is **claimed** by one process at a time with an OS lock on
  ``.workbench-run.lock`` (``flock``; released by the kernel when the process
  dies, however it dies), so two writers can never share a folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.durable_io import is_partial_name, write_text_atomic, writing
from workbench.errors import ConfigError, WorkbenchError

RUN_MARKER = ".workbench-run.json"
RUN_LOCK = ".workbench-run.lock"
EXPORT_MARKER = ".workbench-export.json"
# What the workbench itself writes into a run folder (besides the marker and the lock).
RUN_ENTRIES = ("checkpoints", "config.toml", "inspect")

_NAME_OK = re.compile(r"^[^\x00-\x1f\x7f/\\:*?\"<>|]+$")


class OwnershipError(WorkbenchError):
    """A folder is not ours to write or delete, or another process holds it."""


def check_run_name(name: str, key: str = "train.name") -> None:
    """A run name is a name, never a path: no separators, no ``..``, no control characters."""
    if name == "":
        return
    if len(name) > 120:
        raise ConfigError(f"{key} is too long ({len(name)} characters; at most 120)")
    if name.strip() != name or name in (".", "..") or name.startswith(".") or not _NAME_OK.match(name):
        raise ConfigError(
            f"{key} must be a plain name (letters, digits, spaces, - _ and the like; no '/', '\\', '..', "
            f"leading dot or control characters), got {name!r}"
        )


# --- markers --------------------------------------------------------------------------------

def read_marker(folder: Path, name: str = RUN_MARKER) -> dict | None:
    try:
        data = json.loads((Path(folder) / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_run_marker(folder: Path, run_id: int | None, database_id: str) -> None:
    write_text_atomic(Path(folder) / RUN_MARKER, json.dumps({
        "kind": "pretrain-workbench run", "run_id": run_id, "database_id": database_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=1))


def is_run_folder(folder: Path) -> bool:
    return read_marker(folder) is not None


# --- claims ---------------------------------------------------------------------------------

class RunFolderClaim:
    """An exclusive, process-lifetime lock on a run folder. ``release()`` (or process death) frees it."""

    def __init__(self, folder: Path, handle):
        self.folder = folder
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                _unlock(self._handle)
            self._handle.close()
            self._handle = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def __enter__(self) -> "RunFolderClaim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _lock(handle) -> bool:
    try:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    except OSError:
        return False


def _unlock(handle) -> None:
    try:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    except ImportError:
        import msvcrt

        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)


def claim_run_folder(folder: Path) -> RunFolderClaim:
    """Lock ``folder`` (which exists) for this process, or say who holds it."""
    path = Path(folder) / RUN_LOCK
    with writing(path):
        handle = open(path, "a+", encoding="utf-8")
    if not _lock(handle):
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise OwnershipError(f"{folder}: run folder is in use by {holder}; wait for it to finish or stop it first")
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()} on {os.uname().nodename if hasattr(os, 'uname') else 'this host'}")
    handle.flush()
    return RunFolderClaim(Path(folder), handle)


def folder_in_use(folder: Path) -> bool:
    """True when a live process holds the run folder's lock."""
    if not (Path(folder) / RUN_LOCK).exists():
        return False
    try:
        claim = claim_run_folder(folder)
    except OwnershipError:
        return True
    except WorkbenchError:
        return False
    claim.release()
    return False


def new_run_folder(base: Path, unique: bool) -> RunFolderClaim:
    """Create and claim a fresh run folder at ``base`` (or ``base-2``, ``base-3``... when ``unique``).

    Two processes that pick the same name at the same moment get two folders
    (``unique``) or one clear error: a folder becomes a process's by creating
    its lock file exclusively and locking it at once. An existing folder is
    never adopted unless it is empty (or holds only a stale lock of ours).
    """
    base = Path(base)
    with writing(base):
        base.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 1000):
            candidate = base if attempt == 1 else base.with_name(f"{base.name}-{attempt}")
            try:
                candidate.mkdir()
            except FileExistsError:
                pass
            claim = _take_fresh(candidate) if candidate.is_dir() else None
            if claim is not None:
                return claim
            if not unique:
                _refuse(candidate)
    raise OwnershipError(f"{base}: could not find a free run folder name")


def _take_fresh(folder: Path) -> RunFolderClaim | None:
    """This process's claim on ``folder`` if it is empty (or holds only an unheld lock of ours); else None."""
    entries = {p.name for p in folder.iterdir()}
    if entries - {RUN_LOCK}:
        return None
    if not entries:
        try:  # the first to create the lock file wins the folder
            os.close(os.open(folder / RUN_LOCK, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            pass
    try:
        claim = claim_run_folder(folder)
    except OwnershipError:
        return None
    if {p.name for p in folder.iterdir()} - {RUN_LOCK}:  # someone else got in first and wrote into it
        claim.release()
        return None
    return claim


def _refuse(candidate: Path) -> None:
    if candidate.is_dir() and folder_in_use(candidate):
        raise OwnershipError(f"{candidate}: run folder is in use by another run; choose another folder")
    marker = read_marker(candidate) if candidate.is_dir() else None
    if marker is not None:
        raise OwnershipError(
            f"{candidate} already holds run {marker.get('run_id') or '(unrecorded)'}; continue it "
            f"with --resume {candidate} or choose another folder")
    what = "a folder with other files" if candidate.is_dir() else "a file"
    raise OwnershipError(f"{candidate}: is {what}, not a new run folder; choose a new or empty "
                         "folder (the workbench never writes into folders it did not create)")


# --- removal --------------------------------------------------------------------------------

@dataclass
class Removal:
    removed: bool          # the folder itself is gone
    message: str           # for a person: what was removed, or why nothing was


def remove_run_folder(folder: str | os.PathLike | None, run_id: int, database_id: str) -> Removal:
    """Remove what the workbench wrote for run ``run_id`` of database ``database_id`` - and nothing else."""
    if not folder:
        return Removal(False, "")
    folder = Path(folder)
    if not folder.is_absolute():
        return Removal(False, f"kept {folder}: a relative path from the database is not trusted")
    if not folder.is_dir():
        return Removal(False, "")
    marker = read_marker(folder)
    if marker is None:
        return Removal(False, f"kept {folder}: it has no run marker, so the workbench did not create it")
    if marker.get("run_id") != run_id or marker.get("database_id") != database_id:
        return Removal(False, f"kept {folder}: its marker names run {marker.get('run_id')} of another database "
                              "or another run")
    try:
        claim = claim_run_folder(folder)
    except OwnershipError as exc:
        return Removal(False, f"kept {folder}: {exc}")
    with claim:
        checkpoints = folder / "checkpoints"
        if checkpoints.is_dir():
            for entry in checkpoints.iterdir():
                ours = (entry.name.startswith("step-") and (entry / "checkpoint.json").exists()) or \
                    entry.name.startswith("abandoned-") or is_partial_name(entry.name)
                if ours and entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
            with contextlib.suppress(OSError):
                checkpoints.rmdir()  # only if nothing else is in it
        inspect = folder / "inspect"            # snapshots: pack.npz and step-NNNNNNN.npz (workbench.snapshots)
        if inspect.is_dir() and not inspect.is_symlink():
            for entry in inspect.iterdir():
                ours = re.fullmatch(r"pack\.npz|step-\d{7,}\.npz", entry.name) or is_partial_name(entry.name)
                if ours and entry.is_file() and not entry.is_symlink():
                    entry.unlink()
            with contextlib.suppress(OSError):
                inspect.rmdir()
        for name in ("config.toml", RUN_MARKER):
            with contextlib.suppress(OSError):
                (folder / name).unlink()
        for entry in folder.iterdir():
            if is_partial_name(entry.name) and entry.name != RUN_LOCK:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()
    with contextlib.suppress(OSError):
        (folder / RUN_LOCK).unlink()
    left = sorted(p.name for p in folder.iterdir())
    if left:
        return Removal(False, f"removed the run's files from {folder}; kept what the workbench did not write "
                              f"there: {', '.join(left[:5])}{'...' if len(left) > 5 else ''}")
    folder.rmdir()
    return Removal(True, str(folder))


# --- export folders ---------------------------------------------------------------------------

def check_export_folder(out: Path) -> None:
    """Export may write into a new or empty folder, or one it exported to before."""
    if out.exists() and not out.is_dir():
        raise OwnershipError(f"{out}: is a file, not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and read_marker(out, EXPORT_MARKER) is None:
        raise OwnershipError(f"{out}: folder is not empty and was not written by an export; choose a new or "
                             "empty folder (nothing in it was touched)")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OwnershipError(f"{out}: {parent} is a file, not a folder")
            break


def write_export_marker(out: Path, source: str) -> None:
    write_text_atomic(out / EXPORT_MARKER, json.dumps({
        "kind": "pretrain-workbench export", "source": source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=1))
