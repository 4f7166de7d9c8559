"""Public-demo visitors kept apart in the index: names, aliases and quotas per owner, restarts, upgrades.

Each test builds the hostile situation itself (a second visitor, a bloated record) and checks the
rule at the store level, where every page, import path and process goes through it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from core import Store
from core.errors import ConflictError, InvalidParameterError
from core.store import Quota
from core.store.schema import SCHEMA_VERSION

TAKEN = "the name {} belongs to another visitor; choose another name"
ROOMY = Quota(max_versions=1000, max_bytes=10**12, visitor_max_versions=1000, visitor_max_bytes=10**12)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=300).fit(X, y), X, y


def _save(store: Store, model, name: str, owner: str | None, **kwargs) -> str:
    record = store.save(model, name, format="pickle", owner=owner, **kwargs)
    return f"{record['name']}:{record['version']}"


def test_a_name_belongs_to_whoever_made_its_first_version(store: Store, iris) -> None:
    model, _, _ = iris
    mine = _save(store, model, "pima", "alice")
    # Before: bob's save became pima:2, so the bare name "pima" (and alice's links) resolved to bob's model.
    with pytest.raises(ConflictError) as caught:
        _save(store, model, "pima", "bob")
    assert str(caught.value) == TAKEN.format("pima")
    assert store.row("pima").owner == "alice" and store.versions("pima") == [1]
    folders = [p.name for p in (Path(store.location) / "pima").iterdir()]
    assert folders == [Path(store.row("pima:1").path).parent.name]  # no file left behind
    # bob cannot alias, tag, annotate or delete it either, nor claim an alias first
    for change in (
        lambda: store.set_alias(mine, "production", owner="bob"),
        lambda: store.add_tag(mine, "mine", owner="bob"),
        lambda: store.remove_tag(mine, "mine", owner="bob"),
        lambda: store.set_note(mine, "hijacked", owner="bob"),
        lambda: store.delete(mine, owner="bob"),
        lambda: store.remove_alias("pima", "production", owner="bob"),
    ):
        with pytest.raises(ConflictError, match="belongs to another visitor"):
            change()
    assert store.may_change(mine, "alice") and not store.may_change(mine, "bob")
    assert store.get(mine)["aliases"] == [] and store.get(mine)["note"] == ""
    # alice keeps adding versions and aliases to her name
    _save(store, model, "pima", "alice")
    store.set_alias("pima:2", "production", owner="alice")
    assert store.row("pima@production").owner == "alice"
    # the operator (no owner) is not restricted, and its names are closed to visitors too
    _save(store, model, "pima", None)
    assert store.versions("pima") == [3, 2, 1]
    assert not store.may_change("pima:3", "alice")  # the operator's version under alice's name
    curated = _save(store, model, "curated", None)
    with pytest.raises(ConflictError, match=TAKEN.format("curated")):
        _save(store, model, "curated", "bob")
    assert not store.may_change(curated, "bob") and store.may_change(curated, None)


def test_the_same_name_from_two_visitors_at_once_goes_to_one(store_path: Path, iris) -> None:
    """Two Store objects (two replicas) racing for one name: the index hands it to exactly one."""
    from concurrent.futures import ThreadPoolExecutor

    model, _, _ = iris
    stores = [Store(store_path) for _ in range(4)]
    try:

        def attempt(i: int) -> str:
            try:
                return _save(stores[i], model, "contested", f"visitor{i}")
            except ConflictError:
                return "refused"

        with ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(attempt, range(4)))
        assert sorted(outcomes) == ["contested:1"] + ["refused"] * 3
        assert len({r.owner for r in stores[0].index.rows(name="contested")}) == 1
    finally:
        for s in stores:
            s.close()


def test_a_name_stays_its_makers_when_its_last_version_goes(store: Store, iris) -> None:
    """Issue 12: a name is no longer freed by deleting its last version; its numbers are never handed out again."""
    model, _, _ = iris
    _save(store, model, "temp", "alice")
    _save(store, model, "temp", "alice")
    store.delete("temp:1", owner="alice")
    store.delete("temp:2", owner="alice")
    with pytest.raises(ConflictError, match="belongs to another visitor"):
        _save(store, model, "temp", "bob")
    assert store.index.name_owner("temp") == (True, "alice")
    assert _save(store, model, "temp", "alice") == "temp:3"


def test_versions_without_a_claim_keep_their_first_makers_name(store: Store, store_path: Path, iris) -> None:
    model, _, _ = iris
    _save(store, model, "unclaimed", "alice")
    db = sqlite3.connect(store_path / "index.sqlite")
    db.execute("DELETE FROM names")  # rows written around the store (SQL, a bulk load) carry no claim
    db.commit()
    db.close()
    with pytest.raises(ConflictError, match=TAKEN.format("unclaimed")):
        _save(store, model, "unclaimed", "bob")
    assert store.versions("unclaimed") == [1]
    assert _save(store, model, "unclaimed", "alice") == "unclaimed:2"
    assert store.index.name_owner("unclaimed") == (True, "alice")


def test_ownership_survives_a_restart(store_path: Path, iris) -> None:
    model, _, _ = iris
    first = Store(store_path)
    _save(first, model, "kept", "alice")
    first.set_alias("kept:1", "production", owner="alice")
    first.close()
    second = Store(store_path)  # a restart, or another replica on the same index
    try:
        with pytest.raises(ConflictError, match=TAKEN.format("kept")):
            _save(second, model, "kept", "bob")
        with pytest.raises(ConflictError, match="belongs to another visitor"):
            second.set_alias("kept:1", "production", owner="bob")
        assert second.row("kept@production").owner == "alice"
        second.set_note("kept:1", "still mine", owner="alice")
    finally:
        second.close()


def test_per_visitor_quota_refuses_and_never_evicts(store_path: Path, iris) -> None:
    model, _, _ = iris
    quota = Quota(max_versions=100, max_bytes=10**9, visitor_max_versions=3, visitor_max_bytes=10**9)
    store = Store(store_path, quota=quota)
    try:
        alices = [_save(store, model, "a", "alice") for _ in range(3)]
        # Before: bob's saves past the quota evicted alice's oldest versions (enforce_quota).
        bobs = [_save(store, model, f"b{i}", "bob") for i in range(3)]
        with pytest.raises(ConflictError, match=r"Your demo quota is full: you keep 3 of 3 versions"):
            _save(store, model, "b3", "bob")
        assert store.versions("a") == [3, 2, 1] and store.count(owner="bob") == 3
        assert "b3" not in store.names() and not (store_path / "b3").exists()
        # deleting one of his own makes room for bob, and only for bob
        store.delete(bobs[0], owner="bob")
        _save(store, model, "b3", "bob")
        with pytest.raises(ConflictError, match="quota is full"):
            _save(store, model, "a", "alice")
        # the operator is not limited by the demo quota
        _save(store, model, "operator", None)
        assert [store.get(ref)["version"] for ref in alices] == [1, 2, 3]
    finally:
        store.close()


def test_store_wide_cap_refuses_new_saves(store_path: Path, iris) -> None:
    model, _, _ = iris
    store = Store(
        store_path, quota=Quota(max_versions=4, max_bytes=10**9, visitor_max_versions=3, visitor_max_bytes=10**9)
    )
    try:
        _save(store, model, "curated", None)
        _save(store, model, "x", "alice")
        _save(store, model, "x", "alice")
        _save(store, model, "y", "bob")
        with pytest.raises(ConflictError, match=r"The demo store is full \(4 of 4 versions"):
            _save(store, model, "z", "carol")
        assert store.count() == 4
        freed = store.row("y:1").stored_bytes
        store.delete("y:1", owner="bob")
        room = store.usage()["stored_bytes"] + freed + 50  # one more version like bob's, not two
        store.quota = Quota(max_versions=100, max_bytes=room, visitor_max_versions=10, visitor_max_bytes=10**9)
        _save(store, model, "z", "carol")  # back under the byte cap after bob's delete
        with pytest.raises(ConflictError, match="The demo store is full"):
            _save(store, model, "z", "carol")
        assert store.count() == 4
    finally:
        store.close()


def test_every_byte_counts_metadata_and_evaluation_set(store_path: Path, iris) -> None:
    """A small model with a huge metadata record (a 295 KB bundle once stored a 300 MB row)."""
    model, X, y = iris
    store = Store(
        store_path, quota=Quota(max_versions=100, max_bytes=10**9, visitor_max_versions=10, visitor_max_bytes=2_000_000)
    )
    try:
        record = store.save(model, "small", format="pickle", owner="alice", X_test=X, y_test=y, note="n" * 1000)
        row = store.row("small:1")
        eval_bytes = record["evaluation_set"]["size_bytes"]
        assert eval_bytes > 0
        assert row.stored_bytes == row.size_bytes + eval_bytes + len(row.record_json.encode()) + 1000
        assert store.usage("alice") == {"versions": 1, "stored_bytes": row.stored_bytes}
        # Before: a 3 MB record was counted as the model's 791 bytes; now it is refused and nothing is kept.
        with pytest.raises(ConflictError, match="quota is full"):
            store.save(model, "bloated", format="pickle", owner="alice", extra={"padding": "x" * 3_000_000})
        assert store.count() == 1 and not (store_path / "bloated").exists()
        # later growth counts too: notes, tags, export files and the record's export section
        store.set_note("small:1", "short", owner="alice")
        store.add_tag("small:1", "tagged", owner="alice")
        before = store.row("small:1").stored_bytes
        assert before == row.stored_bytes - 1000 + len("short") + len("tagged")
        attached = store.attach_file("small:1", "model.onnx", b"\0" * 5000)
        store.merge_exports("small:1", {"onnx": attached | {"status": "ok"}})
        after = store.row("small:1")
        assert after.stored_bytes == before + 5000 + (len(after.record_json) - len(row.record_json))
        with pytest.raises(ConflictError, match="quota is full"):
            store.attach_file("small:1", "model.json", b"\0" * 3_000_000)
        folder = store_path / Path(row.path).parent
        assert not (folder / "model.json").exists()
        metadata = (folder / "version.json").stat().st_size  # the version's metadata file goes with it
        freed = store.delete("small:1", owner="alice")
        assert freed == row.size_bytes + eval_bytes + 5000 + metadata
        assert store.usage("alice") == {"versions": 0, "stored_bytes": 0}
    finally:
        store.close()


def test_quota_values_are_checked() -> None:
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(InvalidParameterError):
            Quota(max_versions=bad, max_bytes=1, visitor_max_versions=1, visitor_max_bytes=1)


OLD_SCHEMA = """
CREATE TABLE versions (
    id INTEGER NOT NULL, name VARCHAR(128) NOT NULL, version INTEGER NOT NULL,
    created_at VARCHAR(40) NOT NULL, format VARCHAR(16) NOT NULL, path TEXT NOT NULL,
    size_bytes INTEGER NOT NULL, sha256 VARCHAR(64) NOT NULL, estimator VARCHAR(200), accuracy FLOAT,
    sklearn_version VARCHAR(40), origin VARCHAR(16) NOT NULL, owner VARCHAR(64), note TEXT NOT NULL,
    record TEXT NOT NULL, PRIMARY KEY (id), CONSTRAINT uq_name_version UNIQUE (name, version));
