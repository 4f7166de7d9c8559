"""What a registry table shows of each version: index columns only, so no model file is opened."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.store.index import Row

#: The columns of ``Store.table``, in order.
TABLE_COLUMNS = (
    "ref",
    "name",
    "version",
    "aliases",
    "estimator",
    "accuracy",
    "format",
    "size_bytes",
    "sklearn",
    "created",
    "tags",
    "origin",
)


def table_rows(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """One dict per index row, keyed by ``TABLE_COLUMNS``."""
    return [
        {
            "ref": r.ref,
            "name": r.name,
            "version": r.version,
            "aliases": ", ".join("@" + a for a in r.aliases),
            "estimator": (r.estimator or "").rsplit(".", 1)[-1],
            "accuracy": r.accuracy,
            "format": r.format,
            "size_bytes": r.size_bytes,
            "sklearn": r.sklearn_version,
            "created": r.created_at,
            "tags": ", ".join(r.tags),
            "origin": r.origin,
        }
        for r in rows
    ]
