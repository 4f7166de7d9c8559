"""``python -m core doctor`` on a store (issue 12): each problem kind made on purpose and reported
with exit code 1; ``--repair`` fixes the safe ones and leaves young leftovers (a save may be running)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sklearn.dummy import DummyClassifier

from core import Store
from core.store.layout import MARKER, VERSION_FILE
from tests.conftest import ROOT

HOUR_AGO = time.time() - 2 * 3600


def _doctor(store_path: Path, *args: str) -> tuple[int, dict]:
    done = subprocess.run(
        [sys.executable, "-m", "core", "doctor", "--store-only", "--json", "--store", str(store_path), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.stderr == "", done.stderr
    return done.returncode, json.loads(done.stdout)


def _kinds(found: list[dict]) -> list[tuple[str, str | None]]:
    return sorted((p["kind"], p["path"]) for p in found)


def _age(path: Path, when: float = HOUR_AGO) -> None:
    for each in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(each, (when, when))


@pytest.fixture
def two_versions(store_path: Path):
    model = DummyClassifier().fit([[0.0, 1.0], [1.0, 0.0]], [0, 1])
    store = Store(store_path)
    first = store.save(model, "m", format="pickle", X_test=[[0.0, 1.0], [1.0, 0.0]], y_test=[0, 1])
    second = store.save(model, "m", format="pickle", tags=["t"])
    store.close()
    return first, second


def test_a_sound_store_is_ok_and_exit_0(store_path, two_versions):
    code, report = _doctor(store_path, "--verify")
    assert code == 0 and report["ok"] is True and report["problems"] == [] and report["versions"] == 2
    assert report["read_only"] is False and "layers" not in report


def test_leftovers_missing_marker_and_metadata_are_reported_then_repaired(store_path, two_versions):
    first, second = two_versions
    folder = Path(first["path"]).parent
    # a save killed before its commit, an hour ago, and one maybe still running now
    stray = store_path / "m" / ("a" * 32)
    shutil.copytree(store_path / folder, stray)
    _age(stray)
    young = store_path / "m" / ("b" * 32)
    young.mkdir()
    (young / ".model.pkl.part").write_bytes(b"half a model")
    # temporary files: in a version folder, and in the folder releases before 3 used
    part = store_path / folder / ".model.pkl.part"
    part.write_bytes(b"x" * 100)
    _age(part)
    (store_path / ".tmp").mkdir()
    old_temp = store_path / ".tmp" / "0123abcd"
    old_temp.write_bytes(b"y" * 100)
    _age(old_temp)
    (store_path / MARKER).unlink()
    (store_path / Path(second["path"]).parent / VERSION_FILE).unlink()

    code, report = _doctor(store_path)
    assert code == 1 and report["ok"] is False
    metadata = f"{Path(second['path']).parent}/{VERSION_FILE}"
    assert _kinds(report["problems"]) == sorted(
        [
            ("files_without_row", f"m/{'a' * 32}"),
            ("stale_temp", f"{folder}/.model.pkl.part"),
            ("stale_temp", ".tmp/0123abcd"),
            ("missing_marker", MARKER),
            ("metadata_missing", metadata),
        ]
    )
    assert {p["ref"] for p in report["problems"] if p["kind"] == "metadata_missing"} == {"m:2"}
    assert _kinds(report["pending"]) == [("files_without_row", f"m/{'b' * 32}")]

    code, report = _doctor(store_path, "--repair")
    assert code == 0 and report["ok"] is True and len(report["repaired"]) == 5, report
    assert not stray.exists() and not part.exists() and not old_temp.exists()
    assert young.exists()  # young: perhaps a save still writing; left alone
    marker = json.loads((store_path / MARKER).read_text())
    assert marker["high_water"] == {"m": 2}
    assert json.loads((store_path / metadata).read_text())["tags"] == ["t"]
    assert _doctor(store_path)[0] == 0
    store = Store(store_path)
    try:
        assert store.versions("m") == [2, 1] and store.load("m:1").model is not None
    finally:
        store.close()


def test_damaged_files_are_reported_and_never_repaired(store_path, two_versions):
    first, second = two_versions
    (store_path / second["path"]).unlink()
    evaluation = store_path / first["evaluation_set"]["path"]
    evaluation.write_bytes(evaluation.read_bytes() + b"more")
    model = store_path / first["path"]
    data = bytearray(model.read_bytes())
    data[-2] ^= 0xFF  # same size, other bytes: only --verify sees it
    model.write_bytes(bytes(data))

    code, report = _doctor(store_path)
    assert code == 1
    assert _kinds(report["problems"]) == sorted(
        [("row_without_file", second["path"]), ("size_mismatch", first["evaluation_set"]["path"])]
    )
    assert {p["ref"] for p in report["problems"]} == {"m:1", "m:2"}
    code, report = _doctor(store_path, "--verify", "--repair")
    assert code == 1 and report["repaired"] == []
    assert ("hash_mismatch", first["path"]) in _kinds(report["problems"])
    assert model.read_bytes() == bytes(data)  # nothing changed by a repair


def test_a_marker_behind_the_index_is_rewritten(store_path, two_versions):
    marker = store_path / MARKER
    doc = json.loads(marker.read_text())
    marker.write_text(json.dumps(doc | {"high_water": {"m": 1}}))
    code, report = _doctor(store_path)
    assert code == 1 and _kinds(report["problems"]) == [("marker_behind", MARKER)]
    code, report = _doctor(store_path, "--repair")
    assert code == 0 and json.loads(marker.read_text())["high_water"] == {"m": 2}


def test_a_lost_index_and_a_foreign_marker_are_reported(tmp_path, store_path, two_versions):
    other = Store(tmp_path / "other")
    other.close()
    saved = (store_path / MARKER).read_bytes()
    (store_path / MARKER).write_bytes((tmp_path / "other" / MARKER).read_bytes())
    code, report = _doctor(store_path)
    assert code == 1 and _kinds(report["problems"]) == [("marker_mismatch", MARKER)]
    (store_path / MARKER).write_bytes(saved)
    for extra in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        (store_path / extra).unlink(missing_ok=True)
    code, report = _doctor(store_path)
    assert code == 1 and _kinds(report["problems"]) == [("index_missing", "index.sqlite")]
    assert "python -m core index rebuild" in report["problems"][0]["detail"]
    assert not (store_path / "index.sqlite").exists()  # the doctor does not make one either


def test_doctor_text_names_each_problem_on_one_line(store_path, two_versions):
    first, _ = two_versions
    (store_path / first["path"]).unlink()
    done = subprocess.run(
        [sys.executable, "-m", "core", "doctor", "--store-only", "--store", str(store_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"store {store_path}: 1 problem(s)",
        f"  problem  row_without_file  m:1  {first['path']}: the model file is missing",
    ]


def test_a_metadata_file_that_says_other_than_the_index_is_rewritten(store_path, two_versions):
    """A tag change a crash cut short after version.json was rewritten, before the commit: doctor
    reports it and --repair rewrites the file, so a later rebuild brings back only what was committed."""
    _, second = two_versions
    metadata = store_path / second["path"].rsplit("/", 1)[0] / VERSION_FILE
    doc = json.loads(metadata.read_text())
    assert doc["tags"] == ["t"]
    metadata.write_text(json.dumps(doc | {"tags": ["t", "never-committed"], "note": "cut short"}))
    code, report = _doctor(store_path)
    assert code == 1 and _kinds(report["problems"]) == [("metadata_stale", str(metadata.relative_to(store_path)))]
    code, report = _doctor(store_path, "--repair")
    assert code == 0 and [p["kind"] for p in report["repaired"]] == ["metadata_stale"]
    repaired = json.loads(metadata.read_text())
    assert repaired["tags"] == ["t"] and repaired["note"] == "" and repaired["version"] == 2
    assert _doctor(store_path)[0] == 0
