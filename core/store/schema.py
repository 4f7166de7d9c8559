"""The index's tables and how an older index is brought up to date, in place.

Schema 3 (this release) adds ``names.next_version`` (numbers are never handed out twice, a delete
never lowers it) and the store id kept in ``store_info`` and in the artifact root's marker file.
A schema-2 index is read as it is; it is upgraded by the first write transaction (see
``MetadataIndex.writing``), so opening a store to read never writes.
"""

from __future__ import annotations

import json

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
    func,
    insert,
    inspect,
    select,
    text,
    update,
)

from core.record import stored_bytes

#: 2: names (who owns a name) and versions.stored_bytes; 3: names.next_version and the store id;
#: 4: versions.task, score and score_name (``core.store.schema_v4``).
SCHEMA_VERSION = 4

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
    # Schema 4: the task and the primary score with its name (accuracy, r2), to sort and filter in SQL.
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


def info_value(conn: Connection, key: str) -> str | None:
    """One ``store_info`` value (``schema``, ``store_id``), or None."""
    found = conn.execute(select(store_info.c.value).where(store_info.c.key == key)).scalar()
    return None if found is None else str(found)


def set_info(conn: Connection, key: str, value: str) -> None:
    if info_value(conn, key) is None:
        conn.execute(insert(store_info).values(key=key, value=value))
    else:
        conn.execute(update(store_info).where(store_info.c.key == key).values(value=value))


def upgrade_to_2(conn: Connection) -> None:
    """Schema 1 -> 2, in place and in the caller's write transaction: count every version's bytes,
    and give each name to the owner of its oldest surviving version (the only trace of who made it)."""
    if "stored_bytes" not in {c["name"] for c in inspect(conn).get_columns("versions")}:
        conn.execute(text("ALTER TABLE versions ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0"))
    tag_map: dict[int, list[str]] = {}
    for link in conn.execute(select(tags.c.version_id, tags.c.tag)):  # by name, not unpacked: see usage()
        tag_map.setdefault(link.version_id, []).append(link.tag)
    for row in conn.execute(select(versions.c.id, versions.c.record, versions.c.note)).all():
        size = stored_bytes(json.loads(row.record), row.record, row.note or "", tag_map.get(row.id, []))
        conn.execute(update(versions).where(versions.c.id == row.id).values(stored_bytes=size))
    first = select(func.min(versions.c.id)).group_by(versions.c.name)
    claimed = select(names.c.name)
    rows = conn.execute(
        select(versions.c.name, versions.c.owner, versions.c.created_at).where(
            versions.c.id.in_(first), versions.c.name.not_in(claimed)
        )
    ).all()
    if rows:
        conn.execute(insert(names), [{"name": n, "owner": o, "created_at": c, "next_version": 1} for n, o, c in rows])


def upgrade_to_3(conn: Connection, store_id: str) -> None:
    """Schema 2 -> 3, in the caller's write transaction: each name's next number continues after
    its highest version, and the store gets its id (the artifact files follow in ``core.store.layout``)."""
    if "next_version" not in {c["name"] for c in inspect(conn).get_columns("names")}:
        conn.execute(text("ALTER TABLE names ADD COLUMN next_version INTEGER NOT NULL DEFAULT 1"))
    highest = select(versions.c.name, func.max(versions.c.version).label("top")).group_by(versions.c.name)
    for row in conn.execute(highest).all():
        conn.execute(update(names).where(names.c.name == row.name).values(next_version=int(row.top) + 1))
    if info_value(conn, "store_id") is None:
        set_info(conn, "store_id", store_id)


def schema_of(conn: Connection) -> int | None:
    """The schema number of the index on ``conn`` (None: no tables yet, a new or lost index)."""
    if not inspect(conn).has_table("versions"):
        return None
    found = info_value(conn, "schema") if inspect(conn).has_table("store_info") else None
    return int(found) if found is not None else 1
