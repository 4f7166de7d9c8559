"""``python -m core index rebuild`` (issue 12): a lost or damaged index made again from the marker and
every ``version.json``, with nothing lost: tags, notes, aliases, owners and next numbers included."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.dummy import DummyClassifier

from core import Store
from core.errors import ConflictError
from core.store.layout import VERSION_FILE
from core.store.rebuild import rebuild_index
from tests.conftest import ROOT


def _cli(store_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core", "--store", str(store_path), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def _everything(store: Store) -> dict[str, dict]:
    return {f"{r['name']}:{r['version']}": r for r in store.list()}


@pytest.fixture
def filled(store_path: Path) -> dict[str, dict]:
    model = DummyClassifier().fit([[0.0, 1.0], [1.0, 0.0]], [0, 1])
    store = Store(store_path)
    try:
        store.save(model, "pima", format="pickle", X_test=[[0.0, 1.0], [1.0, 0.0]], y_test=[0, 1], note="first")
        store.save(model, "pima", format="joblib", tags=["candidate", "b"])
        store.save(model, "pima", format="pickle")
        store.delete("pima:3")  # the high-water mark (3) is above every surviving version
        store.set_alias("pima:1", "production")
        store.set_alias("pima:2", "production")  # moved: pima:1's file is rewritten too
        store.set_alias("pima:1", "legacy")
        store.set_note("pima:2", "the better one")
        store.merge_exports("pima:2", {"onnx": {"status": "refused", "reason": "test"}})
        store.save(model, "visitor-model", format="pickle", owner="alice")
        store.save(model, "gone", format="pickle")
        store.delete("gone:1")
        return _everything(store)
    finally:
        store.close()


def _lose(store_path: Path, how: str) -> None:
    index = store_path / "index.sqlite"
    if how == "deleted":
        for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
            (store_path / name).unlink(missing_ok=True)
    elif how == "emptied":
        (store_path / "index.sqlite-wal").unlink(missing_ok=True)
        index.write_bytes(b"")
    else:
        (store_path / "index.sqlite-wal").unlink(missing_ok=True)
        index.write_bytes(os.urandom(4096))


@pytest.mark.parametrize("how", ["deleted", "emptied", "garbage"])
def test_a_lost_index_is_rebuilt_with_nothing_lost(store_path, filled, how):
    _lose(store_path, how)
    assert _cli(store_path, "list").returncode == 1
    done = _cli(store_path, "index", "rebuild", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["versions"] == len(filled) == 3 and report["skipped"] == []
    if how == "deleted":
        assert report["moved_aside"] is None
    else:  # the damaged file is kept, moved aside, never deleted
        assert Path(report["moved_aside"]).exists() and ".damaged-" in report["moved_aside"]
    store = Store(store_path)
    try:
        assert _everything(store) == filled  # every record, tag, note and alias, paths and hashes
        assert store.get("pima@production")["version"] == 2 and store.get("pima@legacy")["version"] == 1
        assert store.index.name_owner("visitor-model") == (True, "alice")
        assert store.index.name_owner("gone") == (True, None)
        model = DummyClassifier().fit([[0.0], [1.0]], [0, 1])
        assert store.save(model, "pima", format="pickle")["version"] == 4  # 3 was handed out before
        assert store.save(model, "gone", format="pickle")["version"] == 2
        assert store.evaluate("pima:1").reproduced is True
    finally:
        store.close()
    doctor = _cli(store_path, "doctor", "--store-only")
    assert doctor.returncode == 0, doctor.stdout


def test_a_healthy_index_is_left_alone_unless_forced(store_path, filled):
    done = _cli(store_path, "index", "rebuild")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: the index of {store_path} is healthy: nothing to rebuild (--force rebuilds it from the files anyway)"
    ]
    forced = _cli(store_path, "index", "rebuild", "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith(f"Rebuilt the index of {store_path}: 3 version(s) of 2 name(s)")
    assert len(list(store_path.glob("index.sqlite.damaged-*"))) == 1  # the healthy one kept, aside
    store = Store(store_path)
    try:
        assert _everything(store) == filled
    finally:
        store.close()


def test_a_number_claimed_twice_keeps_the_save_that_committed(store_path, filled):
    """A save killed after writing its metadata but before its commit; the next save took its number."""
    store = Store(store_path)
    real = store.row("pima:2")
    store.close()
    folder = store_path / Path(real.path).parent
    leftover = store_path / "pima" / ("c" * 32)
    shutil.copytree(folder, leftover)
    doc = json.loads((leftover / VERSION_FILE).read_text())
    doc |= {"created_at": "2000-01-01T00:00:00.000000+00:00", "path": f"pima/{'c' * 32}/model.joblib", "note": "lost"}
    (leftover / VERSION_FILE).write_text(json.dumps(doc))
    _lose(store_path, "deleted")
    report = rebuild_index(str(store_path))
    assert [s.split(":")[0] for s in report["skipped"]] == [f"pima/{'c' * 32}"]
    store = Store(store_path)
    try:
        assert store.row("pima:2").path == real.path and store.get("pima:2")["note"] == "the better one"
    finally:
        store.close()
    with pytest.raises(ConflictError, match="is healthy"):
        rebuild_index(str(store_path))
