"""Public-demo rules in the store: owner-scoped changes and user input kept inert (quotas: test_visitors)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from core import Store
from core.errors import ConflictError, InvalidParameterError

CORE = Path(__file__).resolve().parent.parent / "core"


@pytest.fixture(scope="module")
def model() -> LogisticRegression:
    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=300).fit(X, y)


def _save(store: Store, model, name: str, owner: str | None) -> str:
    record = store.save(model, name, format="pickle", owner=owner)
    return f"{record['name']}:{record['version']}"


def test_a_session_changes_only_its_own_versions(store: Store, model) -> None:
    mine = _save(store, model, "shared", owner="session-a")
    theirs = _save(store, model, "theirs", owner="session-b")
    operators = _save(store, model, "curated", owner=None)
    for ref in (theirs, operators):
        with pytest.raises(ConflictError, match="belongs to another visitor"):
            store.delete(ref, owner="session-a")
        with pytest.raises(ConflictError):
            store.set_alias(ref, "best", owner="session-a")
        with pytest.raises(ConflictError):
            store.add_tag(ref, "mine", owner="session-a")
        with pytest.raises(ConflictError):
            store.remove_tag(ref, "mine", owner="session-a")
        with pytest.raises(ConflictError):
            store.set_note(ref, "hijacked", owner="session-a")
    assert store.count() == 3
    store.set_alias(mine, "best", owner="session-a")
    store.add_tag(mine, "mine", owner="session-a")
    store.set_note(mine, "ok", owner="session-a")
    assert store.get(mine)["aliases"] == ["best"]
    # session b may not move or remove session a's alias
    with pytest.raises(ConflictError, match="belongs to another visitor"):
        store.set_alias(mine, "best", owner="session-b")
    with pytest.raises(ConflictError):
        store.remove_alias("shared", "best", owner="session-b")
    assert store.remove_alias("shared", "best", owner="session-a") is True
    assert store.delete(mine, owner="session-a") > 0
    # without an owner (the command line, the operator) nothing is restricted
    store.set_alias(theirs, "prod")
    assert store.delete(theirs, force=True) > 0
    assert [r["name"] for r in store.list()] == ["curated"]


@pytest.mark.parametrize("name", ["../../x", "..", "a/b", "/etc/passwd", "a\\b", ".hidden", "x\x00y", "a..b", ""])
def test_no_path_traversal_through_a_name(store: Store, store_path: Path, tmp_path: Path, model, name: str) -> None:
    with pytest.raises(InvalidParameterError, match="Invalid model name"):
        store.save(model, name)
    assert store.count() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_notes_and_odd_text_are_stored_as_given(store: Store, model) -> None:
    note = "<script>alert(1)</script> **bold** [x](javascript:alert(1)) '; DROP TABLE versions; --"
    ref = _save(store, model, "notes", owner=None)
    store.set_note(ref, note)
    assert store.get(ref)["note"] == note
    # Filters are bound parameters, not SQL text: quotes and wildcards match literally.
    assert store.list(tag="x' OR '1'='1") == []
    assert store.list(name="%") == []
    assert store.list(name="' OR 1=1 --") == []
    assert [r["name"] for r in store.list(name="note")] == ["notes"]


def test_core_builds_no_sql_from_strings() -> None:
    """Every query goes through SQLAlchemy Core expressions; no f-string, %, + or .format into SQL."""
    pattern = re.compile(r"(execute|exec_driver_sql|text)\(\s*(f[\"']|[\"'][^\"']*[\"']\s*(%|\+|\.format))")
    assert pattern.search('conn.execute(f"SELECT * FROM versions WHERE name = {name}")')  # the check can fail
    assert pattern.search("conn.exec_driver_sql('DELETE FROM tags WHERE tag = %s' % tag)")
    offenders = []
    for path in CORE.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []
    raw = [line for path in CORE.rglob("*.py") for line in path.read_text().splitlines() if "exec_driver_sql" in line]
    assert all('"BEGIN IMMEDIATE" if' in line for line in raw), raw
