"""Schema 4: each version's task and primary score as real columns, so lists sort and filter on them in SQL.

``versions.task`` (classification, regression, clustering, transformer), ``versions.score`` and
``versions.score_name`` (``accuracy`` for classifiers, ``r2`` for regressors: the record's
``metrics.primary``). ``accuracy`` stays filled for classifiers, for older readers. The data
migration is one self-contained function, :func:`upgrade_to_4`, run in the caller's write
transaction like the others in ``core.store.schema`` (and ready to become a migration revision).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, false, inspect, select, text, update

from core.record import recorded_score
from core.store.schema import versions

#: The columns schema 4 adds to ``versions``, with their SQL types (every dialect takes these).
V4_COLUMNS: dict[str, str] = {"task": "VARCHAR(16)", "score": "FLOAT", "score_name": "VARCHAR(32)"}


def index_columns(record: Mapping[str, Any]) -> dict[str, Any]:
    """The schema-4 column values of a version's row, from its record (a record made before tasks were
    recorded reads as classification when it has an accuracy, else by its estimator class)."""
    # Deferred: the task of an old record may need scikit-learn's classes; listing never does.
    from core.tasks import task_of_record

    name, value = recorded_score(record)
    return {"task": task_of_record(record), "score": value, "score_name": name if value is not None else None}


def upgrade_to_4(conn: Connection) -> None:
    """Schema 3 -> 4, in place and in the caller's write transaction: add the columns and their indexes,
    then fill every row that has no task yet from its record JSON. Running it again changes nothing."""
    present = {c["name"] for c in inspect(conn).get_columns("versions")}
    for column, sql_type in V4_COLUMNS.items():
        if column not in present:
            conn.execute(text(f"ALTER TABLE versions ADD COLUMN {column} {sql_type}"))
    for index in versions.indexes:
        if {c.name for c in index.columns} & set(V4_COLUMNS):
            index.create(conn, checkfirst=True)
    rows = conn.execute(text("SELECT id, record FROM versions WHERE task IS NULL")).all()
    filled = [{"row_id": row.id, **index_columns(json.loads(row.record))} for row in rows]
    if filled:  # one executemany: an UPDATE per row took 5.5 s on 10,000 rows
        by_id = update(versions).where(versions.c.id == bindparam("row_id"))
        conn.execute(by_id.values({c: bindparam(c) for c in V4_COLUMNS}), filled)


def _older(schema: int | None) -> bool:
    return schema is not None and schema < 4


def select_versions(schema: int | None) -> Any:
    """``SELECT`` of a version's columns; an index before schema 4 is read as it is, without the new ones."""
    return select(*[c for c in versions.c if c.name not in V4_COLUMNS]) if _older(schema) else select(versions)


def task_clause(task: str, schema: int | None) -> Any:
    """The versions of one task (an index before schema 4 has no task column: its scored versions are classifiers)."""
    if _older(schema):
        return versions.c.accuracy.is_not(None) if task == "classification" else false()
    return versions.c.task == task


def sort_column(sort: str, schema: int | None) -> Any:
    """The column a list sorts by: ``created``, ``accuracy`` or ``score`` (before schema 4: the accuracy)."""
    if sort == "created":
        return versions.c.created_at
    return versions.c.score if sort == "score" and not _older(schema) else versions.c.accuracy
