"""The registry table: one summary row per version, from index columns only (no record is parsed).

Its ``score`` column reads ``r2 0.4526`` or ``accuracy 0.7559`` (the version's primary score with
its name); ``score_value`` holds the number, ``accuracy`` stays for classifiers; ``warnings``
counts what the version recorded at training (a flag in the dashboard's list).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from core.store.index import Row

if TYPE_CHECKING:
    import pandas as pd

#: The table's columns, in order.
TABLE_COLUMNS = [
    "ref",
    "name",
    "version",
    "aliases",
    "estimator",
    "task",
    "score",
    "score_value",
    "warnings",
    "accuracy",
    "format",
    "size_bytes",
    "sklearn",
    "created",
    "tags",
    "origin",
]


def score_of(row: Row) -> tuple[str | None, float | None]:
    """The primary score's name and value (a row read from an index before schema 4: its accuracy)."""
    if row.score_name:
        return row.score_name, row.score
    return ("accuracy", row.accuracy) if row.accuracy is not None else (None, None)


def score_cell(row: Row) -> str:
    """``r2 0.4526``: the primary score with its name; ``-`` when the version was never scored."""
    name, value = score_of(row)
    return "-" if name is None or value is None else f"{name} {value:.4f}"


#: A record whose ``warnings`` list is not empty (the store writes ``json.dumps``' default separators).
_SOME_WARNINGS = re.compile(r'"warnings": \[[^\]]')


def warning_count(row: Row) -> int:
    """How many warnings the version recorded; its record is parsed only when it holds some."""
    if not _SOME_WARNINGS.search(row.record_json):
        return 0
    return len(row.record().get("warnings") or [])


def summary_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """What a registry table shows of each version."""
    import pandas as pd  # deferred: the CLI's list formats rows without it

    return pd.DataFrame(
        [
            {
                "ref": r.ref,
                "name": r.name,
                "version": r.version,
                "aliases": ", ".join("@" + a for a in r.aliases),
                "estimator": (r.estimator or "").rsplit(".", 1)[-1],
                "task": r.task or ("classification" if r.accuracy is not None else None),
                "score": score_cell(r)
                if r.score_name
                else ("-" if r.accuracy is None else f"accuracy {r.accuracy:.4f}"),
                "score_value": r.score if r.score_name else r.accuracy,
                "warnings": warning_count(r),
                "accuracy": r.accuracy,
                "format": r.format,
                "size_bytes": r.size_bytes,
                "sklearn": r.sklearn_version,
                "created": r.created_at,
                "tags": ", ".join(r.tags),
                "origin": r.origin,
            }
            for r in rows
        ],
        columns=TABLE_COLUMNS,
    )
