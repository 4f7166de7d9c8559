"""Pinned requirements of a version: what to ``pip install`` to load it as it was saved.

The record keeps the versions of the packages that decide whether a model loads (see
``core.environment.RECORDED_PACKAGES``); this turns them into ``requirements.txt`` lines and into
the short ``pip install`` line each download format needs, and sets them against the running
environment (``core.environment.compare_environment``) for ``python -m core env REF``.
"""

from __future__ import annotations

from typing import Any

from core.environment import RECORDED_PACKAGES, compare_environment, package_version

#: The packages each download format needs at load time (besides Python itself).
FORMAT_PACKAGES: dict[str, tuple[str, ...]] = {
    "pickle": ("scikit-learn", "numpy", "scipy", "pandas"),
    "joblib": ("scikit-learn", "numpy", "scipy", "joblib", "pandas"),
    "skops": ("scikit-learn", "numpy", "scipy", "skops", "pandas"),
    "onnx": ("onnxruntime", "numpy", "pandas"),
    "json": ("numpy", "pandas"),
    "bundle": ("scikit-learn", "numpy", "scipy", "joblib", "pandas", "pyarrow"),
}


def _saved_packages(record: dict[str, Any]) -> dict[str, str]:
    return dict(((record.get("environment") or {}).get("packages")) or {})


def pin(record: dict[str, Any], package: str) -> str:
    """``package==version`` as saved with the version; the running version when it was not recorded."""
    version = _saved_packages(record).get(package) or package_version(package)
    return f"{package}=={version}" if version else package


def pip_install_line(record: dict[str, Any], fmt: str) -> str:
    """The one ``pip install`` line the downloaded file in ``fmt`` needs."""
    packages = FORMAT_PACKAGES.get(fmt, FORMAT_PACKAGES["joblib"])
    if fmt == "bundle" and record.get("format") == "skops":
        packages = (*packages, "skops")
    return "pip install " + " ".join(pin(record, p) for p in packages)


def requirements_txt(record: dict[str, Any]) -> str:
    """``requirements.txt`` pinning every package recorded with the version (Python as a comment)."""
    environment = record.get("environment") or {}
    saved = _saved_packages(record)
    ordered = [p for p in RECORDED_PACKAGES if p in saved] + sorted(set(saved) - set(RECORDED_PACKAGES))
    lines = [
        f"# {record.get('name')}:{record.get('version')} was saved with Python "
        f"{environment.get('python_version', 'unknown')} on {environment.get('platform', 'an unknown platform')}",
        "# Re-create that environment: python -m venv .venv && .venv/bin/pip install -r requirements.txt",
    ]
    lines += [f"{p}=={saved[p]}" for p in ordered]
    if "pyarrow" not in saved and record.get("evaluation_set"):
        lines.append(pin(record, "pyarrow") + "  # reads evaluation.parquet (not recorded: the running version)")
    return "\n".join(lines) + "\n"


def environment_report(record: dict[str, Any]) -> dict[str, Any]:
    """Pinned requirements plus, package by package, how the running environment differs."""
    compatibility = compare_environment(record.get("environment"))
    return {
        "ref": f"{record.get('name')}:{record.get('version')}",
        "python": (record.get("environment") or {}).get("python_version"),
        "requirements": requirements_txt(record),
        "compatibility": compatibility.to_dict(),
        "summary": compatibility.summary(),
        "status": compatibility.status,
    }
