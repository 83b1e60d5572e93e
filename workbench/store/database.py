"""Opening the run database: URL resolution, SQLite settings, Alembic upgrade from code.

The URL comes from ``--db``, else ``WORKBENCH_DB``, else a SQLite file in the
user's data directory. Any SQLAlchemy URL works (a team can share a
PostgreSQL server: ``postgresql+psycopg://user:pass@host/workbench``).

SQLite is put in WAL mode with a busy timeout and foreign keys on, so the GUI
can read while a headless run writes and two runs can write at once. The
schema is created and upgraded by the Alembic migrations shipped in
``workbench/store/migrations``; a database written by a newer program (a
revision we do not know) is refused rather than touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from workbench.durable_io import first_line
from workbench.errors import StoreError
from workbench.redaction import redact_url, remember_url, scrub
from workbench.store.location import resolve_url

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 30_000


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        return Path(url[len("sqlite:///"):])
    return None


def _configure_sqlite(engine: Engine, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):  # every new connection, before first use
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not read_only:                              # the journal mode is stored in the file: a write
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable at checkpoints, fast commits
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()


# What a driver says when the database cannot be written, lower-cased: SQLite's SQLITE_FULL, PostgreSQL's
# disk_full (53100) and "could not extend file", the OS's ENOSPC and EDQUOT. SQLite's "disk I/O error" is
# a full disk when the folder has (almost) no space left, else a real I/O error.
_FULL = ("database or disk is full", "no space left on device", "disk full", "could not extend file",
         "disk quota exceeded")
_READ_ONLY = ("attempt to write a readonly database", "read-only file system", "read only file system")


def write_failure(said: str, shown: str, path: Path | None) -> str | None:
    """The one-line message for a driver's error ``said`` when it means the database cannot be written
    (a full disk, a read-only file); None for any other error."""
    lowered = said.lower()
    first = said.strip().splitlines()[0] if said.strip() else "no message"
    full = any(hint in lowered for hint in _FULL)
    if not full and "disk i/o error" in lowered and path is not None:
        with contextlib.suppress(OSError):
            full = shutil.disk_usage(path.parent).free < 1 << 20
    if full:
        return (f"database {shown} cannot be written: the disk is full ({first}); free some space and try "
                f"again (what was recorded before is kept)")
    if any(hint in lowered for hint in _READ_ONLY):
        return f"database {shown} is read-only here ({first}): it can be listed and shown, not changed"
    return None


def _explain_write_failures(engine: Engine, shown: str, path: Path | None) -> None:
    """A full disk or a read-only database becomes one line naming the database (a ``StoreError``), from
    whichever statement meets it, instead of the driver's several lines or an internal error."""
    @event.listens_for(engine, "handle_error")
    def explain(context):
        message = write_failure(str(context.original_exception), shown, path)
        if message:
            raise StoreError(message)


def is_read_only(engine: Engine) -> bool:
    """Whether ``engine`` was opened read-only (a SQLite file or folder this process cannot write)."""
    query = engine.url.query
    return query.get("mode") == "ro" or query.get("immutable") == "1"


def _writable(path: Path) -> bool:
    """Whether this process can write ``path`` and, for SQLite's journal files, its folder (root included:
    a read-only file system refuses even root)."""
    try:
        os.close(os.open(path, os.O_RDWR))
    except OSError:
        return False
    return os.access(path.parent, os.W_OK)


def display_url(url: str) -> str:
    """``url`` with its password and secret query values as ``***``: the only form shown or logged."""
    return redact_url(url)


def open_engine(url: str | None = None) -> Engine:
    """An engine on an up-to-date database; creates the file and the schema when needed."""
    url = resolve_url(url)
    shown = display_url(url)
    path = _sqlite_path(url)
    read_only = False
    if path is not None:
        if path.exists() and path.is_dir():
            raise StoreError(f"{path}: is a folder, not a database file")
        if path.exists() and path.stat().st_size and not _looks_like_sqlite(path):
            raise StoreError(f"{path}: not a SQLite database")
        read_only = path.exists() and not _writable(path)
    if read_only:
        return _open_read_only(path, shown)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():  # readable by the user only: runs hold paths, notes and configs
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the database ({exc.strerror})") from None
    try:
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000} if path else {})
    except Exception as exc:  # bad URL, missing driver
        raise StoreError(f"cannot open database {shown}: {_without_secrets(str(exc), url)}") from None
    if path is not None:
        _configure_sqlite(engine)
    _explain_write_failures(engine, shown, path)
    try:
        with _migration_lock(engine, path):
            if path is not None:
                upgrade_sqlite_atomically(url)
            else:
                upgrade(engine)
    except (OperationalError, DatabaseError) as exc:
        message = _without_secrets(str(exc.orig) if getattr(exc, "orig", None) else str(exc), url)
        explained = write_failure(message, shown, path)
        if explained:
            raise StoreError(explained) from None
        if "locked" in message:
            raise StoreError(f"database {shown} is locked by another program; try again") from None
        raise StoreError(f"database {shown} cannot be used: {message.splitlines()[0] if message else ''}") from None
    return engine


