"""Injected faults: a damaged index, leftovers, a changed or missing file, a lost marker, a full disk.

Each fault is made on purpose in a small store and must be reported by doctor (exit 1, with its
problem kind), refused cleanly by the next write (one line, nothing stored changed) and repaired
where repair is safe (``doctor --repair``, ``index rebuild``), after which doctor exits 0 and every
version, tag, note, alias and next number is what it was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.reliability.support import age, cli_doctor, doctor, file_sha256, kinds

pytestmark = pytest.mark.reliability

INDEX = "index.sqlite"
TWO_HOURS_S = 2 * 3600


def make_store(store_path: Path, model: Any) -> dict[str, Any]:
    """pima:1 (aliased, tagged, noted, with its evaluation set), pima:2 (tagged), pima:3 (deleted) and
    iris:1; returns what must survive any repair: each version's state and the next number of each name."""
    from core.store import Store

    fitted, X_test, y_test = model
    store = Store(store_path)
    try:
        store.save(fitted, "pima", X_test=X_test, y_test=y_test, tags=["baseline"], note="first")
        store.save(fitted, "pima", tags=["candidate"])
        store.save(fitted, "pima")
        store.delete("pima:3")
        store.set_alias("pima:1", "production")
        store.save(fitted, "iris", note="other")
        return state_of(store_path)
    finally:
        store.close()


def state_of(store_path: Path) -> dict[str, Any]:
    from core.store import Store

    store = Store(store_path)
    try:
        return {
            f"{r['name']}:{r['version']}": (r["sha256"], sorted(r["tags"]), r["note"], sorted(r["aliases"]), r["path"])
            for r in store.list()
        }
    finally:
        store.close()


def files_of(store_path: Path) -> dict[str, str]:
    """Every file under the store but the index's, with its sha256: what a refused write must not change."""
    return {
        str(path.relative_to(store_path)): file_sha256(path)
        for path in sorted(store_path.rglob("*"))
        if path.is_file() and not path.name.startswith(INDEX)
    }


