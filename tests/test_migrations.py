"""Schema migrations (``core.store.migrations``, Alembic) and the artifact root the index records.

- The revisions from nothing give exactly the tables a new index gets (``core.store.schema``), on
  SQLite and on PostgreSQL, so the two ways to a current index cannot drift apart.
- The store made by the release before issue 12 (``tests/reliability/fixtures/release_store``,
  written by that release's code) upgrades with nothing lost: by ``python -m core index upgrade``
  on SQLite, and on PostgreSQL after its rows were loaded into the revision-2 tables there.
- Opening and listing reads the schema in ONE query and never imports Alembic.
- A newer schema is refused by the CLI and the dashboard in one line; a server's older schema
  refuses writes (reads go on) until ``index upgrade``.
- Two stores sharing one database with different artifact roots: the second one's first write is
  refused and ``doctor`` says ``root_mismatch``; a moved local store folder still works.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text
from streamlit.testing.v1 import AppTest

from core import Store
from core.cli import main
from core.errors import SchemaOlderError, StoreMismatchError
from core.store.checkup import check_store
from core.store.engine import open_engine
from core.store.layout import MARKER, VERSION_FILE
from core.store.migrations import run, upgrading
from core.store.schema import SCHEMA_VERSION, metadata_obj
from tests.backends import Bucket, S3Server
from tests.conftest import ROOT
from tests.reliability.test_upgrade import RELEASE_STORE
from tests.reliability.worker import tiny_model

TABLES = ("store_info", "names", "versions", "tags", "aliases", "verified_files")


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _everything(store: Store) -> dict[str, Any]:
    """What a store keeps, as a user sees it: every version with its tags, note, aliases, owner and
    files' hashes, each name's owner, and the file bytes themselves."""
    versions = {
        f"{r['name']}:{r['version']}": (r["path"], r["sha256"], sorted(r["tags"]), r["note"], sorted(r["aliases"]))
        for r in store.list()
    }
    owners = {name: store.index.name_owner(name) for name in store.index.names()}
    return {"versions": versions, "owners": owners}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.suffix != ""}


def _model_files(folder: Path) -> dict[str, bytes]:
    return {k: v for k, v in _files(folder).items() if k.endswith((".joblib", ".parquet"))}


def _differences(engine: Engine) -> list[Any]:
    """What Alembic's autogenerate finds between the index on ``engine`` and ``core.store.schema``."""
    with engine.connect() as conn:
        found = compare_metadata(MigrationContext.configure(conn), metadata_obj)
    if engine.dialect.name == "sqlite":  # SQLite keeps the declared INTEGER of revision 2: 64-bit already
        found = [d for d in found if not (isinstance(d, list) and d[0][0] == "modify_type" and d[0][2] == "versions")]
    return found


def _from_nothing(url: str) -> Engine:
    engine, _, _ = open_engine(url, 5.0, "test")
    with upgrading(engine.execution_options(write=True)) as conn:
        run(conn, None, store_id="s" * 32, artifact_root=".")
    return engine


def test_the_revisions_from_nothing_give_the_tables_of_a_new_index(tmp_path: Path) -> None:
    engine = _from_nothing(f"sqlite:///{tmp_path / 'migrated.sqlite'}")
    try:
        assert _differences(engine) == []
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == str(SCHEMA_VERSION)
            info = dict(conn.execute(text("SELECT key, value FROM store_info")).all())
        assert info == {"schema": str(SCHEMA_VERSION), "store_id": "s" * 32, "artifact_root": "."}
    finally:
        engine.dispose()
    fresh = Store(tmp_path / "fresh")  # made at once, the head revision's tables: nothing to tell apart
    fresh.close()
    engine = create_engine(f"sqlite:///{tmp_path / 'fresh' / 'index.sqlite'}")
    assert _differences(engine) == []
    engine.dispose()