CREATE INDEX ix_versions_accuracy ON versions (accuracy, id);
CREATE INDEX ix_versions_owner ON versions (owner);
CREATE INDEX ix_versions_created ON versions (created_at, id);
CREATE TABLE store_info ("key" VARCHAR(64) NOT NULL, value TEXT NOT NULL, PRIMARY KEY ("key"));
CREATE TABLE tags (version_id INTEGER NOT NULL, tag VARCHAR(64) NOT NULL, PRIMARY KEY (version_id, tag),
    FOREIGN KEY(version_id) REFERENCES versions (id) ON DELETE CASCADE);
CREATE INDEX ix_tags_tag ON tags (tag);
CREATE TABLE aliases (name VARCHAR(128) NOT NULL, alias VARCHAR(64) NOT NULL, version_id INTEGER NOT NULL,
    PRIMARY KEY (name, alias), FOREIGN KEY(version_id) REFERENCES versions (id) ON DELETE CASCADE);
CREATE INDEX ix_aliases_version ON aliases (version_id);
CREATE TABLE verified_files (version_id INTEGER NOT NULL, sha256 VARCHAR(64) NOT NULL, stamp VARCHAR(200) NOT NULL,
    PRIMARY KEY (version_id), FOREIGN KEY(version_id) REFERENCES versions (id) ON DELETE CASCADE);
