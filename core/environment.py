"""The environment a model was saved in, and how the running one differs from it.

The tutorial's advice: note the Python and library versions, since a pickle almost certainly
needs the same ones to load. Each difference gets a severity, so a reload can say "fine",
"check this" or "expect trouble" instead of leaving the user to guess.
"""

from __future__ import annotations

import platform
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

Severity = Literal["ok", "warning", "error"]

#: Distributions recorded with every model. The first group decides whether a pickle loads.
CRITICAL_PACKAGES = ("scikit-learn", "numpy", "scipy")
RECORDED_PACKAGES = (
    *CRITICAL_PACKAGES,
    "joblib",
    "pandas",
    "skops",
    "threadpoolctl",
    "onnx",
    "skl2onnx",
    "onnxruntime",
)
_ORDER = {"ok": 0, "warning": 1, "error": 2}


def package_version(name: str) -> str | None:
    from importlib import metadata  # deferred: 13 ms of imports that `list` and `show` never need

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def _current() -> tuple[tuple[str, str], ...]:
    return tuple((name, v) for name in RECORDED_PACKAGES if (v := package_version(name)) is not None)


def capture_environment() -> dict[str, Any]:
    """``{python_version, platform, packages}`` of the running interpreter (cheap: cached)."""
    return {
        "python_version": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "packages": dict(_current()),
    }


def _parts(version: str) -> tuple[int, ...]:
    numbers: list[int] = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece else ""
        if not digits or not piece[0].isdigit():
            break
        numbers.append(int(digits))
    return tuple(numbers)


def version_severity(package: str, saved: str | None, current: str | None) -> Severity:
    """How much a version change is likely to matter when loading a pickled model."""
    if saved == current:
        return "ok"
    critical = package in ("python", *CRITICAL_PACKAGES)
    if saved is None or current is None:
        return "error" if critical and current is None else "warning"
    s, c = _parts(saved), _parts(current)
    if s[:1] != c[:1]:
        return "error" if critical else "warning"
    if s[:2] != c[:2]:
        return "warning" if critical else "ok"
    return "ok"


@dataclass
class Difference:
    package: str
    saved: str | None
    current: str | None
    severity: Severity

    def to_dict(self) -> dict[str, Any]:
        return {"package": self.package, "saved": self.saved, "current": self.current, "severity": self.severity}


@dataclass
class Compatibility:
    """The saved environment set against the running one: ``status`` is the worst difference."""

    status: Severity
    differences: list[Difference] = field(default_factory=list)
    rows: list[Difference] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "differences": [d.to_dict() for d in self.differences],
            "packages": [r.to_dict() for r in self.rows],
        }

    def summary(self) -> str:
        if not self.differences:
            return "Environment matches the one the model was saved in."
        return "; ".join(
            f"{d.package} {d.saved or 'absent'} -> {d.current or 'absent'} ({d.severity})" for d in self.differences
        )


def compare_environment(saved: Mapping[str, Any] | None, current: Mapping[str, Any] | None = None) -> Compatibility:
    """Every recorded package (and Python) with saved vs current version and a severity."""
    saved = saved or {}
    current = current or capture_environment()
    rows: list[Difference] = []
    saved_py, current_py = saved.get("python_version"), current.get("python_version")
    rows.append(Difference("python", saved_py, current_py, version_severity("python", saved_py, current_py)))
    saved_pkgs = saved.get("packages", {}) or {}
    current_pkgs = current.get("packages", {}) or {}
    for name in [*RECORDED_PACKAGES, *sorted(set(saved_pkgs) - set(RECORDED_PACKAGES))]:
        if name not in saved_pkgs:
            continue
        s, c = saved_pkgs.get(name), current_pkgs.get(name)
        rows.append(Difference(name, s, c, version_severity(name, s, c)))
    differences = [r for r in rows if r.saved != r.current]
    status: Severity = max((r.severity for r in rows), key=_ORDER.__getitem__, default="ok")
    return Compatibility(status=status, differences=differences, rows=rows)


def fold_version_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """Fold scikit-learn's InconsistentVersionWarning flood (one per tree) into one line.

    Other warnings pass through once each, as ``Category: message``.
    """
    # Deferred: scikit-learn; list and show import this module and read only the index.
    from sklearn.exceptions import InconsistentVersionWarning

    folded: dict[tuple[str, str], list[str]] = {}
    lines: list[str] = []
    for w in caught:
        if issubclass(w.category, InconsistentVersionWarning):
            message = w.message
            key = (
                str(getattr(message, "original_sklearn_version", "?")),
                str(getattr(message, "current_sklearn_version", "?")),
            )
            folded.setdefault(key, []).append(str(getattr(message, "estimator_name", "?")))
            continue
        line = f"{w.category.__name__}: {' '.join(str(w.message).split())}"
        if line not in lines:
            lines.append(line)
    for (saved, current), names in folded.items():
        lines.insert(
            0,
            f"InconsistentVersionWarning: saved with scikit-learn {saved}, loaded with {current} "
            f"({len(names)} objects: {', '.join(sorted(set(names)))}); predictions may differ.",
        )
    return lines
