"""Pinned requirements of a version: what to ``pip install`` to load it as it was saved.

The record keeps the versions of the packages that decide whether a model loads (see
``core.environment.RECORDED_PACKAGES``); this turns them into ``requirements.txt`` lines and into
the short ``pip install`` line each download format needs, and sets them against the running
environment (``core.environment.compare_environment``) for ``python -m core env REF``.
"""

from __future__ import annotations

import re
from typing import Any

from core.environment import RECORDED_PACKAGES, compare_environment, package_version
from core.record import VersionRecord, environment_of

#: A version as pip pins it (PEP 440's public form plus a local part), matched whole: never a
#: newline, a space or a second requirement. Records from forged bundles are checked with it at
#: import, and every pin is checked again when it is written.
_VERSION = re.compile(
    r"(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?"
    r"(?:\+[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*)?"
)
_PACKAGE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?")


def is_version(value: object) -> bool:
    """True for a plain version string (``1.8.0``, ``2.0.0rc1``, ``1.4.2+cpu``), at most 64 characters."""
    return isinstance(value, str) and len(value) <= 64 and _VERSION.fullmatch(value) is not None


def is_package_name(value: object) -> bool:
    """True for a distribution name as pip spells it (letters, digits, ``.``, ``_``, ``-``)."""
    return isinstance(value, str) and _PACKAGE.fullmatch(value) is not None


def _comment(value: object, fallback: str) -> str:
    """Text for a ``#`` comment: kept only when it is one line of plain characters."""
    text = str(value) if value is not None else ""
    return text if re.fullmatch(r"[A-Za-z0-9._+,;:()@/ -]{1,200}", text) else fallback


#: The packages each download format needs at load time (besides Python itself).
FORMAT_PACKAGES: dict[str, tuple[str, ...]] = {
    "pickle": ("scikit-learn", "numpy", "scipy", "pandas"),
    "joblib": ("scikit-learn", "numpy", "scipy", "joblib", "pandas"),
    "skops": ("scikit-learn", "numpy", "scipy", "skops", "pandas"),
    "onnx": ("onnxruntime", "numpy", "pandas"),
    "json": ("numpy", "pandas"),
    "bundle": ("scikit-learn", "numpy", "scipy", "joblib", "pandas", "pyarrow"),
}


def _saved_packages(record: VersionRecord) -> dict[str, str]:
    """The recorded packages whose name and version are valid (anything else is left out, never pasted)."""
    packages = environment_of(record).get("packages")
    if not isinstance(packages, dict):
        return {}
    return {p: v for p, v in packages.items() if is_package_name(p) and is_version(v)}


def pin(record: VersionRecord, package: str) -> str:
    """``package==version`` as saved with the version; the running version when it was not recorded."""
    version = _saved_packages(record).get(package) or package_version(package)
    return f"{package}=={version}" if is_version(version) else package


def pip_install_line(record: VersionRecord, fmt: str) -> str:
    """The one ``pip install`` line the downloaded file in ``fmt`` needs."""
    packages = FORMAT_PACKAGES.get(fmt, FORMAT_PACKAGES["joblib"])
    if fmt == "bundle" and record.get("format") == "skops":
        packages = (*packages, "skops")
    return "pip install " + " ".join(pin(record, p) for p in packages)


def requirements_txt(record: VersionRecord) -> str:
    """``requirements.txt`` pinning every package recorded with the version (Python as a comment)."""
    environment = environment_of(record)
    saved = _saved_packages(record)
    ordered = [p for p in RECORDED_PACKAGES if p in saved] + sorted(set(saved) - set(RECORDED_PACKAGES))
    python = environment.get("python_version")
    lines = [
        f"# {_comment(record.get('name'), 'this model')}:{_comment(record.get('version'), '?')} was saved with "
        f"Python {python if is_version(python) else 'unknown'} on "
        f"{_comment(environment.get('platform'), 'an unknown platform')}",
        "# Re-create that environment: python -m venv .venv && .venv/bin/pip install -r requirements.txt",
    ]
    lines += [f"{p}=={saved[p]}" for p in ordered]
    if "pyarrow" not in saved and record.get("evaluation_set"):
        lines.append(pin(record, "pyarrow") + "  # reads evaluation.parquet (not recorded: the running version)")
    return "\n".join(lines) + "\n"


def environment_report(record: VersionRecord) -> dict[str, Any]:
    """Pinned requirements plus, package by package, how the running environment differs."""
    compatibility = compare_environment(dict(environment_of(record)))
    return {
        "ref": f"{record.get('name')}:{record.get('version')}",
        "python": environment_of(record).get("python_version"),
        "requirements": requirements_txt(record),
        "compatibility": compatibility.to_dict(),
        "summary": compatibility.summary(),
        "status": compatibility.status,
    }
