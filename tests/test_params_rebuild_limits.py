"""A JSON parameter file cannot make the server fit a model for as long as its sender likes.

Rebuilding a boosted model from plain parameters lets scikit-learn set up its private state with a
small fit before the file's trees replace the learned arrays. That fit grows with the classes and
features the file names, and took its depth from the file: a few kilobytes naming 400 classes,
100 features and ``max_depth: null`` kept the server busy for seconds, 10,000 classes for hours,
before a single tree was read. The rebuild now runs in a sandboxed worker under ``load_timeout_s``
(lowered to 1 s here), and the server keeps the model file it sends back as it came, never
holding the object. The hostile documents are built here.
"""

from __future__ import annotations

import json
import time

import pytest

from core import Store
from core.environment import capture_environment
from core.errors import LimitError
from core.importing import import_file
from core.safety import WorkerModel

GENEROUS_S = 30


def _boosting_document(classes: int, features: int) -> bytes:
    """A well-formed parameter file of a gradient-boosting model with no trees, and costly to set up."""
    return json.dumps(
        {
            "format": "modelshelf.params",
            "schema_version": 2,
            "features": [{"name": f"f{i}", "kind": "number"} for i in range(features)],
            "classes": list(range(classes)),
            "classes_dtype": "int64",
            "estimator": "sklearn.ensemble.GradientBoostingClassifier",
            "model": {"type": "gradient_boosting", "trees": [], "learning_rate": 0.1},
            "params": {"max_depth": None},
        }
    ).encode()


def test_a_costly_rebuild_is_stopped_in_the_worker(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSHELF_LOAD_TIMEOUT_S", "1")
    data = _boosting_document(400, 100)
    assert len(data) < 10_000
    cpu, wall = time.process_time(), time.monotonic()
    with pytest.raises(LimitError, match="longer than 1 s"):
        import_file(store, data, "boosted", filename="boosted.json")
    assert time.monotonic() - wall < GENEROUS_S
    assert time.process_time() - cpu < 1.0, "the server process fitted the model itself"
    assert store.count() == 0


def test_a_rebuilt_version_is_the_workers_file_kept_as_it_came(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """An honest parameter file still imports, rebuilt in the worker: this process never holds the model."""
    from sklearn.datasets import load_iris
    from sklearn.ensemble import GradientBoostingClassifier

    from core import formats
    from core.portable.params_export import export_params

    X, y = load_iris(return_X_y=True)
    model = GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, y)
    text = export_params(model, None, None).text

    def refuse(*args, **kwargs):
        raise AssertionError("the rebuilt model was handled in the server process")

    monkeypatch.setattr(formats, "write_model", refuse)
    monkeypatch.setattr(formats, "load_trusted", refuse)
    record = import_file(store, text.encode(), "boosted", filename="boosted.json").record
    assert record["origin"] == "imported" and record["imported"]["from"] == "json"
    assert record["estimator"] == "sklearn.ensemble.GradientBoostingClassifier"
    assert record["dataset"]["n_features"] == 4 and record["imported"]["classes"] == [0, 1, 2]
    # Rebuilt here (in a worker of this interpreter): the whole environment, so it reads as current.
    assert record["environment"] == capture_environment() and store.load("boosted:1").compatibility.status == "ok"
    loaded = store.load("boosted:1")
    assert isinstance(loaded.model, WorkerModel)
    assert list(loaded.model.predict(X[:30])) == list(model.predict(X[:30]))
