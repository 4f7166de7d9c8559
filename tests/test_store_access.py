"""Read-only and busy stores (issue 12): reading works on a store this process may not write (run as
``nobody`` through ``setpriv``, since root ignores permissions), writes fail with one line, and a
writer holding the lock makes others wait at most ``MODELSHELF_BUSY_TIMEOUT_S``."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import Store
from tests.conftest import ROOT

SETPRIV = shutil.which("setpriv")
NOBODY = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"]
#: Lets ``nobody`` read (never write) what it could not reach, e.g. an interpreter under /root.
READ_ANYWHERE = ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]


def _as_nobody_prefix() -> list[str]:
    if SETPRIV is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to run a command as nobody")
    for extra in ([], READ_ANYWHERE):
        prefix = [SETPRIV, *NOBODY, *extra]
        probe = [*prefix, sys.executable, "-c", "import sqlalchemy, sklearn, core.store.facade"]
        done = subprocess.run(probe, cwd=ROOT, capture_output=True)
        if done.returncode == 0:
            return prefix
    pytest.skip("nobody cannot run this interpreter here")


def _run(prefix: list[str], store: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "core", "--store", str(store), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "HOME": "/tmp", **env},
    )


@pytest.fixture
def shared_store() -> Iterator[Path]:
    """A store in a folder everyone may read and only root may write (pytest's tmp_path is root-only)."""
    top = Path(tempfile.mkdtemp(prefix="modelshelf-ro-", dir="/tmp"))
    try:
        top.chmod(0o755)
        store = Store(top / "store")
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression

        X, y = load_iris(return_X_y=True, as_frame=True)
        model = LogisticRegression(max_iter=300).fit(X, y)
        store.save(model, "iris", format="pickle", X_test=X, y_test=y, tags=["kept"])
        store.set_alias("iris:1", "production")
        store.close()
        X.head(5).to_csv(top / "rows.csv", index=False)
        for path in [top, *top.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _snapshot(top: Path) -> dict[str, bytes]:
    return {str(p.relative_to(top)): p.read_bytes() for p in sorted(top.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("writer_open", [False, True], ids=["closed", "writer-open"])
def test_a_store_nobody_may_write_is_read_and_refuses_writes_in_one_line(shared_store: Path, writer_open: bool):
    prefix = _as_nobody_prefix()
    store = shared_store / "store"
    holder = None
    if writer_open:  # the owner still has it open: -wal and -shm exist, so SQLite reads it mode=ro
        holder = sqlite3.connect(store / "index.sqlite")
        holder.execute("SELECT count(*) FROM versions").fetchone()
        (store / "index.sqlite-shm").chmod(0o644)
        (store / "index.sqlite-wal").chmod(0o644)
    try:
        before = _snapshot(shared_store)
        listed = _run(prefix, store, "list")
        assert listed.returncode == 0, listed.stderr
        assert "iris:1" in listed.stdout and "@production" in listed.stdout
        assert ("read-only snapshot" in listed.stdout) is (not writer_open)
        shown = _run(prefix, store, "show", "iris@production")
        assert shown.returncode == 0 and "iris:1" in shown.stdout, shown.stderr
        scored = _run(prefix, store, "evaluate", "iris:1")
        assert scored.returncode == 0 and "reproduced" in scored.stdout, scored.stderr
        predicted = _run(prefix, store, "predict", "iris:1", "--data", str(shared_store / "rows.csv"))
        assert predicted.returncode == 0 and len(predicted.stdout.strip().splitlines()) >= 5, predicted.stderr
        for args in (["tag", "iris:1", "new"], ["note", "iris:1", "x"], ["alias", "iris:1", "b"], ["delete", "iris:1"]):
            refused = _run(prefix, store, *args)
            assert refused.returncode == 1, args
            assert refused.stderr.strip().splitlines() == [f"error: the store at {store} is read-only"], args
        trained = _run(prefix, store, "train", "--data", "builtin:iris", "--estimator", "naive_bayes", "--name", "n")
        assert trained.returncode == 1 and trained.stderr.strip() == f"error: the store at {store} is read-only"
        doctor = _run(prefix, store, "doctor", "--json", "--store-only")
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert '"read_only": true' in doctor.stdout
        after = _snapshot(shared_store)
        if writer_open:  # SQLite may touch its shared-memory file; the store's own files never change
            before = {k: v for k, v in before.items() if not k.endswith("-shm")}
            after = {k: v for k, v in after.items() if not k.endswith("-shm")}
        assert after == before
    finally:
        if holder is not None:
            holder.close()


def test_a_busy_store_makes_writers_wait_at_most_the_busy_timeout_and_readers_not_at_all(store, store_path):
    from sklearn.dummy import DummyClassifier

    store.save(DummyClassifier().fit([[0], [1]], [0, 1]), "m", format="pickle")
    store.close()
    holder = sqlite3.connect(store_path / "index.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write transaction, held
    try:
        env = {**os.environ, "MODELSHELF_BUSY_TIMEOUT_S": "1"}
        started = time.monotonic()
        listed = subprocess.run(
            [sys.executable, "-m", "core", "--store", str(store_path), "list"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert listed.returncode == 0 and "m:1" in listed.stdout, listed.stderr
        started = time.monotonic()
        tagged = subprocess.run(
            [sys.executable, "-m", "core", "--store", str(store_path), "tag", "m:1", "t"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        waited = time.monotonic() - started
        assert tagged.returncode == 1
        assert tagged.stderr.strip().splitlines() == [
            f"error: the store at {store_path} is busy (another process is writing); try again"
        ]
        assert 1.0 <= waited < 30, waited
    finally:
        holder.rollback()
        holder.close()
    again = Store(store_path)
    try:
        assert again.get("m:1")["tags"] == []
        again.add_tag("m:1", "t")  # once the lock is gone, the write goes through
        assert again.get("m:1")["tags"] == ["t"]
    finally:
        again.close()


DASHBOARD = """
import json
from streamlit.testing.v1 import AppTest

at = AppTest.from_file("streamlit_app.py", default_timeout=120).run()
at.switch_page("app_pages/models.py").run()
print(json.dumps({
    "exceptions": [e.value for e in at.exception],
    "errors": [e.value for e in at.error],
    "sidebar": [c.value for c in at.sidebar.caption],
    "versions": [m.value for m in at.sidebar.metric],
    "tables": [t.value.to_json() for t in at.dataframe],
}))
"""


def test_the_dashboard_reads_a_store_nobody_may_write_and_says_it_is_read_only(shared_store: Path):
    prefix = _as_nobody_prefix()
    store = shared_store / "store"
    before = _snapshot(shared_store)
    done = subprocess.run(
        [*prefix, sys.executable, "-c", DASHBOARD],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "HOME": "/tmp", "MODEL_STORE": str(store)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["exceptions"] == [] and seen["errors"] == [], seen
    assert any(c.startswith(("Read-only:", "Read-only snapshot:")) for c in seen["sidebar"]), seen["sidebar"]
    assert seen["versions"] == ["1"] and any("iris" in t for t in seen["tables"]), seen
    assert _snapshot(shared_store) == before
