"""How the index's database is opened, and what its failures mean to a user.

A SQLite index is opened read-write only when this process may write its folder and file; else
read-only (``mode=ro``), or, when even that cannot open it (a WAL database whose ``-shm`` file
cannot be made), as an immutable snapshot. Opening never writes. Database errors that are about
the store rather than the request (locked past the busy timeout, read-only, not a database, disk
full) become one line each, as ``StoreError`` subclasses with the SQLAlchemy error chained.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from core.errors import IndexMissingError, ReadOnlyStoreError, StorageError, StoreBusyError, StoreError

REBUILD_HINT = "run `python -m core index rebuild`"


def sqlite_file(url: str) -> str | None:
    """The file behind a SQLite URL (None: a server database, or SQLite in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return parsed.database


def may_write(path: str) -> bool:
    """Whether this process may write the SQLite file ``path`` and create its journal beside it."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    return not os.path.exists(path) or os.access(path, os.R_OK | os.W_OK)


def index_where(location: str, url: str | None) -> str:
    """Where the index is, as the user named the store (``models/index.sqlite``), never a password."""
    if url is None:
        return f"{location}/index.sqlite"  # failed while opening: the default index of the store
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return parsed.render_as_string(hide_password=True)
    database = Path(parsed.database)
    try:
        return f"{location}/{database.resolve().relative_to(Path(location).resolve()).as_posix()}"
    except ValueError:  # an index file outside the store folder
        return str(database)


def index_missing(where: str, problem: str = "missing") -> IndexMissingError:
    """The index at ``where`` is missing or damaged (``problem`` says how): never recreated, rebuilt."""
    return IndexMissingError(f"the index at {where} is {problem}; {REBUILD_HINT}")


def read_only(location: str) -> ReadOnlyStoreError:
    return ReadOnlyStoreError(f"the store at {location} is read-only")


def busy(location: str) -> StoreBusyError:
    return StoreBusyError(f"the store at {location} is busy (another process is writing); try again")


def _connect_pragmas(writable: bool) -> Any:
    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Own the transactions (so writers can BEGIN IMMEDIATE), let readers run beside a writer
        # (WAL); writers wait for each other up to the busy timeout (the driver's ``timeout``).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if writable:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        else:
            cursor.execute("PRAGMA query_only=1")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return pragmas


def _sqlite_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get("write"):
        # A commit that publishes a version waits for the disk (FULL); other writes may not (NORMAL).
        raw = conn.connection.dbapi_connection
        assert raw is not None  # a connection that is beginning a transaction is open
        raw.execute("PRAGMA synchronous=FULL" if options.get("durable") else "PRAGMA synchronous=NORMAL")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")


def _read_only_engine(path: str, busy_s: float, immutable: bool) -> Engine:
    uri = f"file:{quote(os.path.abspath(path))}?" + ("immutable=1" if immutable else "mode=ro")

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=busy_s, check_same_thread=False)

    engine = create_engine(f"sqlite:///{path}", creator=connect)
    event.listen(engine, "connect", _connect_pragmas(writable=False))
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def open_engine(url: str, busy_timeout_s: float, location: str) -> tuple[Engine, bool, bool]:
    """``(engine, read_only, snapshot)`` for the index at ``url``; nothing is written to open it."""
    busy_s = max(0.0, float(busy_timeout_s))
    path = sqlite_file(url)
    if path is None or may_write(path):
        sqlite = make_url(url).get_backend_name() == "sqlite"
        # pool_pre_ping: a pooled connection a database restart killed is replaced, not handed out.
        engine = create_engine(url, connect_args={"timeout": busy_s} if sqlite else {}, pool_pre_ping=not sqlite)
        if sqlite:
            event.listen(engine, "connect", _connect_pragmas(writable=True))
            event.listen(engine, "begin", _sqlite_begin)
        return engine, False, False
    if not os.path.exists(path):
        raise ReadOnlyStoreError(f"the store at {location} is read-only and has no index to read")
    engine = _read_only_engine(path, busy_s, immutable=False)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT count(*) FROM sqlite_master")).scalar()
        return engine, True, False
    except OperationalError:  # a WAL index whose -shm file cannot be made here: read a snapshot
        engine.dispose()
        return _read_only_engine(path, busy_s, immutable=True), True, True


#: What SQLite says of a file that is not a sound database.
_DAMAGED = ("not a database", "malformed", "file is encrypted", "no such table", "no such column")


def database_error(exc: DBAPIError, location: str, where: str, done: str = "") -> StoreError | None:
    """The one line a database error about the store itself stands for (None: not one of those).

    The one table for both places that meet these errors: the index's own transactions
    (``translated``) and every ``Store`` method (``core.store.failures``). ``done`` ends what a
    failed change says (": nothing was saved"); a full disk says ": nothing was changed" without it.
    """
    orig = getattr(exc, "orig", None)  # the driver's own words, without SQLAlchemy's SQL and link
    reason = (str(orig if orig is not None else exc).strip().splitlines() or ["?"])[0]
    message = reason.lower()
    if "locked" in message or "busy" in message:
        return busy(location)
    if "readonly" in message or "read-only" in message:
        return read_only(location)
    if "is full" in message or "no space left" in message:
        return StorageError(f"no space left on the device holding {where}{done or ': nothing was changed'}")
    if "disk i/o error" in message:
        return StorageError(f"could not read or write the index at {where} (disk I/O error; is the disk full?){done}")
    if "unable to open database" in message and Path(where).is_dir():
        return index_missing(where, "damaged: it is a folder, not a database")
    if any(sign in message for sign in (*_DAMAGED, "unable to open database")):
        return index_missing(where, f"damaged: {reason}")
    return None


#: What the outermost index transaction open in this thread runs once it has committed.
_AFTER_COMMIT: ContextVar[list[Callable[[], None]] | None] = ContextVar("modelshelf_after_commit", default=None)


def after_commit(action: Callable[[], None]) -> None:
    """Run ``action`` once the index transaction open in this thread has committed (at once when
    none is open; never when it fails): object-store writes that must not wait under its locks."""
    pending = _AFTER_COMMIT.get()
    if pending is None:
        action()
    else:
        pending.append(action)


@contextmanager
def translated(location: str, where: str) -> Iterator[None]:
    """Turn the database errors that are about the store into one-line ``StoreError``s (cause chained).

    It encloses each transaction, commit included, so the outermost one also runs what
    ``after_commit`` deferred, once the block has succeeded.
    """
    pending: list[Callable[[], None]] = []
    token = _AFTER_COMMIT.set(pending) if _AFTER_COMMIT.get() is None else None
    try:
        yield
    except IntegrityError:
        raise  # a rule of the data (a foreign key, a unique pair): the caller knows what it means
    except DBAPIError as exc:
        meaning = database_error(exc, location, where)
        if meaning is None:
            raise
        raise meaning from exc
    finally:
        if token is not None:
            _AFTER_COMMIT.reset(token)
    for action in pending:
        action()
