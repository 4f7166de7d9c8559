"""Is a CSV's first row column names or data? Told apart, and never guessed silently.

A headerless file read as if it had a header loses its first row and names its columns after
that row's values (the Pima file gave 767 rows and a target called ``1``). So ``"auto"`` reads
the first row as names only when it does not look like data; when it does, the reader asks:
``"first-row"`` (names) or ``"none"`` (data; columns ``column_1`` ... ``column_N``), or names given.

The first row looks like data when every field in it is a number (an empty field, a missing
value, is allowed) and every column it has a number in holds only numbers in the rows below.
A first row of numbers above a column of text (``2019,2020`` over ``a,b``) is names: a data row
would be text where the rows below are. A file of one row has nothing to compare with: all
numbers, it is asked about.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, get_args

#: How a CSV's first row is read: detected, column names, or the first data row.
HeaderMode = Literal["auto", "first-row", "none"]
HEADER_MODES: tuple[HeaderMode, ...] = get_args(HeaderMode)
#: A number as CSV files write it: ``7``, ``-0.5``, ``.25``, ``1e-3``, ``1,5`` (a decimal comma).
_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")


def is_number(field: str) -> bool:
    return bool(_NUMBER.fullmatch(field.strip()))


def looks_like_data(rows: Sequence[Sequence[str]]) -> bool:
    """Whether the first of ``rows`` (split fields, as sampled) reads as a data row (see the module)."""
    if not rows:
        return False
    first = [field.strip() for field in rows[0]]
    if not any(first) or not all(is_number(field) for field in first if field):
        return False
    for row in rows[1:]:
        for field, value in zip(first, row, strict=False):
            if field and value.strip() and not is_number(value):
                return False
    return True


def generic_names(count: int) -> list[str]:
    """``column_1`` ... ``column_N``: the names of a file whose first row is data."""
    return [f"column_{i}" for i in range(1, count + 1)]


def header_prompt(label: str) -> str:
    """The one line that asks how to read a first row that looks like data."""
    return f"the first row of {label} looks like data; pass --no-header, --header or --names"
