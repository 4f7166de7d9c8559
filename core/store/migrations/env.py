"""Alembic's environment for the index: always online, on the connection ``core.store.migrations.run``
hands over in ``config.attributes`` (inside its transaction, which Alembic leaves to it)."""

from __future__ import annotations

from alembic import context

from core.store.schema import metadata_obj

if context.is_offline_mode():
    raise RuntimeError("the index's migrations run online only, through `python -m core index upgrade`")
connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata_obj,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters most things by copying the table
)
with context.begin_transaction():
    context.run_migrations()