def test_the_release_store_upgrades_with_nothing_lost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "store"
    shutil.copytree(RELEASE_STORE, path)
    old_files = _model_files(path)
    reader = Store(path)
    before = _everything(reader)
    reader.close()
    assert len(before["versions"]) == 3 and before["owners"] == {"iris": (True, None), "pima": (True, None)}
    code, out, _ = _cli(capsys, "--store", str(path), "index", "upgrade")
    assert (code, out) == (0, f"Upgraded the index of {path} from schema 2 to {SCHEMA_VERSION}\n")
    code, out, _ = _cli(capsys, "--store", str(path), "--json", "index", "upgrade")
    assert code == 0 and json.loads(out) == {
        "store": str(path),
        "from": SCHEMA_VERSION,
        "to": SCHEMA_VERSION,
        "upgraded": False,
    }
    code, out, _ = _cli(capsys, "--store", str(path), "index", "upgrade")
    assert (code, out) == (0, f"The index of {path} is already at schema {SCHEMA_VERSION}: nothing to do\n")
    store = Store(path)
    try:
        assert _everything(store) == before
        with closing(sqlite3.connect(path / "index.sqlite")) as db:
            assert dict(db.execute("SELECT name, next_version FROM names")) == {"pima": 3, "iris": 2}
            assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(str(SCHEMA_VERSION),)]
            info = dict(db.execute("SELECT key, value FROM store_info"))
        assert info["schema"] == str(SCHEMA_VERSION) and info["artifact_root"] == "."
        assert json.loads((path / MARKER).read_text())["store_id"] == info["store_id"]
        assert len(list(path.glob(f"*/*/{VERSION_FILE}"))) == 3
        assert _model_files(path) == old_files  # every model file and evaluation set, byte for byte
        model, _, _ = tiny_model()
        assert store.save(model, "pima", format="pickle")["version"] == 3
        assert store.load("pima@production", verify="full").ref == "pima:1"
    finally:
        store.close()
    assert check_store(str(path)).ok


CHILD = """
import json, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
from core import Store

seen = []
event.listen(Engine, "before_cursor_execute", lambda c, cur, sql, params, *a: seen.append(f"{sql} {params}"))
store = Store(sys.argv[1])
opening = [s for s in seen if not s.startswith(("BEGIN", "PRAGMA", "COMMIT", "ROLLBACK"))]
listed = len(store.list())
after_list = any(m == "alembic" or m.startswith("alembic.") for m in sys.modules)
if sys.argv[2] == "save":
    from sklearn.dummy import DummyClassifier
    store.save(DummyClassifier().fit([[0], [1]], [0, 1]), "m", format="pickle")
after_save = any(m == "alembic" or m.startswith("alembic.") for m in sys.modules)
print(json.dumps({"opening": opening, "listed": listed, "after_list": after_list, "after_save": after_save}))
"""


def _child(path: Path, then: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), then], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_the_schema_check_is_one_query_and_alembic_loads_only_to_upgrade(tmp_path: Path) -> None:
    current = tmp_path / "current"
    made = Store(current)
    made.save(tiny_model()[0], "m", format="pickle")
    made.close()
    seen = _child(current, "save")  # open, list, save: nothing to upgrade, no Alembic
    assert seen["listed"] == 1 and not seen["after_list"] and not seen["after_save"]
    schema_reads = [s for s in seen["opening"] if "FROM store_info" in s and "('schema',)" in s]
    assert len(schema_reads) == 1 and not any("sqlite_master" in s for s in seen["opening"]), seen["opening"]
    old = tmp_path / "old"
    shutil.copytree(RELEASE_STORE, old)
    seen = _child(old, "save")  # an older store: read as it is, then upgraded before the write
    assert seen["listed"] == 3 and not seen["after_list"] and seen["after_save"]


