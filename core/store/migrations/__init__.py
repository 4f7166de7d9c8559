"""Schema migrations of the metadata index, with Alembic, configured in code (no ``alembic.ini``).

Each revision's id is the ``schema`` number it leaves in ``store_info`` (``versions/schema_N.py``):

- 2: the schema of the release before issue 12 (``tests/reliability/fixtures/release_store``), the
  first revision. From nothing it makes those tables; over an index older still (schema 1: no
  ``names`` table, no ``stored_bytes``) it makes the missing tables and runs the old 1 -> 2 step.
- 3: issue 12's layout: ``names.next_version`` and the store id (the marker and every
  ``version.json`` follow, written by ``core.store.layout`` in the same transaction).
- 4: 64-bit ``size_bytes``/``stored_bytes`` (a batch ALTER; SQLite's INTEGER already holds 64
  bits, so there it changes nothing) and the artifact root recorded in ``store_info``.

``store_info.schema`` stays the one record the release reads (one query, no Alembic: see
``core.store.schema.schema_of``). An index made before Alembic, or made new by this release
(``MetadataIndex.create`` makes the tables of the head revision at once, the way Alembic's cookbook
does), has no ``alembic_version`` table: ``run`` stamps Alembic at ``store_info.schema`` first, so
Alembic only ever runs the revisions the index lacks. Each revision writes ``schema`` itself, so
the two records agree in every transaction. No revision downgrades: an older release refuses a
newer index in one line; going back means restoring the backup taken before upgrading.

Who upgrades: a SQLite index upgrades itself before its first write (``MetadataIndex.upgrade``);
an index on a database server is upgraded only by ``python -m core index upgrade`` (writes are
refused until then, reads of schema 2 and 3 go on), so replicas of an older release are not
surprised. ``upgrading`` holds PostgreSQL's advisory lock (two replicas never upgrade at once) and,
on SQLite, turns foreign keys off for the transaction (a batch revision copies a table; dropping
the old one must not cascade to the rows that reference it), checked before the commit.

Adding a revision (e.g. a ``task`` column):

1. Copy the newest ``versions/schema_N.py`` to ``versions/schema_<N+1>.py``; set ``revision =
   "<N+1>"`` and ``down_revision = "<N>"``; write ``upgrade()`` with ``op`` (``op.get_bind()``
   gives the connection for data steps) and end it with ``set_schema(<N+1>)``. Write the DDL out
   in the file (never import today's tables from ``core.store.schema``: a revision is frozen).
2. Change ``core.store.schema`` (the tables a new index gets) the same way and raise
   ``SCHEMA_VERSION`` to ``<N+1>``.
3. ``tests/test_migrations.py`` then checks that the revisions from nothing give exactly the
   tables of ``core.store.schema``, and that the release fixture upgrades with nothing lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from core.errors import SchemaNewerError, SchemaOlderError, StorageError, StoreBusyError
from core.store.engine import index_missing, translated
from core.store.locking import lock_schema
from core.store.schema import SCHEMA_VERSION, metadata_obj, schema_in, set_info

#: ``(conn)``: a step run inside the transaction that makes or upgrades the index.
Hook = Callable[[Connection], None]

#: The first revision (see above); an index at schema 1 is brought to it by that revision itself.
FIRST = 2
HEAD = SCHEMA_VERSION
SCRIPTS = Path(__file__).resolve().parent


@contextmanager
def upgrading(engine: Engine) -> Iterator[Connection]:
    """A write transaction of its own for an upgrade: schema lock held (PostgreSQL), foreign keys
    off on SQLite (``PRAGMA foreign_keys`` is ignored inside a transaction, so it is set before)."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        raw = conn.connection.dbapi_connection
        assert raw is not None  # an open connection has its DB-API connection
        if sqlite:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                lock_schema(conn)
                yield conn
                if sqlite and conn.execute(text("PRAGMA foreign_key_check")).first() is not None:
                    raise StorageError("the upgraded index breaks a foreign key; nothing was changed")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


def run(conn: Connection, found: int | None, *, store_id: str, artifact_root: str | None, to: int = HEAD) -> None:
    """Bring the index on ``conn`` (in ``upgrading``) from schema ``found`` to ``to`` with Alembic.

    ``store_id`` is the id schema 3 gives a store that has none; ``artifact_root`` what schema 4
    records (``core.store.layout.artifact_root``). Nothing is committed here: the caller's
    transaction holds every revision, so a failed upgrade leaves the index as it was.
    """
    # Deferred: Alembic is imported only when an upgrade actually runs, never to open or read a store.
    from alembic import command
    from alembic.config import Config
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes.update(connection=conn, store_id=store_id, artifact_root=artifact_root)
    try:
        if found is not None and found >= FIRST:  # store_info.schema is the truth: Alembic's record follows it
            command.stamp(config, str(found), purge=True)
        command.upgrade(config, str(to))
    except CommandError as exc:  # e.g. a revision this release does not have: nothing was committed
        raise StorageError(f"the index could not be upgraded from schema {found}: {exc}") from exc


def set_schema(conn: Connection, number: int) -> None:
    """What every revision does last: ``store_info.schema`` says it, in the same transaction."""
    set_info(conn, "schema", str(number))


def schema_newer(location: str, found: int) -> SchemaNewerError:
    return SchemaNewerError(
        f"the store at {location} was made by a newer ModelShelf (index schema {found}, "
        f"this one knows {SCHEMA_VERSION}); upgrade ModelShelf to use it"
    )


def schema_older(where: str, found: int) -> SchemaOlderError:
    return SchemaOlderError(
        f"the index at {where} is at schema {found}, this release needs {SCHEMA_VERSION}: "
        "run `python -m core index upgrade`"
    )


def create(
    engine: Engine, location: str, where: str, store_id: str, artifact_root: str | None, hooks: tuple[Hook, Hook]
) -> None:
    """Make the tables of a new index at once (the head revision's, ``core.store.schema``), unless
    another process just did: ``hooks`` run before (may refuse) and after (the marker), in its transaction."""
    before, after = hooks
    for attempt in range(5):
        try:
            with translated(location, where), engine.begin() as conn:
                lock_schema(conn)
                if schema_in(conn) is None:
                    before(conn)
                    metadata_obj.create_all(conn)
                    set_info(conn, "schema", str(SCHEMA_VERSION))
                    set_info(conn, "store_id", store_id)
                    if artifact_root is not None:
                        set_info(conn, "artifact_root", artifact_root)
                    after(conn)
            return
        except (OperationalError, IntegrityError, StoreBusyError):  # two first opens racing on a new file
            if attempt == 4:
                raise


def upgrade_index(
    engine: Engine, where: str, location: str, artifact_root: str | None, on_upgrade: Hook | None
) -> tuple[int, int]:
    """Upgrade the index in a transaction of its own (``upgrading``); ``(from, to)``, equal when it was
    up to date. ``on_upgrade`` brings the artifact files along when the upgrade crosses schema 3."""
    with upgrading(engine) as conn:
        found = schema_in(conn)  # read again in the lock: another process may have upgraded it meanwhile
        if found is None:
            raise index_missing(where, "damaged: it has no tables")
        if found > SCHEMA_VERSION:
            raise schema_newer(location, found)
        if found < SCHEMA_VERSION:
            run(conn, found, store_id=uuid.uuid4().hex, artifact_root=artifact_root)
            if found < 3 and on_upgrade is not None:  # the marker and version.json came with schema 3
                on_upgrade(conn)
    return found, SCHEMA_VERSION
