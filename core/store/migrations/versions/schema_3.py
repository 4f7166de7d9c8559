"""Schema 3, issue 12's layout: each name's next number (``names.next_version``, never lowered by a
delete, so a number is never handed out twice) and the store's id in ``store_info``.

Each name's next number continues after its highest version. The store id is the one the upgrading
process drew (``config.attributes["store_id"]``); the marker and every ``version.json`` that carry
it are written by ``core.store.layout`` in the same transaction.
"""

from __future__ import annotations

from alembic import context, op
from sqlalchemy import Column, Integer, column, func, select, table, update

from core.store.migrations import set_schema
from core.store.schema import info_value, set_info

revision = "3"
down_revision = "2"
branch_labels = None
depends_on = None

versions = table("versions", column("name"), column("version"))
names = table("names", column("name"), column("next_version"))


def upgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("names") as batch:  # SQLite adds a column in place: no table copy
        batch.add_column(Column("next_version", Integer, nullable=False, server_default="1"))
    highest = select(versions.c.name, func.max(versions.c.version).label("top")).group_by(versions.c.name)
    for row in conn.execute(highest).all():
        conn.execute(update(names).where(names.c.name == row.name).values(next_version=int(row.top) + 1))
    if info_value(conn, "store_id") is None:
        set_info(conn, "store_id", context.config.attributes["store_id"])
    set_schema(conn, 3)


def downgrade() -> None:
    raise NotImplementedError("the index is not downgraded: restore the backup taken before upgrading")