def cli(store_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core", "--store", str(store_path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single line of a refusal (exit 1, no traceback)."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, f"exit {done.returncode}: {done.stderr}"
    return lines[0]


def next_number(store_path: Path, model: Any, name: str = "pima") -> int:
    from core.store import Store

    store = Store(store_path)
    try:
        return int(store.save(model[0], name)["version"])
    finally:
        store.close()


def assert_refuses_to_save(store_path: Path, model: Any) -> str:
    """A save is refused with one of ModelShelf's errors, in one line, and no stored file changes."""
    from core.errors import ModelShelfError
    from core.store import Store

    before = files_of(store_path)
    with pytest.raises(ModelShelfError) as refused:
        store = Store(store_path)
        try:
            store.save(model[0], "pima")
        finally:
            store.close()
    assert "\n" not in str(refused.value)
    assert files_of(store_path) == before
    return str(refused.value)


# -- a damaged index ------------------------------------------------------------------------------


def _delete(index: Path) -> None:
    index.unlink()


def _empty(index: Path) -> None:
    index.write_bytes(b"")


def _half(index: Path) -> None:
    data = index.read_bytes()
    index.write_bytes(data[: len(data) // 2])


def _garbage(index: Path) -> None:
    index.write_bytes(b"this is not a database\n" * 400)


def _directory(index: Path) -> None:
    index.unlink()
    index.mkdir()


@pytest.mark.parametrize("damage", [_delete, _empty, _half, _garbage, _directory], ids=lambda f: f.__name__[1:])
def test_a_damaged_index_is_reported_refused_and_rebuilt(tmp_path: Path, model: Any, damage: Any) -> None:
    store_path = tmp_path / "store"
    before = make_store(store_path, model)
    damage(store_path / INDEX)
    code, report = doctor(store_path)
    assert code == 1 and kinds(report) == {"index_missing": 1}, report
    assert_refuses_to_save(store_path, model)
    assert "index" in one_line(cli(store_path, "list"))
    rebuilt = cli(store_path, "index", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert state_of(store_path) == before  # versions, tags, notes and aliases
    assert doctor(store_path)[0] == 0
    assert next_number(store_path, model) == 4  # pima:3 was deleted: its number never comes back
    assert next_number(store_path, model, "iris") == 2


# -- leftovers: reported, and removed by --repair ---------------------------------------------------


def test_a_stale_temporary_file_is_reported_and_repaired(tmp_path: Path, model: Any) -> None:
    store_path = tmp_path / "store"
    before = make_store(store_path, model)
    folder = (store_path / before["pima:1"][4]).parent
    stale = folder / ".model.joblib.0123456789ab.part"
    stale.write_bytes(b"x" * 1000)
    fresh = folder / ".version.json.ba9876543210.part"  # another process may be writing it right now
    fresh.write_bytes(b"{}")
    age(stale, TWO_HOURS_S)
    code, report = cli_doctor(store_path)
    assert code == 1 and kinds(report) == {"stale_temp": 1}, report
    assert report["problems"][0]["path"] == str(stale.relative_to(store_path))
    assert [p["path"] for p in report["pending"]] == [str(fresh.relative_to(store_path))]
    code, report = doctor(store_path, repair=True)
    assert not stale.exists() and fresh.exists() and report["repaired"], report
    assert doctor(store_path)[0] == 0 and state_of(store_path) == before


def test_a_version_folder_without_a_row_is_reported_and_repaired(tmp_path: Path, model: Any) -> None:
    import shutil

    store_path = tmp_path / "store"
    before = make_store(store_path, model)
    source = (store_path / before["pima:2"][4]).parent
    orphan = source.parent / ("0" * 32)  # a save killed after writing its files, before its commit
    shutil.copytree(source, orphan)
    (orphan / "version.json").unlink()
    age(orphan, TWO_HOURS_S)
    code, report = doctor(store_path)
    assert code == 1 and kinds(report) == {"files_without_row": 1}, report
    assert report["problems"][0]["path"] == str(orphan.relative_to(store_path))
    doctor(store_path, repair=True)
    assert not orphan.exists() and source.exists()
    assert doctor(store_path)[0] == 0 and state_of(store_path) == before


# -- damage that repair must not hide: reported every time ---------------------------------------------


def test_a_missing_model_file_is_a_row_without_file(tmp_path: Path, model: Any) -> None:
    store_path = tmp_path / "store"
    before = make_store(store_path, model)
    (store_path / before["pima:2"][4]).unlink()
    code, report = doctor(store_path, repair=True)
    assert code == 1 and kinds(report) == {"row_without_file": 1}, report
    assert report["problems"][0]["ref"] == "pima:2"
    assert doctor(store_path)[0] == 1  # not "repaired" away: the version is lost, and said so


def test_a_model_file_of_another_size_is_a_size_mismatch(tmp_path: Path, model: Any) -> None:
    store_path = tmp_path / "store"
    before = make_store(store_path, model)
    with (store_path / before["pima:1"][4]).open("ab") as handle:
        handle.write(b"\0")
    code, report = doctor(store_path)
    assert code == 1 and kinds(report) == {"size_mismatch": 1}, report
    assert report["problems"][0]["ref"] == "pima:1"
    assert report["problems"][0]["path"] == before["pima:1"][4]


def test_a_flipped_byte_is_found_only_by_verify(tmp_path: Path, model: Any) -> None:
    store_path = tmp_path / "store"
    before = make_store(store_path, model)
    model_file = store_path / before["iris:1"][4]
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    assert doctor(store_path)[0] == 0  # sizes only: the same size
    code, report = doctor(store_path, verify=True)
    assert code == 1 and kinds(report) == {"hash_mismatch": 1}, report
    assert report["problems"][0]["ref"] == "iris:1"
    from core.errors import IntegrityError
    from core.store import Store

    store = Store(store_path)
    try:
        with pytest.raises(IntegrityError, match="iris:1 failed its integrity check"):  # before unpickling
            store.load("iris:1", verify="full")
    finally:
        store.close()


def test_a_removed_marker_is_reported_and_rewritten(tmp_path: Path, model: Any) -> None:
    store_path = tmp_path / "store"
    before = make_store(store_path, model)
    marker = store_path / "modelshelf-store.json"
    kept = json.loads(marker.read_text())
    marker.unlink()
    code, report = doctor(store_path)
    assert code == 1 and kinds(report) == {"missing_marker": 1}, report
    doctor(store_path, repair=True)
    assert json.loads(marker.read_text())["high_water"] == kept["high_water"] == {"pima": 3, "iris": 1}
    assert doctor(store_path)[0] == 0 and state_of(store_path) == before


# -- a full disk -------------------------------------------------------------------------------------


def _fill(disk: Path) -> Path:
    """Fill the disk up to its last bytes with ``filler`` (delete it to make room again)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def _refusal_after(store_path: Path, files: dict[str, str], before: dict[str, Any], refused: Exception) -> None:
    """One line saying the disk is full; nothing stored changed; with room again, doctor is clean."""
    message = str(refused)
    assert "\n" not in message and ("space" in message or "full" in message), message
    assert files_of(store_path) == files
    (store_path.parent / "filler").unlink()
    assert state_of(store_path) == before
    assert doctor(store_path)[0] == 0


def test_a_full_disk_refuses_the_save_and_stores_nothing(small_disk: Path, model: Any) -> None:
    from core.errors import ModelShelfError
    from core.store import Store

    store_path = small_disk / "store"
    before = make_store(store_path, model)
    files = files_of(store_path)
    fitted, X_test, y_test = model
    store = Store(store_path)  # opened while there is room (its WAL files exist): the save meets the full disk
    try:
        _fill(small_disk)
        with pytest.raises(ModelShelfError) as refused:
            store.save(fitted, "pima", X_test=X_test, y_test=y_test)
    finally:
        store.close()
    _refusal_after(store_path, files, before, refused.value)
    assert next_number(store_path, model) == 4


def test_a_store_opened_on_a_full_disk_refuses_in_one_line(small_disk: Path, model: Any) -> None:
    from core.errors import StoreError
    from core.store import Store

    store_path = small_disk / "store"
    before = make_store(store_path, model)
    files = files_of(store_path)
    _fill(small_disk)
    with pytest.raises(StoreError) as refused:  # SQLite cannot make its WAL files: said in one line
        Store(store_path).save(model[0], "pima")
    _refusal_after(store_path, files, before, refused.value)
    assert next_number(store_path, model) == 4
