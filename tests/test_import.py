"""Store.import_model and ``python -m core import``: the original bytes kept, nothing on failure."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import sklearn

from core import Store
from core.cli import main
from core.datasets import load_dataset
from core.errors import DatasetError, InvalidParameterError, ModelShelfError, UnsafeModelError
from core.formats import dumps, sha256_bytes
from core.training import train

FIXTURES = Path(__file__).resolve().parent / "fixtures"


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def iris_model():
    return train(load_dataset("builtin:iris"), "logistic_regression", {}, scale=True)


def _store_files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and "index.sqlite" not in p.name)


def test_import_keeps_the_original_bytes_and_scores(store: Store, iris_model) -> None:
    data = dumps(iris_model.model, "joblib", 3)
    record = store.import_model(
        data, "uploaded", filename="m.joblib", dataset=load_dataset("builtin:iris"), tags=["demo"], note="<b>hi</b>"
    )
    assert record["origin"] == "imported"
    assert record["sha256"] == sha256_bytes(data)
    assert (record["format"], record["compression"]) == ("joblib", "zlib")
    assert record["estimator"] == "sklearn.linear_model.LogisticRegression"
    assert record["imported"]["sklearn_version"] == sklearn.__version__
    assert record["imported"]["filename"] == "m.joblib"
    assert record["metrics"]["accuracy"] == iris_model.metrics["accuracy"]  # same split, same rows
    assert record["split"]["n_test"] == len(iris_model.X_test)
    assert store.read_artifact("uploaded:1") == data
    assert store.get("uploaded")["note"] == "<b>hi</b>"
    evaluation = store.evaluate("uploaded:1")
    assert evaluation.reproduced is True
    loaded = store.load("uploaded:1")  # stored strangers' files reload in a sandboxed worker
    assert type(loaded.model).__name__ == "WorkerModel"
    assert loaded.model.estimator == record["estimator"]
    assert type(store.load("uploaded:1", trust=True).model).__name__ == "Pipeline"  # the explicit way


def test_import_without_data_and_the_row_says_what_the_file_said(store: Store, iris_model) -> None:
    data = pickle.dumps(iris_model.model, protocol=2)
    record = store.import_model(data, "plain")
    assert (record["format"], record["protocol"], record["metrics"]) == ("pickle", 2, {})
    assert record["evaluation_set"] is None
    row = store.table().iloc[0]
    assert (row["origin"], row["sklearn"]) == ("imported", sklearn.__version__)


def test_failed_imports_store_nothing(store: Store, store_path: Path, tmp_path: Path, iris_model) -> None:
    marker = tmp_path / "pwned"
    before = _store_files(store_path)
    with pytest.raises(UnsafeModelError, match="system is not allowed"):
        store.import_model(pickle.dumps(Payload(marker)), "evil")
    with pytest.raises(DatasetError, match=r"expects 13 feature columns; the data has 4|lacks"):
        wine = train(load_dataset("builtin:wine"), "naive_bayes", {}).model
        store.import_model(dumps(wine, "pickle"), "wine", dataset=load_dataset("builtin:iris"))
    with pytest.raises(InvalidParameterError, match="Invalid model name"):
        store.import_model(dumps(iris_model.model, "pickle"), "../../escape")
    assert store.count() == 0
    assert _store_files(store_path) == before
    assert not marker.exists()
    assert not (tmp_path / "escape").exists()


def _cli(store_path: Path, *args: str) -> int:
    return main(["--store", str(store_path), *args])


def test_cli_import_success_with_data(store_path: Path, capsys) -> None:
    fixture = FIXTURES / "sklearn-1.7.2" / "random_forest.pkl"
    code = _cli(store_path, "import", str(fixture), "--name", "rf", "--data", "builtin:iris", "--seed", "3", "--json")
    out = capsys.readouterr()
    assert code == 0, out.err
    record = json.loads(out.out)
    assert record["imported"]["sklearn_version"] == "1.7.2"
    assert record["split"]["random_state"] == 3
    assert 0.5 < record["metrics"]["accuracy"] <= 1.0
    assert any("saved with scikit-learn 1.7.2" in w for w in record["warnings"])
    assert record["sha256"] == sha256_bytes(fixture.read_bytes())
    code = _cli(store_path, "import", str(fixture), "--name", "rf")
    text = capsys.readouterr().out
    assert code == 0
    assert "as rf:2" in text and "saved with   scikit-learn 1.7.2" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "Not a model file"),
        (b"", "The file is empty"),
        (None, "is not allowed"),
        ("missing", "No such file"),
    ],
)
def test_cli_import_failures_exit_1_with_one_line(store_path: Path, tmp_path: Path, capsys, content, message) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "upload.pkl"
    if content == "missing":
        path = tmp_path / "nope.pkl"
    else:
        path.write_bytes(pickle.dumps(Payload(marker)) if content is None else content)
    code = _cli(store_path, "import", str(path), "--name", "x", "--data", "builtin:iris")
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert Store(store_path).count() == 0
    assert not marker.exists()


def test_imported_version_still_loads_after_the_upload_limit_is_lowered(store_path, monkeypatch):
    forest = train(load_dataset("builtin:digits"), "random_forest", {"n_estimators": 40}).model
    data = dumps(forest, "joblib")
    assert len(data) > 1_000_000
    store = Store(store_path)
    store.import_model(data, "digits")
    monkeypatch.setenv("MODELSHELF_MAX_UPLOAD_MB", "1")  # now below the stored file's size
    assert store.load("digits").model is not None
    with pytest.raises(ModelShelfError, match=r"MB|bytes|limit"):
        store.import_model(data, "digits")  # new uploads do obey the lowered limit
