"""Schema 4: 64-bit sizes on every dialect, and the artifact root recorded in the index.

``size_bytes`` and ``stored_bytes`` become BIGINT (a model over 2 GiB fitted no PostgreSQL INTEGER).
SQLite's INTEGER already holds 64 bits, so there the ALTER is skipped: a batch ALTER would copy
``versions`` for a type name alone. ``store_info.artifact_root`` is where this index's files are
(``core.store.layout.artifact_root``: a local folder relative to a SQLite index, else the URL
without credentials), checked before each process's first write (``root_mismatch`` in ``doctor``).
"""

from __future__ import annotations

from alembic import context, op
from sqlalchemy import BigInteger, Integer

from core.store.migrations import set_schema
from core.store.schema import set_info

revision = "4"
down_revision = "3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        with op.batch_alter_table("versions") as batch:
            for name in ("size_bytes", "stored_bytes"):
                batch.alter_column(name, type_=BigInteger, existing_type=Integer, existing_nullable=False)
    root = context.config.attributes.get("artifact_root")
    if root is not None:
        set_info(conn, "artifact_root", root)
    set_schema(conn, 4)


def downgrade() -> None:
    raise NotImplementedError("the index is not downgraded: restore the backup taken before upgrading")
