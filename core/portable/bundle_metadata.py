"""A bundle's ``metadata.json``, read as hostile input: a strict schema with size bounds.

The manifest's sha256s are the sender's own: they prove the files were not changed on the way,
not who made them or that what they say is true. So the metadata is parsed here, not believed:

- the whole file is bounded (``MAX_METADATA_BYTES``) before it is parsed;
- only the fields a version record uses are read, each against its type and bounds (versions
  must be version strings, names and columns single-line text of bounded length, numbers
  finite and in range); anything else in the file is dropped;
- a known field with a bad value refuses the bundle with one line naming the field: a newline in
  a version or a column name would otherwise end up in generated code or requirements files.

Metrics are returned as the sender's *claims*: the importer stores them apart from measured
metrics (``claimed_metrics``), never in the index's accuracy column.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any

from core.catalog import CATALOG
from core.errors import FormatError
from core.metrics import MAX_CONFUSION_CLASSES
from core.portable.requirements import is_package_name, is_version
from core.text import human_bytes

#: metadata.json (and manifest.json) larger than this is refused before it is read.
MAX_METADATA_BYTES = 1024 * 1024
MAX_FEATURES = 100_000
MAX_CLASSES = 10_000
MAX_PACKAGES = 64
MAX_WARNINGS = 100
MAX_WARNING_CHARS = 4000
MAX_NAME_CHARS = 256
_SCORES = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc")
_COMPRESSION_NAMES = ("zlib", "gzip", "bz2", "xz", "lzma", "zip")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([+-][0-9]{2}:[0-9]{2}|Z)?"
)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PLATFORM = re.compile(r"[A-Za-z0-9._+,;:()@/ -]{1,200}")
_WORD = re.compile(r"[A-Za-z0-9_.-]{1,40}")
# Characters that end a line for str.splitlines, or reorder or hide text: never in a name.
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


class _Bad(Exception):
    """A field outside the schema (becomes one FormatError naming it)."""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: Any, where: str, max_chars: int, multiline: bool = False) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{where} is not text ({_shown(value)})")
    if len(value) > max_chars:
        raise _Bad(f"{where} is longer than {max_chars} characters")
    allowed = {"\n", "\t"} if multiline else set()
    for ch in value:
        if ch not in allowed and unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            raise _Bad(f"{where} holds a control or line-breaking character ({_shown(value)})")
    return value


def _name(value: Any, where: str) -> str:
    """A column, target or class name: one line of printable text, bounded."""
    text = _text(value, where, MAX_NAME_CHARS)
    if not text:
        raise _Bad(f"{where} is empty")
    return text


def _int(value: Any, where: str, low: int = 0, high: int = 2**63 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _Bad(f"{where} is not a whole number from {low} to {high} ({_shown(value)})")
    return value


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Bad(f"{where} is not a number from {low:g} to {high:g} ({_shown(value)})")
    if not low <= value <= high:
        raise _Bad(f"{where} is not a number from {low:g} to {high:g} ({_shown(value)})")
    return float(value)


def _optional(value: Any, check: Any, *args: Any) -> Any:
    return None if value is None else check(value, *args)


def _dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{where} is not a JSON object")
    return value


def _list(value: Any, where: str, max_items: int) -> list[Any]:
    if not isinstance(value, list):
        raise _Bad(f"{where} is not a list")
    if len(value) > max_items:
        raise _Bad(f"{where} has more than {max_items} entries")
    return value


def _label(value: Any, where: str) -> Any:
    """A class label: a bounded one-line string, a whole number, a finite number or a boolean."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return _int(value, where, -(2**63), 2**63 - 1)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad(f"{where} holds a number that is not finite ({_shown(value)})")
        return value
    return _name(value, where)


