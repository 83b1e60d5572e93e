"""Durable writes: unique temporary names, fsync of files and folders, rename into place.

Everything the workbench writes that a person would miss after a crash (run
folders, checkpoints, datasets, exports, configs) goes through here, so that
a killed process or a power cut leaves either the old version or the new one,
never a torn file. A full disk or a read-only folder becomes a ``WorkbenchError``
that names the path, not an ``OSError`` traceback.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
from pathlib import Path
from typing import Iterator

from workbench.errors import WorkbenchError

_DISK_ERRORS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                errno.EROFS: "the file system is read-only", errno.EFBIG: "the file is larger than allowed",
                errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                errno.ENOTDIR: "a part of the path is a file, not a folder",
                errno.EISDIR: "it is a folder, not a file", errno.ENAMETOOLONG: "the name is too long",
                errno.EEXIST: "a file is in the way where a folder is needed"}


KILL_AT = "WORKBENCH_KILL_AT"     # fault-injection tests: "POINT@N" kills this process the Nth time POINT is reached
_reached: dict[str, int] = {}


def fault_point(name: str) -> None:
    """A named place inside a multi-step write where a test may kill this process with SIGKILL
    (``WORKBENCH_KILL_AT=name@N``), so that "killed in the middle of a write" lands exactly there rather than
    after a guessed sleep. Without the variable it costs one environment lookup."""
    wanted = os.environ.get(KILL_AT)
    if not wanted or not wanted.startswith(name + "@"):
        return
    _reached[name] = _reached.get(name, 0) + 1
    if str(_reached[name]) == wanted.rpartition("@")[2]:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


class WriteError(WorkbenchError):
    """Something could not be written (disk full, read-only, a file where a folder should be)."""


@contextlib.contextmanager
def writing(what: str | os.PathLike) -> Iterator[None]:
    """Turn the usual file-system failures while writing ``what`` into a ``WriteError`` naming it (also when a
    native library - tokenizers, safetensors, torch - wraps the OS error in an exception of its own)."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _DISK_ERRORS:
            where = exc.filename or what
            raise WriteError(f"{where}: cannot write ({_DISK_ERRORS[exc.errno]}); nothing was replaced") from None
        raise
    except Exception as exc:
        if is_write_failure(exc):
            raise WriteError(f"{what}: cannot write ({first_line(exc)}); nothing was replaced") from None
        raise


def is_write_failure(exc: BaseException) -> bool:
    """True for the errors safetensors, torch.save and tokenizers (a bare ``Exception``) raise when the disk fails
    under them (they wrap the OSError)."""
    text = str(exc).lower()
    native = isinstance(exc, RuntimeError) or type(exc) is Exception or type(exc).__name__ == "SafetensorError"
    return native and any(
        needle in text for needle in ("os error", "file too large", "no space", "failed writing", "quota", "read-only"))


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename or a new entry in ``folder`` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows: folders cannot be opened; NTFS journals the rename itself
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: str | os.PathLike) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def fsync_tree(folder: Path) -> None:
    """fsync every file below ``folder`` and every folder (bottom up), before it is renamed into place."""
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            fsync_file(Path(root) / name)
        fsync_dir(root)


def temporary_sibling(path: Path, tag: str = "partial") -> Path:
    """A hidden, unique name beside ``path``: ``.NAME.partial-PID-RANDOM``."""
    return path.parent / f".{path.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}"


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` durably: a unique temporary file, fsync, rename, fsync the folder."""
    path = Path(path)
    tmp = temporary_sibling(path)
    with writing(path):
        try:
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fsync_dir(path.parent)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def is_partial_name(name: str) -> bool:
    """True for the hidden temporary names this module and its callers make."""
    return name.startswith(".") and (".partial" in name or ".old-" in name)


def pid_of_partial(name: str) -> int | None:
    """The process id inside ``.NAME.partial-PID-...`` (or ``.old-PID``), if any."""
    for tag in (".partial-", ".old-"):
        if tag in name:
            digits = name.split(tag, 1)[1].split("-", 1)[0]
            return int(digits) if digits.isdigit() else None
    return None


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:  # a zombie (killed, not yet reaped) is dead for our purposes
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (clock ticks since boot, Linux), to tell a reused pid from the original."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return float(f.read().rsplit(")", 1)[-1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def remove_stale_partials(folder: Path, prefix: str = ".", keep: frozenset[str] = frozenset()) -> list[str]:
    """Remove the temporary entries in ``folder`` left by processes that died; returns their names.

    Only hidden names of our own pattern whose writer is gone are touched; a
    partial of a live process (another run writing now) is left alone, and so
    are the names in ``keep``.
    """
    import shutil

    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if not (is_partial_name(entry.name) and entry.name.startswith(prefix)) or entry.name in keep:
            continue
        pid = pid_of_partial(entry.name)
        if pid is not None and process_alive(pid) and pid != os.getpid():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        removed.append(entry.name)
    return removed