def _open_read_only(path: Path, shown: str) -> Engine:
    """A SQLite file this process cannot write (its permissions, a read-only mount): opened for reading,
    as SQLite's URI ``mode=ro`` (``immutable=1`` when its folder cannot hold the journal files either), so
    runs can be listed and shown; any write is a one-line error. It must already have the current schema."""
    from alembic.script import ScriptDirectory

    flag = "mode=ro" if os.access(path.parent, os.W_OK) else "immutable=1"
    engine = create_engine(f"sqlite:///file:{path}?{flag}&uri=true")
    _configure_sqlite(engine, read_only=True)
    _explain_write_failures(engine, shown, path)
    try:
        with engine.connect() as connection:
            current = current_revision(connection)
            head = ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()
    except (OperationalError, DatabaseError) as exc:
        engine.dispose()
        raise StoreError(f"database {shown} cannot be read ({first_line(getattr(exc, 'orig', None) or exc)})") \
            from None
    if current != head:
        engine.dispose()
        raise StoreError(f"database {shown} is read-only here and needs an upgrade of its schema "
                         f"({current or 'none'} -> {head}); open it once where it can be written")
    return engine


def upgrade_sqlite_atomically(url: str) -> None:
    """Run the migrations in one real SQLite transaction, so a kill half-way leaves the old schema.

    Python's sqlite3 module commits before every DDL statement by default, so a migration killed
    half-way would leave some tables created and no version stamped: an unusable database. Here the
    module's own transaction handling is switched off and one ``BEGIN IMMEDIATE`` wraps everything
    (SQLite's DDL is transactional).
    """
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    _configure_sqlite(engine)

    @event.listens_for(engine, "connect")
    def no_implicit_transactions(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        # A migration that rebuilds a table (SQLite's batch mode) must not cascade deletes into the
        # tables that refer to it: foreign keys are off while the schema changes.
        dbapi_connection.execute("PRAGMA foreign_keys = OFF")

    @event.listens_for(engine, "begin")
    def begin_immediately(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        upgrade(engine)
    finally:
        engine.dispose()


def _without_secrets(message: str, url: str) -> str:
    remember_url(url)
    return scrub(message)


@contextlib.contextmanager
def _migration_lock(engine: Engine, sqlite_path: Path | None):
    """Serialise schema creation and upgrades between processes opening the same database at once.

    SQLite: an OS lock on a file beside the database (released if the process dies).
    PostgreSQL: a session advisory lock. Others: the database's own DDL locking.
    """
    if sqlite_path is not None:
        lock_path = sqlite_path.with_name(sqlite_path.name + ".migrate-lock")
        try:
            handle = open(lock_path, "a+")
        except OSError:
            yield
            return
        try:
            try:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            except ImportError:  # Windows: SQLite's own locking serialises the DDL
                pass
            yield
        finally:
            handle.close()
    elif engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(727274)"))
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(727274)"))
                connection.commit()
    else:
        yield


def _looks_like_sqlite(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def _alembic_config(connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; refuse a database from a newer program."""
    from alembic import command
    from alembic.script import ScriptDirectory

    with engine.begin() as connection:
        config = _alembic_config(connection)
        known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
        current = current_revision(connection)
        if current is not None and current not in known:
            raise StoreError(
                f"database {display_url(engine.url.render_as_string(hide_password=False))} was written by a "
                f"newer version of pretrain-workbench "
                f"(schema {current}); update the program to use it"
            )
        if current is None and inspect(connection).has_table("runs"):
            raise StoreError(f"database {display_url(engine.url.render_as_string(hide_password=False))} has a runs table but no "
                             "schema version; not ours")
        command.upgrade(config, revision)


def current_revision(connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
