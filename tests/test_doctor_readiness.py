"""``python -m core doctor`` on a store this release cannot fully use: unreachable, newer or older schema.

Each is one problem line of its own kind; a newer schema stops the check there (this release
cannot know what its rows mean), and checking changes nothing stored.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from core.store.checkup import check_store
from core.store.schema import SCHEMA_VERSION
from tests.backends import free_port
from tests.conftest import ROOT
from tests.reliability.test_upgrade import BEFORE, RELEASE_STORE
from tests.reliability.worker import tiny_model


def _digest(folder: Path) -> str:
    """Every file's path and bytes under ``folder``: equal before and after means nothing was changed."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def _doctor_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core", *argv, "doctor", "--store-only"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_newer_schema_is_refused_in_one_line_and_nothing_is_changed(tmp_path: Path) -> None:
    from core import Store

    store_path = tmp_path / "store"
    store = Store(store_path)
    model, X, y = tiny_model()
    store.save(model, "pima", X_test=X, y_test=y)
    store.close()
    with closing(sqlite3.connect(store_path / "index.sqlite")) as conn, conn:
        conn.execute("UPDATE store_info SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION + 1),))
    before = _digest(store_path)
    checkup = check_store(str(store_path), repair=True)
    assert [p.kind for p in checkup.problems] == ["schema_newer"]
    assert f"schema {SCHEMA_VERSION + 1}" in checkup.problems[0].detail and checkup.versions == 0
    done = _doctor_cli("--store", str(store_path))
    assert done.returncode == 1
    assert [line.split()[1] for line in done.stdout.splitlines() if line.startswith("  problem")] == ["schema_newer"]
    listed = subprocess.run(
        [sys.executable, "-m", "core", "--store", str(store_path), "list"], cwd=ROOT, capture_output=True, text=True
    )  # any other command refuses the store in one line
    assert listed.returncode == 1 and listed.stderr.count("\n") == 1 and "newer ModelShelf" in listed.stderr
    assert _digest(store_path) == before


def test_an_older_schema_is_reported_beside_what_else_is_found(tmp_path: Path) -> None:
    store_path = tmp_path / "store"
    shutil.copytree(RELEASE_STORE, store_path)
    before = _digest(store_path)
    checkup = check_store(str(store_path))
    kinds = [p.kind for p in checkup.problems]
    assert kinds.count("schema_older") == 1 and checkup.versions == len(BEFORE)  # the versions are still checked
    assert "row_without_file" not in kinds
    assert _digest(store_path) == before


def test_an_unreachable_index_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    url = f"postgresql+psycopg://shelf:pw-secret-123@127.0.0.1:{free_port()}/shelf"
    checkup = check_store("remote", index_url=url, artifacts_url=str(tmp_path / "files"))
    assert [p.kind for p in checkup.problems] == ["unreachable"]
    assert "pw-secret-123" not in checkup.problems[0].detail
    done = _doctor_cli("--index-url", url, "--artifacts-url", str(tmp_path / "files"))
    problems = [line for line in done.stdout.splitlines() if line.startswith("  problem")]
    assert done.returncode == 1 and len(problems) == 1 and "unreachable" in problems[0], done.stdout + done.stderr
    assert "pw-secret-123" not in done.stdout + done.stderr
