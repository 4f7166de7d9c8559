"""Small text formatting shared by every front end (command line, dashboard)."""

from __future__ import annotations


def human_bytes(size: int | None) -> str:
    """``2534`` -> ``2.5 kB``: sizes for people (powers of 1000, as file managers show them)."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
