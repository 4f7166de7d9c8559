"""Schema 5 (issue 14): the task and the primary score as index columns, and the in-place upgrade of a
schema-4 index (the Alembic revision ``core/store/migrations/versions/schema_5.py``) whose old records
know nothing of tasks."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from core import Store, load_dataset, train
from core.cli import main
from core.store.layout import VERSION_FILE
from core.store.schema import SCHEMA_VERSION


@pytest.fixture(scope="module")
def trained():
    return {
        "iris": train(load_dataset("builtin:iris"), "decision_tree"),
        "diab": train(load_dataset("builtin:diabetes"), "ridge"),
    }


def test_rows_carry_the_task_and_the_primary_score_and_lists_sort_and_filter_on_them(store, trained):
    store.save_trained(trained["iris"], "iris")
    store.save_trained(trained["diab"], "diab")
    row = store.row("diab")
    assert (row.task, row.score_name, row.score, row.accuracy) == (
        "regression",
        "r2",
        trained["diab"].metrics["r2"],
        None,
    )
    row = store.row("iris")
    assert (row.task, row.score_name, row.score) == ("classification", "accuracy", row.accuracy)
    assert [r["name"] for r in store.list(task="regression")] == ["diab"] and store.count(task="regression") == 1
    best_first = [r["name"] for r in store.list(sort="score")]
    assert best_first == sorted(["iris", "diab"], key=lambda n: -store.row(n).score)  # type: ignore[operator]
    table = store.table(task="regression")
    assert list(table["score"]) == [f"r2 {trained['diab'].metrics['r2']:.4f}"] and list(table["task"]) == ["regression"]


def _make_schema_4(store_path: Path) -> None:
    """Turn a fresh store into what the previous release wrote: no schema-5 columns, records without task."""
    db = sqlite3.connect(store_path / "index.sqlite")
    for index in ("ix_versions_score", "ix_versions_task"):
        db.execute(f"DROP INDEX {index}")
    for column in ("task", "score", "score_name"):
        db.execute(f"ALTER TABLE versions DROP COLUMN {column}")
    for row_id, text in db.execute("SELECT id, record FROM versions").fetchall():
        record = json.loads(text)
        record.pop("task", None)
        record["metrics"].pop("primary", None)
        db.execute("UPDATE versions SET record = ? WHERE id = ?", (json.dumps(record), row_id))
    db.execute("UPDATE store_info SET value = '4' WHERE key = 'schema'")
    db.commit()
    db.close()


def test_a_schema_4_store_is_read_as_it_is_then_upgraded_in_place_by_its_first_write(store_path, trained, capsys):
    first = Store(store_path)
    first.save_trained(trained["iris"], "iris")
    first.save_trained(trained["diab"], "diab")
    accuracy = first.row("iris").accuracy
    first.close()
    _make_schema_4(store_path)

    reader = Store(store_path)  # reading: the old columns only, old classifiers read as classification
    try:
        assert reader.index.schema == 4 and reader.row("diab").task is None
        assert [r["name"] for r in reader.list(task="classification")] == ["iris"]
        assert reader.table(sort="score")["ref"].tolist() == ["iris:1", "diab:1"]  # by accuracy; none last
    finally:
        reader.close()
    assert main(["--store", str(store_path), "list", "--sort", "score"]) == 0
    assert "accuracy " in capsys.readouterr().out

    store = Store(store_path)
    try:
        store.add_tag("iris", "kept")  # the first write upgrades the index, in place
        iris, diab = store.row("iris"), store.row("diab")
        assert (iris.task, iris.score_name, iris.score, iris.accuracy) == (
            "classification",
            "accuracy",
            accuracy,
            accuracy,
        )
        # An old record without an accuracy is judged by its estimator class, and leads with its r2.
        assert (diab.task, diab.score_name, diab.score) == ("regression", "r2", trained["diab"].metrics["r2"])
        doc = json.loads((store_path / Path(diab.path).parent / VERSION_FILE).read_text())
        assert doc["task"] == "regression" and doc["score"] == diab.score
    finally:
        store.close()
    db = sqlite3.connect(store_path / "index.sqlite")
    assert db.execute("SELECT value FROM store_info WHERE key = 'schema'").fetchone() == (str(SCHEMA_VERSION),)
    db.close()
