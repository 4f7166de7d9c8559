"""Store.load's verified-hash cache: skip re-hashing an unchanged file, never a changed one."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from core.errors import IntegrityError, InvalidParameterError
from core.store import artifacts, saving, verified


@pytest.fixture
def saved(store):
    X = [[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]]
    y = [0, 1, 0, 1]
    record = store.save(LogisticRegression().fit(X, y), "m", X_test=X, y_test=y)
    return store, f"m:{record['version']}", store.artifacts.local_path(record["path"])


@pytest.fixture
def settle_now(monkeypatch):
    """Treat files as settled at once (the real rule waits 2 s after the last change)."""
    monkeypatch.setattr(artifacts, "SETTLE_NS", -1)


def _no_hashing(monkeypatch, store):
    def refuse(*_args, **_kwargs):
        raise AssertionError("the file was read for hashing")

    monkeypatch.setattr(store.artifacts, "read_bytes", refuse)
    monkeypatch.setattr(store.artifacts, "sha256", refuse)
    monkeypatch.setattr(store.artifacts, "read_hashed", refuse)


@pytest.fixture
def unprovable_saves(monkeypatch):
    """A save never proves its file unchanged (as on a file clock coarser than the save's length)."""
    monkeypatch.setattr(verified, "FILE_CLOCK_TICK_NS", 10**18)


@pytest.fixture
def slow_stat_saves(monkeypatch):
    """A save takes its stamp 20 ms after writing: past the file clock's tick (4 ms here), as a save
    with an evaluation set on a real disk usually is."""
    real = saving.saved_stamp

    def later(*args):
        time.sleep(0.02)
        return real(*args)

    monkeypatch.setattr(saving, "saved_stamp", later)


def test_a_fresh_file_is_hashed_and_not_vouched_for(unprovable_saves, saved):
    store, ref, _path = saved
    assert store.index.verified_stamp(store.row(ref)) is None  # the save could not prove it
    store.load(ref)
    assert store.index.verified_stamp(store.row(ref)) is None  # changed < 2 s ago: the stat is not trusted yet


def test_an_unchanged_settled_file_loads_without_rehashing(saved, settle_now, monkeypatch):
    store, ref, _path = saved
    first = store.load(ref)
    assert store.index.verified_stamp(store.row(ref)) is not None
    _no_hashing(monkeypatch, store)
    again = store.load(ref)
    assert again.model.predict([[0.0, 1.0]]).tolist() == first.model.predict([[0.0, 1.0]]).tolist()
    assert store.load(ref, mmap=True).model.coef_.tolist() == first.model.coef_.tolist()
    with pytest.raises(AssertionError, match="read for hashing"):
        store.load(ref, verify="full")  # full always hashes


def test_a_same_size_edit_with_mtime_put_back_is_still_caught(saved, settle_now):
    store, ref, path = saved
    store.load(ref)
    before = os.stat(path)
    time.sleep(0.05)  # past the timestamp tick of the recorded stat
    data = bytearray(Path(path).read_bytes())
    data[-3] ^= 0xFF
    with open(path, "r+b") as handle:
        handle.write(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime restored; ctime cannot be
    assert os.stat(path).st_size == before.st_size
    with pytest.raises(IntegrityError, match="integrity check"):
        store.load(ref)
    with pytest.raises(IntegrityError, match="integrity check"):
        store.load(ref, mmap=True)


def test_a_replaced_file_is_caught(saved, settle_now):
    store, ref, path = saved
    store.load(ref)
    os.replace(path, path + ".old")
    data = bytearray(Path(path + ".old").read_bytes())
    data[-3] ^= 0xFF
    with open(path, "wb") as dst:
        dst.write(bytes(data))
    with pytest.raises(IntegrityError):
        store.load(ref)


def test_missing_file_and_bad_verify_value(saved, settle_now):
    store, ref, path = saved
    with pytest.raises(InvalidParameterError, match="verify"):
        store.load(ref, verify="never")
    store.load(ref)
    os.remove(path)
    with pytest.raises(IntegrityError, match="missing"):
        store.load(ref)


def test_deleting_a_version_drops_its_stamp(saved, settle_now):
    store, ref, _path = saved
    store.load(ref)
    row = store.row(ref)
    store.delete(ref)
    assert store.index.verified_stamp(row) is None


def test_the_first_load_after_a_save_does_not_hash_again(slow_stat_saves, saved, monkeypatch):
    store, ref, _path = saved
    assert store.index.verified_stamp(store.row(ref)) is not None  # recorded by the save
    _no_hashing(monkeypatch, store)
    assert store.load(ref).model.predict([[0.0, 1.0]]).tolist() == [0]


def test_a_file_changed_right_after_its_save_is_still_caught(slow_stat_saves, saved):
    """No sleep before the edit: the save's proof is that any later write moves the ctime on."""
    store, ref, path = saved
    before = os.stat(path)
    assert store.index.verified_stamp(store.row(ref)) == artifacts.stamp_of(before)
    data = bytearray(Path(path).read_bytes())
    data[-3] ^= 0xFF
    with open(path, "r+b") as handle:
        handle.write(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime restored; ctime cannot be
    with pytest.raises(IntegrityError, match="integrity check"):
        store.load(ref)


@pytest.mark.parametrize(("fmt", "compress"), [(None, 0), ("joblib", 0), (None, 3)])
def test_the_stored_file_opens_with_plain_pickle_or_joblib(store, fmt, compress):
    """One file, no ModelShelf needed: the default is a protocol-5 pickle, joblib when compressed or asked."""
    import pickle

    import joblib

    X, y = [[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]], [0, 1, 0, 1]
    record = store.save(LogisticRegression().fit(X, y), "plain", format=fmt, compress=compress)
    path = Path(store.artifacts.local_path(record["path"]))
    assert [p.name for p in path.parent.iterdir() if p.name.startswith("model")] == [path.name]
    expected = "pickle" if fmt is None and not compress else "joblib"
    assert record["format"] == expected and path.suffix == (".pkl" if expected == "pickle" else ".joblib")
    if expected == "pickle":
        with open(path, "rb") as handle:
            assert handle.read(2) == b"\x80\x05"  # protocol 5
            handle.seek(0)
            model = pickle.load(handle)
    else:
        model = joblib.load(path)
    assert model.predict(X).tolist() == y
