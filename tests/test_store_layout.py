"""The store's layout (issue 12): folders no two versions share, numbers never handed out twice,
the marker and the per-version metadata files, a lost index reported and never recreated, and a
store made by the previous release (schema 2) read as it is and upgraded in place by its first write."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import pickle
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from core import Store
from core.errors import IndexMissingError, InvalidParameterError, ModelShelfError, StoreError, StoreMismatchError
from core.store import saving
from core.store.layout import MARKER, VERSION_FILE
from core.store.schema import SCHEMA_VERSION
from tests.conftest import ROOT

FOLDER = re.compile(r"^(?P<name>[^/]+)/(?P<id>[0-9a-f]{32})/model\.(pkl|joblib|skops)$")


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=300).fit(X, y), X, y


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _cli(store_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core", "--store", str(store_path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def test_a_save_gets_a_folder_of_its_own_a_metadata_file_and_a_marker(store, store_path, iris):
    model, X, y = iris
    first = store.save(model, "iris", format="pickle", X_test=X, y_test=y, tags=["a"], note="first")
    second = store.save(model, "iris", format="pickle")
    for record in (first, second):
        assert FOLDER.match(record["path"]), record["path"]
    assert Path(first["path"]).parent != Path(second["path"]).parent
    folder = store_path / Path(first["path"]).parent
    assert first["evaluation_set"]["path"] == f"{Path(first['path']).parent}/evaluation.parquet"
    assert sorted(p.name for p in folder.iterdir()) == ["evaluation.parquet", "model.pkl", VERSION_FILE]
    doc = _json(folder / VERSION_FILE)
    assert (doc["name"], doc["version"], doc["tags"], doc["note"], doc["path"]) == (
        "iris",
        1,
        ["a"],
        "first",
        first["path"],
    )
    assert (
        doc["record"]["sha256"]
        == first["sha256"]
        == hashlib.sha256((store_path / first["path"]).read_bytes()).hexdigest()
    )
    marker = _json(store_path / MARKER)
    assert marker["format"] == 3 and marker["high_water"] == {"iris": 2}
    assert marker["store_id"] == store.index.store_id() == doc["store_id"]
    assert not list(store_path.rglob("*.part")) and not (store_path / ".tmp").exists()


def test_numbers_are_never_handed_out_again_after_a_delete(store, store_path, iris):
    model, _, _ = iris
    for _ in range(3):
        store.save(model, "m", format="pickle")
    gone = store.row("m:3").path
    store.delete("m:3")
    store.delete("m:2")
    assert not (store_path / gone).parent.exists()
    again = store.save(model, "m", format="pickle")
    assert again["version"] == 4 and again["path"] != gone
    store.delete("m:1")
    store.delete("m:4")
    assert store.versions("m") == [] and "m" not in store.names()
    assert store.save(model, "m", format="pickle")["version"] == 5  # the last one going frees no number either
    assert _json(store_path / MARKER)["high_water"]["m"] == 5


def test_the_metadata_file_follows_tags_notes_aliases_and_exports(store, store_path, iris):
    model, _, _ = iris
    one = store.save(model, "x", format="pickle")
    two = store.save(model, "x", format="pickle")

    def doc(record):
        return _json(store_path / Path(record["path"]).parent / VERSION_FILE)

    store.update_tags("x:1", add=["t1", "t2"])
    store.remove_tag("x:1", "t1")
    store.set_note("x:1", "a note")
    store.set_alias("x:1", "prod")
    assert (doc(one)["tags"], doc(one)["note"], doc(one)["aliases"]) == (["t2"], "a note", ["prod"])
    store.set_alias("x:2", "prod")  # a move rewrites both versions' files
    assert doc(one)["aliases"] == [] and doc(two)["aliases"] == ["prod"]
    store.remove_alias("x", "prod")
    assert doc(two)["aliases"] == []
    store.merge_exports("x:2", {"onnx": {"status": "refused", "reason": "test"}})
    assert doc(two)["record"]["exports"]["onnx"]["reason"] == "test"
    assert doc(one)["stored_bytes"] == store.row("x:1").stored_bytes


def test_a_failed_save_removes_its_own_folder_and_nothing_else(store, store_path, iris, monkeypatch):
    model, _, _ = iris
    kept = store.save(model, "f", format="pickle")
    before = sorted(p.relative_to(store_path) for p in store_path.rglob("*") if "index.sqlite" not in p.name)

    def broken(*args, **kwargs):
        raise RuntimeError("the index went away")

    monkeypatch.setattr(store.index, "insert_version", broken)
    with pytest.raises(RuntimeError):
        store.save(model, "f", format="pickle")
    after = sorted(p.relative_to(store_path) for p in store_path.rglob("*") if "index.sqlite" not in p.name)
    assert after == before and (store_path / kept["path"]).exists()
    monkeypatch.undo()
    assert store.save(model, "f", format="pickle")["version"] == 2  # the failed claim was rolled back


def test_held_out_rows_that_do_not_match_are_refused_before_anything_is_written(store, iris, monkeypatch):
    """The rows are described while the model file is fsynced, but a save whose X_test and y_test
    cannot go together is refused before it writes a byte."""
    model, X, y = iris
    written: list[str] = []
    monkeypatch.setattr(type(store.artifacts), "write_new", lambda self, relpath, *a, **k: written.append(relpath))
    for X_test, y_test, message in ((X[:10], y[:9], "X_test has 10 rows but y_test has 9"), (X[:10], None, "both")):
        with pytest.raises(InvalidParameterError, match=message):
            store.save(model, "rows", X_test=X_test, y_test=y_test)
    assert written == [] and store.count() == 0


def test_a_description_that_fails_after_the_write_leaves_nothing(store, store_path, iris, monkeypatch):
    """What is described beside the fsync can still fail (here the evaluation set): nothing is kept."""
    model, X, y = iris

    def broken(frame, handle):
        raise ValueError("no parquet today")

    monkeypatch.setattr(saving, "write_evaluation_set", broken)
    with pytest.raises(ModelShelfError, match="late was not saved: no parquet today"):
        store.save(model, "late", X_test=X, y_test=y)
    assert store.count() == 0 and not (store_path / "late").exists()


def test_json_files_written_side_by_side_all_land_or_the_error_is_raised(store, store_path):
    """``write_jsons`` on a local disk: each file whole (a synced rename); a file that cannot be
    written raises once every write has ended, and does not stop the others."""
    (store_path / "a").mkdir()
    store.artifacts.write_jsons({"a/one.json": {"n": 1}, "a/two.json": {"n": 2}})
    assert _json(store_path / "a/one.json") == {"n": 1} and _json(store_path / "a/two.json") == {"n": 2}
    with pytest.raises(FileNotFoundError):
        store.artifacts.write_jsons({"missing/one.json": {"n": 3}, "a/three.json": {"n": 3}})
    assert _json(store_path / "a/three.json") == {"n": 3} and not list(store_path.rglob("*.part"))


@pytest.mark.parametrize("url", ["rel/x", "./rel/y/", ".", "/abs/x/", "~/y", "file:///tmp/z", "local:///w", "/a/../b"])
def test_a_local_root_is_spelled_as_fsspec_spells_it(url):
    """A local store opens without fsspec (``local_root``), under the very root fsspec would give:
    the index records its root and refuses another, so the two must never disagree."""
    import fsspec

    from core.store.artifacts import local_root

    fs, root = fsspec.core.url_to_fs(url)
    assert type(fs).__name__ == "LocalFileSystem" and local_root(url) == root.rstrip("/")
    assert local_root("s3://bucket/prefix") is None and local_root("memory://x") is None


def test_a_file_is_never_published_over_an_existing_one(store, store_path, iris):
    model, _, _ = iris
    record = store.save(model, "o", format="pickle")
    original = (store_path / record["path"]).read_bytes()
    with pytest.raises(StoreError, match="already exists in the store; refusing to overwrite it"):
        store.artifacts.write_new(record["path"], lambda handle: handle.write(b"other bytes"))
    assert (store_path / record["path"]).read_bytes() == original
    assert not list(store_path.rglob("*.part"))


def _lose_index(store_path: Path, how: str) -> None:
    index = store_path / "index.sqlite"
    for extra in ("index.sqlite-wal", "index.sqlite-shm"):
        (store_path / extra).unlink(missing_ok=True)
    if how == "deleted":
        index.unlink()
    elif how == "emptied":
        index.write_bytes(b"")
    elif how == "garbage":
        index.write_bytes(os.urandom(8192))
    elif how == "half":
        data = index.read_bytes()
        index.write_bytes(data[: len(data) // 2])
    elif how == "directory":
        index.unlink()
        index.mkdir()


@pytest.mark.parametrize("how", ["deleted", "emptied", "garbage", "half", "directory"])
def test_a_lost_or_damaged_index_is_reported_and_never_recreated(store_path, iris, how):
    model, _, _ = iris
    made = Store(store_path)
    record = made.save(model, "pima", format="pickle")
    made.close()
    files = {p: p.read_bytes() for p in store_path.rglob("*") if p.is_file() and "index.sqlite" not in p.name}
    _lose_index(store_path, how)
    for args in (["list"], ["show", "pima:1"], ["tag", "pima:1", "t"]):
        done = _cli(store_path, *args)
        assert done.returncode == 1, (args, done.stdout)
        said = {"deleted": "missing", "emptied": "empty", "directory": "damaged: it is a folder, not a database"}
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, (how, args, done.stderr)
        assert re.fullmatch(
            rf"error: the index at {re.escape(str(store_path))}/index\.sqlite is "
            rf"{re.escape(said.get(how, 'damaged: '))}.*; run `python -m core index rebuild`",
            lines[0],
        ), (how, args, done.stderr)
    with pytest.raises(IndexMissingError):
        Store(store_path).save(model, "pima", format="pickle")
    assert {p: p.read_bytes() for p in files} == files  # pima:1's files untouched, nothing written over them
    assert (store_path / record["path"]).exists()


def test_an_index_of_another_store_is_refused(tmp_path, iris):
    model, _, _ = iris
    for folder in ("a", "b"):
        made = Store(tmp_path / folder)
        made.save(model, "m", format="pickle")
        made.close()
    (tmp_path / "a" / MARKER).write_bytes((tmp_path / "b" / MARKER).read_bytes())
    with pytest.raises(StoreMismatchError, match="belongs to another store"):
        Store(tmp_path / "a")
    done = _cli(tmp_path / "a", "list")
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1 and "another store" in done.stderr


def _open_and_save(path: str, start: float) -> int:
    from sklearn.dummy import DummyClassifier

    time.sleep(max(0.0, start - time.time()))
    store = Store(path)  # all at once, on a folder with no store in it yet
    try:
        return int(store.save(DummyClassifier().fit([[0], [1]], [0, 1]), "first", format="pickle")["version"])
    finally:
        store.close()


def test_processes_opening_a_new_store_at_once_all_get_it(tmp_path):
    """The first open makes the index and the marker; the others must not take that marker for a lost index."""
    path = str(tmp_path / "fresh")
    start = time.time() + 3.0
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        got = pool.starmap(_open_and_save, [(path, start)] * 4)
    assert sorted(got) == [1, 2, 3, 4]
    assert _json(tmp_path / "fresh" / MARKER)["high_water"] == {"first": 4}


# The save/delete race, 1,000 rounds: tests/reliability/test_save_delete_race.py.


# -- a store made by the previous release (schema 2, commit d01b3d8) ---------------------------

SCHEMA_2 = """
CREATE TABLE versions (
    id INTEGER NOT NULL, name VARCHAR(128) NOT NULL, version INTEGER NOT NULL,
    created_at VARCHAR(40) NOT NULL, format VARCHAR(16) NOT NULL, path TEXT NOT NULL,
    size_bytes INTEGER NOT NULL, sha256 VARCHAR(64) NOT NULL, estimator VARCHAR(200), accuracy FLOAT,
    sklearn_version VARCHAR(40), origin VARCHAR(16) NOT NULL, owner VARCHAR(64), note TEXT NOT NULL,
    record TEXT NOT NULL, stored_bytes INTEGER DEFAULT '0' NOT NULL,
    PRIMARY KEY (id), CONSTRAINT uq_name_version UNIQUE (name, version)
);
CREATE INDEX ix_versions_owner ON versions (owner);
CREATE INDEX ix_versions_created ON versions (created_at, id);
CREATE INDEX ix_versions_accuracy ON versions (accuracy, id);
CREATE TABLE names (
    name VARCHAR(128) NOT NULL, owner VARCHAR(64), created_at VARCHAR(40) NOT NULL, PRIMARY KEY (name)
);
CREATE INDEX ix_names_owner ON names (owner);
CREATE TABLE store_info ("key" VARCHAR(64) NOT NULL, value TEXT NOT NULL, PRIMARY KEY ("key"));
CREATE TABLE tags (
    version_id INTEGER NOT NULL, tag VARCHAR(64) NOT NULL, PRIMARY KEY (version_id, tag),
    FOREIGN KEY(version_id) REFERENCES versions (id) ON DELETE CASCADE
);
CREATE INDEX ix_tags_tag ON tags (tag);
CREATE TABLE aliases (
    name VARCHAR(128) NOT NULL, alias VARCHAR(64) NOT NULL, version_id INTEGER NOT NULL,
    PRIMARY KEY (name, alias), FOREIGN KEY(version_id) REFERENCES versions (id) ON DELETE CASCADE
);
CREATE INDEX ix_aliases_version ON aliases (version_id);
CREATE TABLE verified_files (
    version_id INTEGER NOT NULL, sha256 VARCHAR(64) NOT NULL, stamp VARCHAR(200) NOT NULL,
    PRIMARY KEY (version_id), FOREIGN KEY(version_id) REFERENCES versions (id) ON DELETE CASCADE
);
INSERT INTO store_info VALUES ('schema', '2');
"""


def _schema_2_store(path: Path, model, X, y) -> dict[str, dict]:
    """A store laid out the way the previous release wrote it: NAME/vN/ folders, no marker, no
    version.json, names without next_version; pima:3 was deleted (so its number was free again)."""
    from core.environment import capture_environment
    from core.frames import write_evaluation_set
    from core.record import recorded_accuracy, stored_bytes
    from core.store.saving import model_fields

    path.mkdir(parents=True)
    db = sqlite3.connect(path / "index.sqlite")
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA_2)
    made: dict[str, dict] = {}
    plan = [("pima", 1, "alice", ["t1"], "first"), ("pima", 2, "alice", [], ""), ("pima", 4, "alice", [], "n")]
    plan.append(("solo", 1, None, ["x", "y"], ""))
    for row_id, (name, version, owner, tag_list, note) in enumerate(plan, start=1):
        folder = path / name / f"v{version}"
        folder.mkdir(parents=True)
        data = pickle.dumps(model)
        (folder / "model.pkl").write_bytes(data)
        fields, frame = model_fields(
            model, X, y, format="pickle", compress=0, metrics=None, dataset=None, split=None,
            fit_warnings=(), extra=None,
        )  # fmt: skip
        buffer = io.BytesIO()
        write_evaluation_set(frame, buffer)
        (folder / "evaluation.parquet").write_bytes(buffer.getvalue())
        record = {
            "name": name,
            "version": version,
            "created_at": f"2026-11-0{row_id}T10:00:00.000000+00:00",
            "format": "pickle",
            "compression": None,
            "path": f"{name}/v{version}/model.pkl",
            "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "origin": "trained",
            "environment": capture_environment(),
            **{k: v for k, v in fields.items() if k not in ("format", "compression")},
            "evaluation_set": {
                "sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
                "size_bytes": len(buffer.getvalue()),
                "n_rows": len(y),
                "path": f"{name}/v{version}/evaluation.parquet",
            },
        }
        text = json.dumps(record)
        db.execute(
            "INSERT INTO versions VALUES (?, ?, ?, ?, 'pickle', ?, ?, ?, ?, ?, ?, 'trained', ?, ?, ?, ?)",
            (
                row_id, name, version, record["created_at"], record["path"], len(data), record["sha256"],
                record["estimator"], recorded_accuracy(record), record["environment"]["packages"]["scikit-learn"],
                owner, note, text, stored_bytes(record, text, note, tag_list),
            ),
        )  # fmt: skip
        db.executemany("INSERT INTO tags VALUES (?, ?)", [(row_id, t) for t in tag_list])
        if version == 1:
            db.execute("INSERT INTO names VALUES (?, ?, ?)", (name, owner, record["created_at"]))
        made[f"{name}:{version}"] = record | {"tags": tag_list, "note": note}
    db.execute("INSERT INTO aliases VALUES ('pima', 'production', 2)")
    made["pima:2"]["aliases"] = ["production"]
    db.commit()
    db.close()
    return made


def test_a_schema_2_store_is_read_as_it_is_and_upgraded_in_place_by_its_first_write(store_path, iris):
    model, X, y = iris
    made = _schema_2_store(store_path, model, X, y)

    reader = Store(store_path)  # reading writes nothing: no marker, no metadata file, same schema
    try:
        assert sorted(r["name"] + ":" + str(r["version"]) for r in reader.list()) == sorted(made)
        assert reader.get("pima@production")["version"] == 2
        assert np.array_equal(reader.load("pima:1", verify="full").model.predict(X), model.predict(X))
        assert reader.evaluate("solo:1").reproduced is True
    finally:
        reader.close()
    assert _cli(store_path, "show", "pima:4").returncode == 0
    assert not (store_path / MARKER).exists() and not list(store_path.rglob(VERSION_FILE))
    db = sqlite3.connect(store_path / "index.sqlite")
    assert db.execute("SELECT value FROM store_info WHERE key = 'schema'").fetchone() == ("2",)
    db.close()

    store = Store(store_path)
    try:
        store.add_tag("solo:1", "z")  # the first write upgrades the store, in place
        marker = _json(store_path / MARKER)
        assert marker["high_water"] == {"pima": 4, "solo": 1} and marker["store_id"] == store.index.store_id()
        for ref, record in made.items():
            name, version = ref.split(":")
            doc = _json(store_path / name / f"v{version}" / VERSION_FILE)
            assert doc["record"]["sha256"] == record["sha256"] and doc["note"] == record["note"]
            assert doc["aliases"] == record.get("aliases", [])
            assert doc["tags"] == sorted(record["tags"] + (["z"] if ref == "solo:1" else []))
        after = store.save(model, "pima", format="pickle", owner="alice")
        assert after["version"] == 5 and FOLDER.match(after["path"])  # after the old maximum, in a folder of its own
        assert store.save(model, "new", format="pickle")["version"] == 1
        store.delete("pima:5")
        assert store.save(model, "pima", format="pickle", owner="alice")["version"] == 6
        for ref, record in made.items():
            kept = store.get(ref)
            assert (
                kept["path"] == record["path"] and kept["sha256"] == record["sha256"] and kept["note"] == record["note"]
            )
            assert np.array_equal(store.load(ref).model.predict(X), model.predict(X))
        assert store.get("pima@production")["version"] == 2
        assert store.index.name_owner("pima") == (True, "alice")
    finally:
        store.close()
    db = sqlite3.connect(store_path / "index.sqlite")
    assert db.execute("SELECT value FROM store_info WHERE key = 'schema'").fetchone() == (str(SCHEMA_VERSION),)
    assert dict(db.execute("SELECT name, next_version FROM names").fetchall()) == {"pima": 7, "solo": 2, "new": 2}
    db.close()


def test_a_change_racing_a_delete_is_one_clear_line_not_a_foreign_key_error(store, store_path, iris):
    """Before: alias and tag racing a delete printed a raw four-line IntegrityError."""
    from core.errors import NotFoundError

    model, _, _ = iris
    store.save(model, "r", format="pickle")
    looked_up = store.row("r:1")
    other = Store(store_path)
    try:
        other.delete("r:1")  # between this process's lookup and its write
    finally:
        other.close()
    for change in (
        lambda: store.index.set_alias(looked_up, "prod"),
        lambda: store.index.update_tags(looked_up, add=["t"]),
        lambda: store.index.set_note(looked_up, "n"),
        lambda: store.index.merge_record_section(looked_up, "exports", {"onnx": {}}),
    ):
        with pytest.raises(NotFoundError, match=r"^r:1 is no longer in the store$"):
            change()
    with pytest.raises(NotFoundError, match="no longer in the store"):
        store.index.delete_version(looked_up, force=True)
    assert not (store_path / Path(looked_up.path).parent).exists()  # nothing written into the removed folder
