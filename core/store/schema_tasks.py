"""Schema 5: each version's task and primary score as real columns, so lists sort and filter on them in SQL.

``versions.task`` (classification, regression, clustering, transformer), ``versions.score`` and
``versions.score_name`` (``accuracy`` for classifiers, ``r2`` for regressors: the record's
``metrics.primary``). ``accuracy`` stays filled for classifiers, for older readers. An older index
gets them from the Alembic revision ``core/store/migrations/versions/schema_5.py``, which fills
each row with :func:`index_columns`; until then it is read as it is (the helpers below).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from sqlalchemy import String, bindparam, false, select

from core.record import recorded_score
from core.store.schema import aliases, versions

#: The columns schema 5 adds to ``versions``.
TASK_COLUMNS = ("task", "score", "score_name")
#: The schema that has them.
TASK_SCHEMA = 5


def index_columns(record: Mapping[str, Any]) -> dict[str, Any]:
    """The schema-5 column values of a version's row, from its record (a record made before tasks were
    recorded reads as classification when it has an accuracy, else by its estimator class)."""
    # Deferred: the task of an old record may need scikit-learn's classes; listing never does.
    from core.tasks import task_of_record

    name, value = recorded_score(record)
    return {"task": task_of_record(record), "score": value, "score_name": name if value is not None else None}


def _older(schema: int | None) -> bool:
    return schema is not None and schema < TASK_SCHEMA


def select_versions(schema: int | None) -> Any:
    """``SELECT`` of a version's columns; an index before schema 5 is read as it is, without the new ones."""
    return select(*[c for c in versions.c if c.name not in TASK_COLUMNS]) if _older(schema) else select(versions)


@lru_cache(maxsize=16)
def find_version(schema: int | None, by: str) -> Any:
    """One version of ``:name`` by ``:version`` number (``by="version"``), by ``:alias``, or the
    ``latest``: built once per schema, as building a statement takes about as long as running it."""
    query, name = select_versions(schema), bindparam("name", type_=String)
    if by == "alias":
        linked = (aliases.c.version_id == versions.c.id) & (aliases.c.name == name)
        return query.join(aliases, linked).where(aliases.c.alias == bindparam("alias"))
    if by == "version":
        return query.where(versions.c.name == name, versions.c.version == bindparam("version"))
    return query.where(versions.c.name == name).order_by(versions.c.version.desc()).limit(1)


def task_clause(task: str, schema: int | None) -> Any:
    """The versions of one task (an index before schema 5 has no task column: its scored versions are classifiers)."""
    if _older(schema):
        return versions.c.accuracy.is_not(None) if task == "classification" else false()
    return versions.c.task == task


def sort_column(sort: str, schema: int | None) -> Any:
    """The column a list sorts by: ``created``, ``accuracy`` or ``score`` (before schema 5: the accuracy)."""
    if sort == "created":
        return versions.c.created_at
    return versions.c.score if sort == "score" and not _older(schema) else versions.c.accuracy
