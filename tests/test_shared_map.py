"""The worker reads a model's bytes from a read-only map of the shared file, and the parent hashes
them while it loads: the same models, the same refusals, the key the parent computed."""

from __future__ import annotations

import copy
import hashlib
import io
import mmap
import os
import pickle
from collections.abc import Iterator

import joblib
import numpy as np
import pytest
import skops.io
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

from core.errors import UnsafeModelError
from core.formats import detect_format
from core.safety import LoadLimits, WorkerPool, load_in_worker, protocol
from core.safety.loader import _load_untrusted

LIMITS = LoadLimits(max_bytes=100_000_000, max_decompressed_bytes=100_000_000, timeout_s=20)


@pytest.fixture(scope="module")
def forest() -> tuple[RandomForestClassifier, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y), X


def _joblib(model: object, compress: int | str = 0) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=compress)
    return buffer.getvalue()


def _files(model: object) -> dict[str, bytes]:
    return {
        "joblib": _joblib(model),
        "joblib-zlib": _joblib(model, 3),
        "pickle": pickle.dumps(model, protocol=5),
        "pickle-1": pickle.dumps(model, protocol=1),
        "skops": skops.io.dumps(model),
    }


def _mapped(data: bytes) -> Iterator[mmap.mmap | bytes]:
    """The bytes as the worker gets them: written to a memfd, mapped read-only."""
    fd = os.memfd_create("test-model-bytes")
    try:
        os.write(fd, data)
        yield protocol.map_shared(fd, len(data))
    finally:
        os.close(fd)


@pytest.mark.parametrize("kind", ["joblib", "joblib-zlib", "pickle", "pickle-1", "skops"])
def test_a_model_read_from_the_map_is_the_one_read_from_bytes(forest, kind: str) -> None:
    model, X = forest
    data = _files(model)[kind]
    for mapped in _mapped(data):
        assert isinstance(mapped, mmap.mmap)
        assert detect_format(mapped) == detect_format(data)
        loaded = _load_untrusted(mapped, limits=LIMITS)
        mapped.close()  # nothing the model holds is a view of the map (close refuses while one is)
    assert loaded.detected == detect_format(data)
    assert np.array_equal(loaded.model.predict(X), model.predict(X))


def test_a_refusal_reads_the_same_from_the_map(forest) -> None:
    model, _X = forest
    hostile = pickle.dumps(copy.deepcopy(model).set_params(criterion="../../etc/passwd"))
    with pytest.raises(UnsafeModelError) as from_bytes:
        _load_untrusted(hostile, limits=LIMITS)
    for mapped in _mapped(hostile):
        with pytest.raises(UnsafeModelError) as from_map:
            _load_untrusted(mapped, limits=LIMITS)
    assert str(from_map.value) == str(from_bytes.value)


def test_bytes_loaded_while_hashed_are_held_under_the_parents_sha256(forest) -> None:
    model, X = forest
    pool = WorkerPool(size=1, max_models=2)
    try:
        data = _joblib(model)
        remote = load_in_worker(data, LIMITS, pool=pool)
        sha256 = hashlib.sha256(data).hexdigest()
        assert remote._sha256 == sha256 and pool._idle[0].held == [sha256]
        assert np.array_equal(remote.predict(X), model.predict(X))  # the worker found it by that key
        with pytest.raises(UnsafeModelError):  # a refusal in between: its key frame is not a request
            load_in_worker(pickle.dumps(copy.deepcopy(model).set_params(criterion="nope")), LIMITS, pool=pool)
        other = _joblib(RandomForestClassifier(n_estimators=3, random_state=1).fit(X, model.predict(X)))
        assert load_in_worker(other, LIMITS, pool=pool)._sha256 == hashlib.sha256(other).hexdigest()
        assert pool._idle[0].held == [sha256, hashlib.sha256(other).hexdigest()]
        assert pool.started == 1
    finally:
        pool.close()