def test_a_newer_schema_is_refused_by_the_cli_and_the_dashboard(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    path = tmp_path / "store"
    Store(path).close()
    with closing(sqlite3.connect(path / "index.sqlite")) as db, db:
        db.execute("UPDATE store_info SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION + 1),))
    code, out, err = _cli(capsys, "--store", str(path), "index", "upgrade")
    assert code == 1 and out == "" and err.count("\n") == 1 and f"index schema {SCHEMA_VERSION + 1}" in err
    monkeypatch.setenv("MODEL_STORE", str(path))
    import streamlit as st

    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    finally:
        st.cache_resource.clear()
    assert not at.exception
    assert len(at.error) == 1 and "made by a newer ModelShelf" in at.error[0].value
    assert "\n" not in at.error[0].value.strip()


def test_a_moved_store_folder_still_works_and_a_moved_artifact_root_is_repaired(tmp_path: Path) -> None:
    model, _, _ = tiny_model()
    first = Store(tmp_path / "a")
    first.save(model, "m", format="pickle")
    first.close()
    (tmp_path / "a").rename(tmp_path / "b")
    moved = Store(tmp_path / "b")  # the index records its root as "." (itself): the move changes nothing
    try:
        assert moved.save(model, "m", format="pickle")["version"] == 2
    finally:
        moved.close()
    assert check_store(str(tmp_path / "b")).ok
    # An index beside, files elsewhere: copied to a new folder, the index must be told (doctor --repair).
    index_url = f"sqlite:///{tmp_path / 'idx' / 'index.sqlite'}"
    (tmp_path / "idx").mkdir()
    kept = Store("x", index_url=index_url, artifacts_url=str(tmp_path / "files"))
    kept.save(model, "m", format="pickle")
    kept.close()
    shutil.copytree(tmp_path / "files", tmp_path / "copied")
    there = Store("x", index_url=index_url, artifacts_url=str(tmp_path / "copied"))
    try:
        with pytest.raises(StoreMismatchError) as refused:
            there.save(model, "m", format="pickle")
        assert "\n" not in str(refused.value) and "../files" in str(refused.value)
        assert there.list()[0]["version"] == 1  # index-only reads are not checked
        assert there.load("m:1", verify="full").ref == "m:1"  # nor loads (their hash stamp is not kept)
    finally:
        there.close()
    checkup = check_store("x", index_url=index_url, artifacts_url=str(tmp_path / "copied"))
    assert [p.kind for p in checkup.problems] == ["root_mismatch"] and "--repair records" in checkup.problems[0].detail
    repaired = check_store("x", index_url=index_url, artifacts_url=str(tmp_path / "copied"), repair=True)
    assert repaired.ok and [p.kind for p in repaired.repaired] == ["root_mismatch"]
    there = Store("x", index_url=index_url, artifacts_url=str(tmp_path / "copied"))
    try:
        assert there.save(model, "m", format="pickle")["version"] == 2
    finally:
        there.close()


# -- PostgreSQL ------------------------------------------------------------------------------------


def _load_release_rows(url: str) -> None:
    """The release store's index as it would be on PostgreSQL: revision 2's tables, its rows, its sequence."""
    engine = create_engine(url)
    with upgrading(engine) as conn:
        run(conn, None, store_id="unused", artifact_root=None, to=2)
    with closing(sqlite3.connect(RELEASE_STORE / "index.sqlite")) as db, engine.begin() as conn:
        conn.execute(text("DELETE FROM store_info"))  # revision 2 said schema 2; the release's rows say it again
        for table in TABLES:
            cursor = db.execute(f"SELECT * FROM {table}")
            columns = [c[0] for c in cursor.description]
            rows = [dict(zip(columns, row, strict=True)) for row in cursor]
            if rows:
                names = ", ".join(f'"{c}"' for c in columns)
                conn.execute(text(f"INSERT INTO {table} ({names}) VALUES (:{', :'.join(columns)})"), rows)
        conn.execute(text("SELECT setval(pg_get_serial_sequence('versions', 'id'), (SELECT max(id) FROM versions))"))
    engine.dispose()


def _upgrade_cli(url: str, files: Path) -> subprocess.Popen[str]:
    argv = ["-m", "core", "--index-url", url, "--artifacts-url", str(files), "index", "upgrade"]
    return subprocess.Popen(
        [sys.executable, *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.remote
def test_the_release_store_upgrades_on_postgresql_with_nothing_lost(postgres_url: str, tmp_path: Path) -> None:
    files = tmp_path / "files"
    shutil.copytree(RELEASE_STORE, files, ignore=shutil.ignore_patterns("index.sqlite"))
    _load_release_rows(postgres_url)
    old_files = _model_files(files)
    store = Store("x", index_url=postgres_url, artifacts_url=str(files))
    try:
        before = _everything(store)  # schema 2 is read as it is
        assert len(before["versions"]) == 3 and store.get("pima@production")["version"] == 1
        with pytest.raises(SchemaOlderError) as refused:
            store.add_tag("pima:1", "z")
        said = str(refused.value)
        assert (
            "\n" not in said
            and f"is at schema 2, this release needs {SCHEMA_VERSION}: run `python -m core index upgrade`" in said
        )
        assert "shelf-pw" not in said and store.get("pima:1")["tags"] == ["baseline"]
    finally:
        store.close()
    checkup = check_store("x", index_url=postgres_url, artifacts_url=str(files), repair=True)  # repairs wait too
    assert [p.kind for p in checkup.problems] == ["schema_older", "missing_marker"] and not checkup.repaired
    assert "run `python -m core index upgrade`" in checkup.problems[0].detail and not (files / MARKER).exists()
    both = [_upgrade_cli(postgres_url, files) for _ in range(2)]  # two replicas at once: the advisory lock
    outputs = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in both if p.stdout and p.stderr]
    assert [code for code, _, _ in outputs] == [0, 0], outputs
    said = sorted(out.split(" from schema ")[-1].strip() if "Upgraded" in out else "already" for _, out, _ in outputs)
    assert said == [f"2 to {SCHEMA_VERSION}", "already"], outputs
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        kinds = conn.execute(
            text(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'versions' "
                "AND column_name IN ('size_bytes', 'stored_bytes')"
            )
        ).all()
        next_numbers = dict(conn.execute(text("SELECT name, next_version FROM names")).all())
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert sorted(kinds) == [("size_bytes", "bigint"), ("stored_bytes", "bigint")]
    assert next_numbers == {"pima": 3, "iris": 2} and revision == str(SCHEMA_VERSION)
    assert _differences(engine) == []
    engine.dispose()
    store = Store("x", index_url=postgres_url, artifacts_url=str(files))
    try:
        assert _everything(store) == before and _model_files(files) == old_files
        assert store.save(tiny_model()[0], "pima", format="pickle")["version"] == 3
    finally:
        store.close()
    assert check_store("x", index_url=postgres_url, artifacts_url=str(files)).ok


@pytest.mark.remote
def test_the_revisions_from_nothing_give_the_tables_of_a_new_index_on_postgresql(postgres_url: str) -> None:
    engine = _from_nothing(postgres_url)
    try:
        assert _differences(engine) == []
    finally:
        engine.dispose()


@pytest.mark.remote
def test_two_stores_on_one_database_with_two_buckets_are_told_apart(
    postgres_url: str, s3_bucket: Bucket, s3_server: S3Server
) -> None:
    other = f"s3://{s3_server.new_bucket()}/shelf"
    model, _, _ = tiny_model()
    first = Store("a", index_url=postgres_url, artifacts_url=s3_bucket.url)
    try:
        first.save(model, "m", format="pickle")
    finally:
        first.close()
    second = Store("b", index_url=postgres_url, artifacts_url=other)
    try:
        assert [r["version"] for r in second.list()] == [1]  # index-only reads: not checked, not refused
        with pytest.raises(StoreMismatchError) as refused:
            second.save(model, "m", format="pickle")
        said = str(refused.value)
        assert "\n" not in said and s3_bucket.url in said and other in said and "pw" not in said
        assert second.count() == 1
    finally:
        second.close()
    checkup = check_store("b", index_url=postgres_url, artifacts_url=other, repair=True)
    assert [p.kind for p in checkup.problems] == ["root_mismatch"] and not checkup.repaired  # no marker there
    assert s3_server.client().list_objects_v2(Bucket=other.split("/")[2]).get("KeyCount", 0) == 0
    first = Store("a", index_url=postgres_url, artifacts_url=s3_bucket.url)
    try:
        assert first.save(model, "m", format="pickle")["version"] == 2  # the first store's own writes go on
    finally:
        first.close()
