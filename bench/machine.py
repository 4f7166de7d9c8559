"""What the benchmark ran on: CPU, cores, memory, Python, OS and the package versions."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from core.environment import package_version

PACKAGES = (
    "scikit-learn",
    "numpy",
    "scipy",
    "joblib",
    "pandas",
    "pyarrow",
    "SQLAlchemy",
    "fsspec",
    "skops",
    "skl2onnx",
    "onnxruntime",
    "streamlit",
    "plotly",
    "mlflow-skinny",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def describe_machine() -> dict[str, Any]:
    """The machine as the report shows it (read at run time, never typed in)."""
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
        "load_average": load,
    }


def package_versions() -> dict[str, str | None]:
    return {name: package_version(name) for name in PACKAGES}


def cached_bytecode_env() -> dict[str, str]:
    """The environment for the Python processes the benchmark times: as inherited, with bytecode
    caching on, as an installed Python has it (pip compiles what it installs; a checkout writes
    its caches on its first run). With ``PYTHONDONTWRITEBYTECODE`` set where the benchmark runs,
    every process would compile ModelShelf's modules afresh, which no installation does."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
