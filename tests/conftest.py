"""Shared fixtures: the tutorial's data set (the copy shipped as ``builtin:pima``) and fresh stores."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MODELSHELF_SHARED", ROOT.parent / "shared"))
#: The reference copy the shipped one is checked against (tests/test_shipped_data.py), byte for byte.
PIMA_REFERENCE = SHARED / "datasets" / "pima-indians-diabetes.data.csv"
#: The copy inside the package: every test that needs the Pima CSV runs, on any machine.
PIMA = ROOT / "core" / "data" / "pima-indians-diabetes.csv"
PIMA_NAMES = "preg,plas,pres,skin,test,mass,pedi,age,class"
TUTORIAL_ACCURACY = 0.7559055118110236
DEFAULT_SOLVER_ACCURACY = 0.7874015748031497


@pytest.fixture(scope="session")
def pima_path() -> Path:
    """The shipped Pima CSV (no header row)."""
    return PIMA


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(store_path: Path):
    from core import Store

    s = Store(store_path)
    yield s
    s.close()


# The remote back ends (PostgreSQL, an S3 server) for the tests marked ``remote``.
from tests.backends import postgres_server, postgres_url, s3_bucket, s3_server  # noqa: E402, F401


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted for the test (we run as root in CI); skipped where mounting is refused."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