def _metrics(value: Any) -> dict[str, Any]:
    metrics = _dict(value, "metrics")
    out: dict[str, Any] = {}
    for key in _SCORES:
        value = metrics.get(key)
        if isinstance(value, float) and math.isnan(value):
            continue  # undefined (a score over one class): left out, not refused
        if value is not None:
            out[key] = _number(value, f"metrics.{key}", 0.0, 1.0)
    if metrics.get("fit_seconds") is not None:
        out["fit_seconds"] = _number(metrics["fit_seconds"], "metrics.fit_seconds", 0.0, 1e9)
    if metrics.get("n_samples") is not None:
        out["n_samples"] = _int(metrics["n_samples"], "metrics.n_samples")
    if metrics.get("average") is not None:
        if metrics["average"] not in ("binary", "macro"):
            raise _Bad(f"metrics.average is not 'binary' or 'macro' ({_shown(metrics['average'])})")
        out["average"] = metrics["average"]
    claimed = metrics.get("confusion_matrix")
    labels_given = claimed.get("labels") if isinstance(claimed, dict) else None
    # Past MAX_CONFUSION_CLASSES it is dropped, as this store would not record it (it grows with the square).
    if claimed is not None and not (isinstance(labels_given, list) and len(labels_given) > MAX_CONFUSION_CLASSES):
        cm = _dict(claimed, "metrics.confusion_matrix")
        given = _list(cm.get("labels"), "labels", MAX_CONFUSION_CLASSES)
        labels = [_label(v, "metrics.confusion_matrix.labels") for v in given]
        matrix = _list(cm.get("matrix"), "metrics.confusion_matrix.matrix", len(labels))
        rows = [_list(row, "metrics.confusion_matrix.matrix", len(labels)) for row in matrix]
        if len(rows) != len(labels) or any(len(row) != len(labels) for row in rows):
            raise _Bad("metrics.confusion_matrix is not square over its labels")
        out["confusion_matrix"] = {
            "labels": labels,
            "matrix": [[_int(v, "metrics.confusion_matrix.matrix") for v in row] for row in rows],
        }
    return out


def _split(value: Any) -> dict[str, Any]:
    split = _dict(value, "split")
    test_size = split.get("test_size")
    if isinstance(test_size, int) and not isinstance(test_size, bool):
        test_size = _int(test_size, "split.test_size", 1)
    else:
        test_size = _number(test_size, "split.test_size", 1e-9, 1 - 1e-9)
    return {
        "test_size": test_size,
        "random_state": _optional(split.get("random_state"), _int, "split.random_state", 0, 2**32 - 1),
        "stratify": bool(_optional(split.get("stratify"), _bool, "split.stratify")),
        "n_train": _optional(split.get("n_train"), _int, "split.n_train"),
        "n_test": _optional(split.get("n_test"), _int, "split.n_test"),
    }


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"{where} is not true or false ({_shown(value)})")
    return value


def _dataset(value: Any) -> dict[str, Any]:
    dataset = _dict(value, "dataset")
    out: dict[str, Any] = {
        "source": _optional(dataset.get("source"), _text, "dataset.source", 1000),
        "fingerprint": None,
        "n_rows": _optional(dataset.get("n_rows"), _int, "dataset.n_rows"),
        "n_features": _optional(dataset.get("n_features"), _int, "dataset.n_features", 0, MAX_FEATURES),
        "target": _optional(dataset.get("target"), _name, "dataset.target"),
    }
    fingerprint = dataset.get("fingerprint")
    if fingerprint is not None:
        if not isinstance(fingerprint, str) or not _SHA256.fullmatch(fingerprint):
            raise _Bad(f"dataset.fingerprint is not a sha256 in hex ({_shown(fingerprint)})")
        out["fingerprint"] = fingerprint
    names = None
    if dataset.get("feature_names") is not None:
        listed = _list(dataset["feature_names"], "dataset.feature_names", MAX_FEATURES)
        names = [_name(n, "dataset.feature_names") for n in listed]
        if len(set(names)) != len(names):
            raise _Bad("dataset.feature_names repeats a name")
        out["feature_names"] = names
    if dataset.get("feature_types") is not None:
        types = _dict(dataset["feature_types"], "dataset.feature_types")
        if len(types) > MAX_FEATURES:
            raise _Bad(f"dataset.feature_types has more than {MAX_FEATURES} entries")
        for column, kind in types.items():
            _name(column, "dataset.feature_types")
            if names is not None and column not in names:
                raise _Bad(f"dataset.feature_types names a column that is not a feature ({_shown(column)})")
            if kind not in ("number", "category"):
                raise _Bad(f"dataset.feature_types has a kind other than 'number' or 'category' ({_shown(kind)})")
        out["feature_types"] = dict(types)
    if dataset.get("classes") is not None:
        out["classes"] = [_label(c, "dataset.classes") for c in _list(dataset["classes"], "classes", MAX_CLASSES)]
    return out


