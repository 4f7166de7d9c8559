"""Schema 2, the first revision: the index of the release before issue 12 (versions, tags, aliases,
verified_files, names with their owners, store_info).

From nothing it makes those tables. Over a schema-1 index (made before names had owners: no
``names`` table, no ``versions.stored_bytes``) it makes what is missing and runs that release's
own 1 -> 2 step: every version's bytes counted, each name given to its oldest version's owner.
The DDL is written out here, frozen: ``core.store.schema`` is the newest schema, not this one.
"""

from __future__ import annotations

import json

from alembic import op
from sqlalchemy import (
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
    update,
)

from core.record import stored_bytes
from core.store.migrations import set_schema

revision = "2"
down_revision = None
branch_labels = None
depends_on = None

meta = MetaData()
versions = Table(
    "versions",
    meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("format", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("estimator", String(200)),
    Column("accuracy", Float),
    Column("sklearn_version", String(40)),
    Column("origin", String(16), nullable=False),
    Column("owner", String(64)),
    Column("note", Text, nullable=False),
    Column("record", Text, nullable=False),
    Column("stored_bytes", Integer, nullable=False, server_default="0"),
    UniqueConstraint("name", "version", name="uq_name_version"),
)
Index("ix_versions_created", versions.c.created_at, versions.c.id)
Index("ix_versions_accuracy", versions.c.accuracy, versions.c.id)
Index("ix_versions_owner", versions.c.owner)
tags = Table(
    "tags",
    meta,
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(64), primary_key=True),
)
Index("ix_tags_tag", tags.c.tag)
aliases = Table(
    "aliases",
    meta,
    Column("name", String(128), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
)
Index("ix_aliases_version", aliases.c.version_id)
Table(
    "verified_files",
    meta,
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("stamp", String(200), nullable=False),
)
names = Table(
    "names",
    meta,
    Column("name", String(128), primary_key=True),
    Column("owner", String(64)),
    Column("created_at", String(40), nullable=False),
)
Index("ix_names_owner", names.c.owner)
Table(
    "store_info",
    meta,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


def _from_schema_1(conn: Connection) -> None:
    """The 1 -> 2 step of that release: count every version's bytes, and give each name to the owner
    of its oldest surviving version (the only trace of who made it)."""
    if "stored_bytes" not in {c["name"] for c in inspect(conn).get_columns("versions")}:
        op.add_column("versions", Column("stored_bytes", Integer, nullable=False, server_default="0"))
    tag_map: dict[int, list[str]] = {}
    for link in conn.execute(select(tags.c.version_id, tags.c.tag)):
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
        conn.execute(insert(names), [{"name": n, "owner": o, "created_at": c} for n, o, c in rows])


def upgrade() -> None:
    conn = op.get_bind()
    had_versions = inspect(conn).has_table("versions")
    meta.create_all(conn)  # checkfirst: every table from nothing, or those a schema-1 index lacks
    if had_versions:
        _from_schema_1(conn)
    set_schema(conn, 2)


def downgrade() -> None:
    raise NotImplementedError("the index is not downgraded: restore the backup taken before upgrading")
