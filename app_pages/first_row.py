"""The choice every page reading a CSV offers: is its first row column names or data?

Auto-detection (``core.datasets.detect_header``) preselects it and the page says what it found,
so a headerless file never loses its first row to a guess.
"""

from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

from app_pages import common
from core.csvheader import HeaderMode
from core.datasets import detect_header, parse_names

CHOICES = ("First row is column names", "First row is data")
MODES: tuple[HeaderMode, HeaderMode] = ("first-row", "none")
LABEL = "First row of the file"
NAMES_LABEL = "Column names, comma-separated (empty: column_1 ... column_N, the target the last)"
DETECTED = {
    "first-row": "Detected: the first row holds column names.",
    "none": "Detected: the first row looks like data (every field a number, like the rows below), "
    "so it is read as the first data row.",
}


@st.cache_data(show_spinner="Reading the data...", max_entries=8)
def detected(source: str | bytes) -> HeaderMode:
    return detect_header(source)


def _source_key(source: str | bytes) -> str:
    """A short key per file or URL, so a new one gets its own preselected choice (not the last one's)."""
    raw = source if isinstance(source, bytes) else source.encode("utf-8")
    return hashlib.sha256(raw[:65536] + str(len(raw)).encode()).hexdigest()[:12]


def first_row_choice(
    source: str | bytes, key: str, names_default: str = "", container: Any = st
) -> tuple[HeaderMode, list[str] | None] | None:
    """The header mode and column names (when the first row is data) the user confirmed; None if unreadable."""
    found = common.attempt("reading the data", detected, source)
    if found is None:
        return None
    choice = container.radio(
        LABEL, CHOICES, index=MODES.index(found), horizontal=True, key=f"{key}_{_source_key(source)}"
    )
    container.caption(DETECTED[found])
    if choice == CHOICES[0]:
        return "first-row", None
    names = parse_names(container.text_input(NAMES_LABEL, value=names_default, key=f"{key}_names"))
    return "none", names