def _environment(value: Any) -> dict[str, Any]:
    environment = _dict(value, "environment")
    out: dict[str, Any] = {}
    python = environment.get("python_version")
    if python is not None:
        if not is_version(python):
            raise _Bad(f"environment.python_version is not a version string ({_shown(python)})")
        out["python_version"] = python
    for key, pattern in (("implementation", _WORD), ("machine", _WORD), ("platform", _PLATFORM)):
        found = environment.get(key)
        if found is not None:
            if not isinstance(found, str) or not pattern.fullmatch(found):
                raise _Bad(f"environment.{key} has characters outside {pattern.pattern} ({_shown(found)})")
            out[key] = found
    packages = _dict(environment.get("packages") or {}, "environment.packages")
    if len(packages) > MAX_PACKAGES:
        raise _Bad(f"environment.packages has more than {MAX_PACKAGES} entries")
    out["packages"] = {}
    for package, version in packages.items():
        if not is_package_name(package):
            raise _Bad(f"environment.packages: {_shown(package)} is not a package name")
        if not is_version(version):
            raise _Bad(f"environment.packages[{package!r}] is not a version string ({_shown(version)})")
        out["packages"][package] = version
    return out


def _warnings(value: Any) -> list[str]:
    return [_text(w, "warnings", MAX_WARNING_CHARS, multiline=True) for w in _list(value, "warnings", MAX_WARNINGS)]


def _compression(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
        return value
    if isinstance(value, str) and value in _COMPRESSION_NAMES:
        return value
    raise _Bad(f"compression is not a level 0-9 or one of {', '.join(_COMPRESSION_NAMES)} ({_shown(value)})")


def _timestamp(value: Any) -> str:
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise _Bad(f"created_at is not an ISO 8601 time ({_shown(value)})")
    return value


def _estimator_key(value: Any) -> str:
    if value not in CATALOG:
        raise _Bad(f"estimator_key is not a catalog key ({_shown(value)})")
    return value


_FIELDS = {
    "created_at": _timestamp,
    "compression": _compression,
    "metrics": _metrics,
    "split": _split,
    "dataset": _dataset,
    "environment": _environment,
    "warnings": _warnings,
    "estimator_key": _estimator_key,
    "scale": lambda v: _bool(v, "scale"),
}


def parse_metadata(raw: bytes) -> dict[str, Any]:
    """The fields of a bundle's metadata.json that a record may use, each checked; others dropped.

    Raises FormatError (one line naming the field) when the file is too large, not a JSON object,
    or a known field holds a value outside its schema.
    """
    if len(raw) > MAX_METADATA_BYTES:
        raise FormatError(too_large("metadata.json", len(raw)))
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise FormatError("The bundle's metadata.json is not valid JSON; nothing imported") from exc
    if not isinstance(document, dict):
        raise FormatError("The bundle's metadata.json is not a JSON object; nothing imported")
    out: dict[str, Any] = {}
    try:
        for key, check in _FIELDS.items():
            if document.get(key) is not None:
                out[key] = check(document[key])
    except _Bad as exc:
        raise FormatError(f"The bundle's metadata.json: {exc}; nothing imported") from exc
    return out


def too_large(member: str, size: int) -> str:
    """The one line for a bundle member over the metadata bound."""
    return (
        f"The bundle's {member} is {human_bytes(size)}; at most {human_bytes(MAX_METADATA_BYTES)} is read; "
        "nothing imported"
    )
