"""Small text formatting shared by every front end (command line, dashboard)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def human_bytes(size: int | None) -> str:
    """``2534`` -> ``2.5 kB``: sizes for people (powers of 1000, as file managers show them)."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


_MARKDOWN_ESCAPES = str.maketrans({ch: "\\" + ch for ch in "\\`*_{}[]()<>#+-.!|~$:=^&\"'"})


def escape_markdown(text: object) -> str:
    """User text (names, tags, notes, error messages) made inert for a Markdown renderer.

    Every ASCII punctuation mark is backslash-escaped (CommonMark allows it for all of them), so
    a note cannot become a link, an image, HTML, a heading, a formula or a coloured directive.
    """
    return str(text).translate(_MARKDOWN_ESCAPES).replace("\n", "  \n")


def parse_tags(text: str) -> list[str]:
    """``"a, b,,c "`` -> ``["a", "b", "c"]``: tags typed into one box, duplicates dropped in order."""
    return list(dict.fromkeys(t.strip() for t in text.replace(";", ",").split(",") if t.strip()))


def utc_minutes(timestamp: str | None) -> str:
    """``2026-11-30T15:12:07.123456+00:00`` -> ``2026-11-30 15:12 UTC``: one way to show a time, everywhere.

    Records keep full ISO 8601 (UTC, microseconds) for ordering; people read minutes. A naive
    timestamp is taken as UTC (the store writes only UTC); text that is no timestamp is shown as is.
    """
    if not timestamp:
        return "-"
    try:
        moment = datetime.fromisoformat(str(timestamp))
    except ValueError:
        return str(timestamp)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def split_words(split: Mapping[str, Any] | None) -> str:
    """``{"test_size": 0.33, "random_state": 7, "stratify": True, ...}`` -> ``33% held out, seed 7, stratified``."""
    if not split:
        return "no held-out split recorded"
    size = split.get("test_size")
    held = f"{float(size) * 100:.4g}% held out" if isinstance(size, (int, float)) else "held-out size unknown"
    seed = split.get("random_state")
    words = [
        held,
        "no seed" if seed is None else f"seed {seed}",
        "stratified" if split.get("stratify") else "not stratified",
    ]
    counted = split.get("n_train") is not None and split.get("n_test") is not None
    return ", ".join(words) + (f" ({split['n_train']} rows trained on, {split['n_test']} held out)" if counted else "")


def metric_text(name: str, value: float | None) -> str:
    """A metric as every table shows it: scores to 4 decimals (``0.9200``, not ``0.92`` beside ``0.9259``),
    counts as integers, times in seconds; an undefined one as ``n/a``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if name.startswith("n_"):
        return f"{int(value):,}"
    if name.endswith("_seconds"):
        return f"{float(value):.3f} s"
    return f"{float(value):.4f}"


def param_literal(value: Any) -> str:
    """A hyperparameter as Python writes it: ``1.0``, ``'liblinear'``, ``None``, ``False`` (never ``1.00e+0``)."""
    return repr(value)


def params_text(params: Mapping[str, Any] | None) -> str:
    """``C=1.0, solver='liblinear'``: hyperparameters as the Python call that makes them, sorted by name."""
    return ", ".join(f"{k}={param_literal(v)}" for k, v in sorted((params or {}).items()))
