"""The index's tables as this release makes them, and the one query that tells an index's schema.

A new index gets these tables at once (``MetadataIndex.create``); an older one is brought here by
the Alembic revisions in ``core.store.migrations``, whose numbers are the ``schema`` values kept in
``store_info``. Reading the schema is one query and never imports Alembic (``schema_of``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

#: 2: names (who owns a name) and versions.stored_bytes; 3: names.next_version and the store id;
#: 4: 64-bit sizes on every dialect and the artifact root; 5: versions.task, score and score_name.
#: Each is a revision of core.store.migrations.
SCHEMA_VERSION = 5

metadata_obj = MetaData()

versions = Table(
    "versions",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("format", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),  # 64-bit: models over 2 GiB
    Column("sha256", String(64), nullable=False),
    Column("estimator", String(200)),
    Column("accuracy", Float),
    Column("sklearn_version", String(40)),
    Column("origin", String(16), nullable=False, default="trained"),
    Column("owner", String(64)),
    Column("note", Text, nullable=False, default=""),
    Column("record", Text, nullable=False),
    # Every byte kept for the version: model file, evaluation set, export files, record, note, tags.
    Column("stored_bytes", BigInteger, nullable=False, default=0, server_default="0"),
    # Schema 5: the task and the primary score with its name (accuracy, r2), to sort and filter in SQL.
    Column("task", String(16)),
    Column("score", Float),
    Column("score_name", String(32)),
    UniqueConstraint("name", "version", name="uq_name_version"),
)
Index("ix_versions_created", versions.c.created_at, versions.c.id)
Index("ix_versions_accuracy", versions.c.accuracy, versions.c.id)
Index("ix_versions_owner", versions.c.owner)
Index("ix_versions_score", versions.c.score, versions.c.id)
Index("ix_versions_task", versions.c.task, versions.c.score, versions.c.id)  # a task filter sorted by score

tags = Table(
    "tags",
    metadata_obj,
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(64), primary_key=True),
)
Index("ix_tags_tag", tags.c.tag)

aliases = Table(
    "aliases",
    metadata_obj,
    Column("name", String(128), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
)
Index("ix_aliases_version", aliases.c.version_id)

#: A model file's stat at the moment its sha256 was last verified in full (core.store.artifacts.stamp_of):
#: while the file's stat is unchanged, a load need not hash it again.
verified_files = Table(
    "verified_files",
    metadata_obj,
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("stamp", String(200), nullable=False),
)

#: Who owns a name (whoever made its first version; NULL: the operator) and the next number it
#: hands out. Claimed in the transaction that inserts the first version and KEPT when the last
#: one goes, so a number is never handed out twice and the name stays its maker's.
names = Table(
    "names",
    metadata_obj,
    Column("name", String(128), primary_key=True),
    Column("owner", String(64)),
    Column("created_at", String(40), nullable=False),
    Column("next_version", Integer, nullable=False, default=1, server_default="1"),
)
Index("ix_names_owner", names.c.owner)

store_info = Table(
    "store_info",
    metadata_obj,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


#: Built once: SQLAlchemy takes about as long to build and key a statement as SQLite takes to run it.
_INFO = select(store_info.c.value).where(store_info.c.key == bindparam("info_key", type_=String))
_INFO_LOCKED = _INFO.with_for_update()


def info_value(conn: Connection, key: str, *, lock: bool = False) -> str | None:
    """One ``store_info`` value (``schema``, ``store_id``), or None; ``lock``: its row stays locked
    until the commit (``FOR UPDATE``: writers of a server database that rewrite the marker queue)."""
    found = conn.execute(_INFO_LOCKED if lock else _INFO, {"info_key": key}).scalar()
    return None if found is None else str(found)


def set_info(conn: Connection, key: str, value: str) -> None:
    if info_value(conn, key) is None:
        conn.execute(insert(store_info).values(key=key, value=value))
    else:
        conn.execute(update(store_info).where(store_info.c.key == key).values(value=value))


def schema_of(conn: Connection) -> int | None:
    """The schema number of the index read on ``conn`` (None: no tables yet, a new or lost index).

    ONE query, the check every open makes. Only when it fails (no ``store_info`` table: a new
    index, or schema 1) is this reading connection rolled back and the tables looked at.
    """
    try:
        found = conn.execute(select(store_info.c.value).where(store_info.c.key == "schema")).scalar()
    except DBAPIError:  # no such table (a PostgreSQL transaction is over after it: rolled back)
        conn.rollback()
        return schema_in(conn)
    return int(found) if found is not None else schema_in(conn)


def schema_in(conn: Connection) -> int | None:
    """``schema_of`` inside a write transaction: the tables are looked at first, since a failed
    query would end a PostgreSQL transaction."""
    if not inspect(conn).has_table("versions"):
        return None
    found = info_value(conn, "schema") if inspect(conn).has_table("store_info") else None
    return int(found) if found is not None else 1


def contains(column: Any, text: str) -> Any:
    """``column`` holds ``text`` anywhere, in any case (its ``%``, ``_``, ``\\`` literal), in every dialect alike."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")
