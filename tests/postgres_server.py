"""A throwaway PostgreSQL server for the run-store tests, listening on a Unix socket only.

Debian's ``postgresql`` package provides the binaries (``.ci/run`` installs it);
``initdb`` refuses to run as root, so as root the server runs as the
``postgres`` user. ``start()`` returns None with the reason when no server can
be started here; the tests then skip - except under CI, where they must run.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path


class PostgresServer:
    def __init__(self, bin_dir: Path, root: Path, port: int, as_user: list[str]):
        self.bin_dir, self.root, self.port, self.as_user = bin_dir, root, port, as_user
        self.socket_dir = root / "socket"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def create_database(self) -> str:
        """A fresh, empty database on this server; returns its URL."""
        from sqlalchemy import create_engine, text

        name = f"wb_{uuid.uuid4().hex[:12]}"
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        subprocess.run([*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate",
                        "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def find_bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def start() -> tuple[PostgresServer | None, str]:
    """(server, "") or (None, why not)."""
    try:
        import psycopg  # noqa: F401 - the driver the URL names
    except ImportError:
        return None, "the psycopg driver is not installed"
    bin_dir = find_bin_dir()
    if bin_dir is None:
        return None, "no PostgreSQL server binaries (install Debian's postgresql package)"
    root = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            import pwd

            account = pwd.getpwnam("postgres")
        except KeyError:
            return None, "running as root and there is no postgres user to run the server as"
        if runuser is None:
            return None, "running as root without runuser"
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = [runuser, "-u", "postgres", "--"]
    socket_dir = root / "socket"
    commands = [
        [*as_user, "mkdir", str(socket_dir)],
        [*as_user, str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", "postgres", "--auth=trust",
         "--no-sync", "-E", "UTF8"],
    ]
    port = 55000 + os.getpid() % 5000
    commands.append([*as_user, str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "server.log"),
                     "-o", f"-p {port} -k {socket_dir} -c listen_addresses='' -c fsync=off", "-w", "-t", "60",
                     "start"])
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            return None, f"{Path(command[len(as_user)]).name} failed: {(result.stderr or result.stdout).strip()[:300]}"
    return PostgresServer(bin_dir, root, port, as_user), ""
