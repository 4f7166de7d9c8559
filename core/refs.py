"""References and names: ``NAME``, ``NAME:VERSION``, ``NAME@ALIAS``, and the checks on names, tags and notes.

A leaf: the command line, the pages, the store and the bundle reader all read references the same
way, and none of them needs the store (or numpy) to do it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import InvalidParameterError

# Matched with fullmatch: ``$`` alone would also accept a trailing newline (a folder "name\n").
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}")
#: Version numbers: ASCII digits (``str.isdigit`` also takes Arabic-Indic and superscript digits)
#: within a signed 64-bit range.
_VERSION = re.compile(r"[0-9]{1,19}")
MAX_VERSION = 2**63 - 1
#: The store's own files and folders at its root (the index and its SQLite side files, the marker,
#: the temporary folder): a model's folder may not take their names (compared case-folded, for
#: case-insensitive filesystems).
RESERVED_NAMES = ("index.sqlite", "modelshelf-store.json", ".tmp")


def check_name(name: object) -> str:
    """A model name is a path segment: letters, digits, ``.``, ``_``, ``-``; no slashes, no ``..``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise InvalidParameterError(
            f"Invalid model name {name!r}: use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    folded = name.casefold()
    if folded in RESERVED_NAMES or folded.startswith(RESERVED_NAMES[0]):
        raise InvalidParameterError(f"Invalid model name {name!r}: the store keeps its own files under that name")
    return name


def suggest_name(text: str, suffix: str = "") -> str:
    """A valid model name made from a file name or data source (``my model.pkl`` -> ``my-model``)."""
    stem = str(text).rsplit("/", 1)[-1].removeprefix("builtin:")
    for ending in (".csv", ".pkl", ".pickle", ".joblib", ".skops", ".zip", ".json", ".sav"):
        stem = stem.removesuffix(ending)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).replace("..", ".").strip("-._") or "model"
    return check_name(f"{stem[: 99 - len(suffix)]}{'-' + suffix if suffix else ''}")


def check_label(value: str, what: str) -> str:
    """Tags and aliases: a letter first, then letters, digits, ``.``, ``_``, ``-`` (at most 64)."""
    if not isinstance(value, str) or not _LABEL.fullmatch(value):
        raise InvalidParameterError(
            f"Invalid {what} {value!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter"
        )
    return value


def check_note(note: str) -> str:
    """Notes are free text, stored as given (pages render them as plain text); only the size is bounded."""
    if not isinstance(note, str) or len(note) > 10_000:
        raise InvalidParameterError("A note must be text of at most 10,000 characters")
    return note


@dataclass(frozen=True)
class Ref:
    """``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


def parse_ref(ref: str | Ref) -> Ref:
    """Read a reference; a bare name means the latest version."""
    if isinstance(ref, Ref):
        return ref
    text = str(ref).strip(" ")  # spaces typed around a reference; never a newline
    if "@" in text:
        name, _, alias = text.partition("@")
        return Ref(check_name(name), alias=check_label(alias, "alias"))
    if ":" in text:
        name, _, version = text.rpartition(":")
        if not _VERSION.fullmatch(version) or not 1 <= int(version) <= MAX_VERSION:
            raise InvalidParameterError(
                f"Invalid reference {text!r}: the version must be a whole number from 1 to {MAX_VERSION} "
                "in ASCII digits"
            )
        return Ref(check_name(name), version=int(version))
    return Ref(check_name(text))