"""
OLD_COLUMNS = (
    "id, name, version, created_at, format, path, size_bytes, sha256, estimator, accuracy, "
    "sklearn_version, origin, owner, note, record"
)


def _as_release_1_store(path: Path, owners: dict[int, str | None]) -> None:
    """Rewrite a store's index in the schema of release 1 (no names table, no stored_bytes), keeping its rows.

    ``owners`` sets the owner of rows by id, as release 1 allowed: two visitors under one name.
    """
    db = sqlite3.connect(path / "index.sqlite")
    try:
        rows = db.execute(f"SELECT {OLD_COLUMNS} FROM versions ORDER BY id").fetchall()
        tag_rows = db.execute("SELECT version_id, tag FROM tags").fetchall()
        alias_rows = db.execute("SELECT name, alias, version_id FROM aliases").fetchall()
        for table in ("verified_files", "aliases", "tags", "names", "store_info", "versions"):
            db.execute(f"DROP TABLE {table}")
        db.executescript(OLD_SCHEMA)
        db.executemany(f"INSERT INTO versions ({OLD_COLUMNS}) VALUES ({', '.join('?' * 15)})", rows)
        db.executemany("UPDATE versions SET owner = ? WHERE id = ?", [(o, i) for i, o in owners.items()])
        db.executemany("INSERT INTO tags VALUES (?, ?)", tag_rows)
        db.executemany("INSERT INTO aliases VALUES (?, ?, ?)", alias_rows)
        db.execute("INSERT INTO store_info VALUES ('schema', '1')")
        db.commit()
    finally:
        db.close()


def test_a_release_1_store_upgrades_in_place_and_loses_nothing(store_path: Path, iris) -> None:
    model, X, y = iris
    made = Store(store_path)
    made.save(model, "shared", format="pickle", X_test=X, y_test=y, tags=["t1"], note="first")
    made.save(model, "shared", format="joblib", note="second")
    made.save(model, "solo", format="pickle")
    made.set_alias("shared:2", "production")
    before = {r["name"] + ":" + str(r["version"]): r for r in made.list()}
    made.close()
    # release 1 let bob add shared:2 under alice's name and alias it: the state the review found
    _as_release_1_store(store_path, {1: "alice", 2: "bob", 3: None})
    db = sqlite3.connect(store_path / "index.sqlite")
    assert "stored_bytes" not in {c[1] for c in db.execute("PRAGMA table_info(versions)")}
    db.close()

    store = Store(store_path, quota=ROOMY)  # the new code's first open writes the upgrade
    try:
        after = {r["name"] + ":" + str(r["version"]): r for r in store.list()}
        assert after.keys() == before.keys()
        for ref, record in before.items():
            assert after[ref] == record, ref  # every record, tag, alias and note as it was
        for ref in before:
            row = store.row(ref)
            kept = (row.record().get("evaluation_set") or {}).get("size_bytes") or 0
            assert row.stored_bytes == row.size_bytes + kept + len(row.record_json.encode()) + len(row.note) + sum(
                len(t) for t in row.tags
            )
        assert np.array_equal(store.load("shared:1").model.predict(X), model.predict(X))
        assert store.evaluate("shared:1").reproduced is True
        # the name goes to the owner of its first version; bob's old version stays, but is not his name
        assert store.index.name_owner("shared") == (True, "alice")
        assert store.index.name_owner("solo") == (True, None)
        with pytest.raises(ConflictError, match=TAKEN.format("shared")):
            _save(store, model, "shared", "bob")
        with pytest.raises(ConflictError, match="belongs to another visitor"):
            store.set_alias("shared:2", "latest", owner="bob")
        assert _save(store, model, "shared", "alice") == "shared:3"  # the first write after the upgrade
        assert store.usage("alice")["versions"] == 2
        db = sqlite3.connect(store_path / "index.sqlite")
        assert dict(db.execute("SELECT key, value FROM store_info").fetchall())["schema"] == str(SCHEMA_VERSION)
        db.close()
    finally:
        store.close()
    reopened = Store(store_path)  # and a second open finds nothing to do
    try:
        assert reopened.count() == 4 and reopened.index.name_owner("shared") == (True, "alice")
    finally:
        reopened.close()
