"""A store made by the release before issue 12 (``fixtures/release_store``: ``NAME/vN/`` folders, no
marker, no per-version metadata files) opens as it is and upgrades in place on its first write.

The fixture was written by that release's own code: pima:1 (aliased production, tagged baseline,
noted "first", with its evaluation set), pima:2 (tagged candidate, noted), pima:3 saved then
deleted, iris:1.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.support import doctor, file_sha256

pytestmark = pytest.mark.reliability

RELEASE_STORE = Path(__file__).parent / "fixtures" / "release_store"
BEFORE = {
    "pima:1": (["baseline"], "first", ["production"]),
    "pima:2": (["candidate"], "second, kept", []),
    "iris:1": ([], "", []),
}


def _state(store: Any) -> dict[str, Any]:
    return {f"{r['name']}:{r['version']}": (sorted(r["tags"]), r["note"], sorted(r["aliases"])) for r in store.list()}


def test_a_release_store_opens_and_upgrades_on_its_first_write(tmp_path: Path, model: Any) -> None:
    from core.store import Store

    store_path = tmp_path / "store"
    shutil.copytree(RELEASE_STORE, store_path)
    old_files = {p.relative_to(store_path): file_sha256(p) for p in store_path.rglob("model.joblib")}
    store = Store(store_path)
    try:
        assert _state(store) == BEFORE  # readable as it is
        assert store.evaluate("pima@production").reproduced  # its evaluation set still scores it
        record = store.save(model[0], "pima")  # the first write upgrades
        assert record["version"] == 3  # the release kept no trace of the deleted pima:3
        assert "/v" not in record["path"]  # a new version gets a folder no other can share
        assert store.load("pima:1", verify="full").ref == "pima:1"  # hash checked, then unpickled
    finally:
        store.close()
    assert (store_path / "modelshelf-store.json").is_file()
    assert len(list(store_path.glob("*/*/version.json"))) == 4
    after = {p.relative_to(store_path): file_sha256(p) for p in store_path.rglob("model.joblib")}
    assert {p: after.get(p) for p in old_files} == old_files  # the old versions' files, untouched
    assert doctor(store_path)[0] == 0
    # The upgraded store's metadata files are enough to rebuild it.
    (store_path / "index.sqlite").unlink()
    from tests.reliability.test_faults import cli

    assert cli(store_path, "index", "rebuild").returncode == 0
    store = Store(store_path)
    try:
        state = _state(store)
        assert {ref: state[ref] for ref in BEFORE} == BEFORE and "pima:3" in state
        assert store.save(model[0], "pima")["version"] == 4
    finally:
        store.close()
