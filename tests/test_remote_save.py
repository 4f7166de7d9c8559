"""The save path of an object store (issue 13, item 4), counted against a real S3 server.

Every S3 request the store's s3fs client makes is counted by a botocore ``before-call`` hook; the
index transaction is watched through ``MetadataIndex.writing``, so a request made while it is open
is caught, not just counted. A remote load hashes while it downloads: the file is read once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sklearn.ensemble import RandomForestClassifier

from core import load_dataset
from core.errors import IntegrityError
from core.store import Store
from core.store.index import MetadataIndex
from tests.backends import Bucket

pytestmark = pytest.mark.remote


class Requests:
    """The S3 operations made, each with whether an index write transaction was open then."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.in_transaction = False

    def hook(self, model: Any, **_: Any) -> None:
        self.calls.append((model.name, self.in_transaction))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def counted(postgres_url: str, s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Store, Requests]]:
    store = Store(index_url=postgres_url, artifacts_url=s3_bucket.url)
    requests = Requests()
    store.artifacts.fs.s3.meta.events.register("before-call.s3", requests.hook)
    writing = MetadataIndex.writing

    @contextmanager
    def watched(self: MetadataIndex, durable: bool = False) -> Iterator[Any]:
        with writing(self, durable) as conn:
            requests.in_transaction = True
            try:
                yield conn
            finally:
                requests.in_transaction = False

    monkeypatch.setattr(MetadataIndex, "writing", watched)
    try:
        yield store, requests
    finally:
        store.close()


def _model() -> tuple[RandomForestClassifier, Any, Any]:
    data = load_dataset("builtin:iris")
    return RandomForestClassifier(n_estimators=20, random_state=0).fit(data.X, data.y), data.X, data.y


def test_a_remote_save_makes_at_most_four_requests_none_in_the_transaction(counted: tuple[Store, Requests]) -> None:
    store, requests = counted
    model, X, y = _model()
    store.save(model, "iris", X_test=X.iloc[::5], y_test=y.iloc[::5])  # the first: makes the name's row
    requests.calls.clear()
    record = store.save(model, "iris", X_test=X.iloc[::5], y_test=y.iloc[::5])
    assert record["version"] == 2
    assert len(requests.calls) <= 4, requests.calls
    assert [name for name, open_ in requests.calls if open_] == []  # nothing while the index transaction is open
    assert sorted(requests.names()) == ["PutObject"] * 4  # model, evaluation set, version.json, marker
    # All four landed: the metadata file and the marker say what the index says.
    doc = store.artifacts.read_json(record["path"].rsplit("/", 1)[0] + "/version.json")
    assert (doc["name"], doc["version"], doc["sha256"]) == ("iris", 2, record["sha256"])
    assert store.artifacts.read_json("modelshelf-store.json")["high_water"] == {"iris": 2}
    assert store.evaluate("iris:2").reproduced is True


def test_a_remote_load_reads_the_file_once_and_checks_it(counted: tuple[Store, Requests]) -> None:
    store, requests = counted
    model, X, y = _model()
    record = store.save(model, "iris", X_test=X.iloc[::5], y_test=y.iloc[::5])
    requests.calls.clear()
    assert store.load("iris:1").model.predict(X.head(3)).shape == (3,)
    assert requests.names().count("GetObject") == 1, requests.calls  # one download, hashed as it arrives
    store.artifacts.fs.pipe_file(store.artifacts.full_path(record["path"]), b"changed")
    with pytest.raises(IntegrityError, match="failed its integrity check"):
        store.load("iris:1")


def test_a_lagging_marker_is_made_up_by_version_json_when_the_index_is_rebuilt(
    postgres_url: str, s3_bucket: Bucket
) -> None:
    """A marker put late by a slower saver (behind the index) costs no number after a lost index."""
    from core.store.rebuild import rebuild_index

    model, X, y = _model()
    store = Store(index_url=postgres_url, artifacts_url=s3_bucket.url)
    try:
        for _ in range(3):
            store.save(model, "iris", X_test=X.iloc[::5], y_test=y.iloc[::5])
        marker = store.artifacts.read_json("modelshelf-store.json")
        store.artifacts.write_json("modelshelf-store.json", marker | {"high_water": {"iris": 1}})  # the late put
    finally:
        store.close()
    done = rebuild_index(s3_bucket.url, index_url=postgres_url, artifacts_url=s3_bucket.url, force=True)
    assert (done["versions"], done["skipped"]) == (3, [])
    store = Store(index_url=postgres_url, artifacts_url=s3_bucket.url)
    try:
        assert store.save(model, "iris", X_test=X.iloc[::5], y_test=y.iloc[::5])["version"] == 4
        assert store.evaluate("iris:3").reproduced is True
    finally:
        store.close()


def test_tag_note_and_alias_changes_put_version_json_after_their_commit(counted: tuple[Store, Requests]) -> None:
    store, requests = counted
    model, X, y = _model()
    store.save(model, "iris", X_test=X.iloc[::5], y_test=y.iloc[::5])
    record = store.save(model, "iris", X_test=X.iloc[::5], y_test=y.iloc[::5])
    metadata = record["path"].rsplit("/", 1)[0] + "/version.json"
    requests.calls.clear()
    store.add_tag("iris:2", "prod")
    store.set_note("iris:2", "the better one")
    store.set_alias("iris:1", "best")
    store.set_alias("iris:2", "best")  # a move: both versions' files are rewritten
    assert requests.calls, "the changes put nothing"
    assert [name for name, open_ in requests.calls if open_] == []  # nothing while a transaction is open
    assert requests.names().count("PutObject") == 5  # one per change, two for the move
    doc = store.artifacts.read_json(metadata)
    assert (doc["tags"], doc["note"], doc["aliases"]) == (["prod"], "the better one", ["best"])
    first = store.artifacts.read_json(store.get("iris:1")["path"].rsplit("/", 1)[0] + "/version.json")
    assert first["aliases"] == []
