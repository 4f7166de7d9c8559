"""Row locks and race-free inserts of the index, for server databases where writers run side by side.

SQLite serializes writers (``BEGIN IMMEDIATE``) and ignores ``FOR UPDATE``; PostgreSQL runs
transactions at once, so whatever reads a row to change it locks it first (``SELECT ... FOR
UPDATE``), and a row two writers may both create is inserted with ``ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, String, Table, bindparam, insert, select, text
from sqlalchemy.exc import IntegrityError

from core.store.schema import names

#: Built once: SQLAlchemy takes about as long to build and key a statement as SQLite takes to run it.
_LOCK_NAME = select(names.c.owner).where(names.c.name == bindparam("name", type_=String)).with_for_update()


def lock_name(conn: Connection, name: str) -> Any:
    """The names row of ``name`` (its ``owner``), locked until the commit (``FOR UPDATE``; None: no row).

    SQLite has no row locks and needs none: its writers are serialized by ``BEGIN IMMEDIATE``.
    """
    return conn.execute(_LOCK_NAME, {"name": name}).first()


def insert_new(conn: Connection, table: Table, values: dict[str, Any]) -> None:
    """Insert a row unless one with its key exists (``ON CONFLICT DO NOTHING`` where the dialect has it)."""
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        from sqlalchemy.dialects import postgresql, sqlite  # deferred: only writers need them (27 ms)

        module = postgresql if dialect == "postgresql" else sqlite
        conn.execute(module.insert(table).values(**values).on_conflict_do_nothing())
        return
    try:
        with conn.begin_nested():
            conn.execute(insert(table).values(**values))
    except IntegrityError:  # another transaction made it first: it is there, which is all we need
        pass


#: The key of the PostgreSQL advisory lock held while the tables are made or upgraded ("MSHELF" in hex).
SCHEMA_LOCK_KEY = 0x4D5348454C46


def lock_schema(conn: Connection) -> None:
    """Hold the schema lock until the transaction ends, on PostgreSQL (``pg_advisory_xact_lock``).

    Two processes opening a brand-new store, or upgrading one, take turns: the second then finds
    the tables (and the store id) the first committed, instead of writing a marker of its own.
    SQLite needs none: ``BEGIN IMMEDIATE`` already lets one writer in at a time.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
