import multiprocessing
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from core import Store, formats, load_dataset, train
from core.errors import ConflictError, IntegrityError, InvalidParameterError, NotFoundError
from tests.conftest import PIMA_NAMES, TUTORIAL_ACCURACY


@pytest.fixture(scope="module")
def iris_result():
    return train(load_dataset("builtin:iris"), "logistic_regression", {"max_iter": 500})


@pytest.fixture(scope="module")
def tutorial_result(pima_path):
    ds = load_dataset(str(pima_path), names=PIMA_NAMES, target="class")
    return train(ds, "logistic_regression", {"solver": "liblinear"}, test_size=0.33, seed=7)


@pytest.mark.parametrize("fmt", ["pickle", "joblib", "skops"])
def test_save_load_evaluate_reproduces_the_tutorial(store, tutorial_result, fmt):
    record = store.save_trained(tutorial_result, "pima", format=fmt)
    assert record["version"] == 1 and record["format"] == fmt
    assert record["metrics"]["accuracy"] == TUTORIAL_ACCURACY
    loaded = store.load("pima")
    assert loaded.compatibility.status == "ok" and loaded.warnings == []
    evaluation = store.evaluate("pima:1")
    assert evaluation.accuracy == TUTORIAL_ACCURACY and evaluation.reproduced is True


def test_record_has_every_documented_key(store, tutorial_result):
    record = store.save_trained(tutorial_result, "pima", tags=["tutorial"], note="liblinear")
    documented = (
        "name version created_at format compression uri size_bytes sha256 estimator params metrics split "
        "dataset environment warnings tags aliases note"
    )
    for key in documented.split(" "):
        assert key in record, key
    assert record["created_at"].endswith("+00:00")
    assert record["estimator"] == "sklearn.linear_model.LogisticRegression"
    assert record["params"]["solver"] == "liblinear"
    assert set(record["split"]) == {"test_size", "random_state", "stratify", "n_train", "n_test"}
    assert {"source", "fingerprint", "n_rows", "n_features", "feature_names", "target", "classes"} <= set(
        record["dataset"]
    )
    assert {"python_version", "platform", "packages"} <= set(record["environment"])
    assert {"scikit-learn", "numpy", "scipy", "joblib", "pandas", "skops"} <= set(record["environment"]["packages"])
    assert record["tags"] == ["tutorial"] and record["note"] == "liblinear"
    assert store.get("pima:1") == record
    assert Path(record["uri"].removeprefix("file://")).stat().st_size == record["size_bytes"]


def test_python_api_with_plain_arrays_like_the_tutorial(store, pima_path):
    data = np.loadtxt(pima_path, delimiter=",")
    X_train, X_test, y_train, y_test = train_test_split(data[:, :8], data[:, 8], test_size=0.33, random_state=7)
    model = LogisticRegression(solver="liblinear").fit(X_train, y_train)
    record = store.save(model, name="tutorial", X_test=X_test, y_test=y_test, format="pickle")
    assert record["metrics"]["accuracy"] == TUTORIAL_ACCURACY
    assert store.load("tutorial:1").model.score(X_test, y_test) == TUTORIAL_ACCURACY
    assert store.evaluate("tutorial").reproduced is True


def test_evaluate_on_given_data_resplits_the_same_way(store, tutorial_result, pima_path):
    store.save_trained(tutorial_result, "pima")
    evaluation = store.evaluate("pima", data=str(pima_path), names=PIMA_NAMES)
    assert evaluation.accuracy == TUTORIAL_ACCURACY and evaluation.fingerprint_match is True


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("fmt", ["pickle", "joblib", "skops"])
def test_flipped_byte_is_refused_before_anything_is_unpickled(store, store_path, iris_result, fmt, monkeypatch):
    record = store.save_trained(iris_result, "iris", format=fmt)
    _flip_one_byte(store_path / record["path"])
    called = []
    monkeypatch.setattr(formats, "load_trusted", lambda *a, **k: called.append(a))
    with pytest.raises(IntegrityError, match="failed its integrity check"):
        store.load("iris")
    with pytest.raises(IntegrityError):
        store.evaluate("iris")
    with pytest.raises(IntegrityError):
        store.load("iris", mmap=True)
    with pytest.raises(IntegrityError):
        store.read_artifact("iris")
    assert called == []


def test_tampered_evaluation_set_is_refused(store, store_path, iris_result):
    record = store.save_trained(iris_result, "iris")
    _flip_one_byte(store_path / record["evaluation_set"]["path"])
    with pytest.raises(IntegrityError, match="evaluation set"):
        store.evaluate("iris")


def test_missing_file_is_an_integrity_error(store, store_path, iris_result):
    record = store.save_trained(iris_result, "iris")
    (store_path / record["path"]).unlink()
    with pytest.raises(IntegrityError, match="missing"):
        store.load("iris")


def test_mmap_load_of_uncompressed_joblib(store, iris_result):
    store.save_trained(iris_result, "iris", format="joblib")
    loaded = store.load("iris", mmap=True)
    X, y = store.evaluation_set("iris")
    assert loaded.model.score(X, y) == loaded.record["metrics"]["accuracy"]


def test_versions_aliases_tags_notes(store, iris_result):
    for _ in range(3):
        store.save_trained(iris_result, "iris")
    assert [r["version"] for r in store.list()] == [3, 2, 1]
    assert store.get("iris")["version"] == 3
    store.set_alias("iris:2", "production")
    assert store.get("iris@production")["version"] == 2
    store.set_alias("iris:1", "production")
    assert store.get("iris@production")["version"] == 1
    assert store.get("iris:2")["aliases"] == []
    store.add_tag("iris:3", "candidate")
    assert [r["version"] for r in store.list(tag="candidate")] == [3]
    assert store.remove_tag("iris:3", "candidate") and store.list(tag="candidate") == []
    assert store.set_note("iris:3", "retrained")["note"] == "retrained"
    assert store.remove_alias("iris", "production") is True
    with pytest.raises(NotFoundError, match="no alias @production"):
        store.get("iris@production")


def test_delete_frees_bytes_and_needs_force_when_aliased(store, store_path, iris_result):
    record = store.save_trained(iris_result, "iris")
    store.save_trained(iris_result, "iris")
    store.set_alias("iris:1", "production")
    with pytest.raises(ConflictError, match="aliased as @production"):
        store.delete("iris:1")
    assert (store_path / record["path"]).exists()
    folder = (store_path / record["path"]).parent
    metadata = (folder / "version.json").stat().st_size  # the version's own metadata file goes too
    freed = store.delete("iris:1", force=True)
    assert freed == record["size_bytes"] + record["evaluation_set"]["size_bytes"] + metadata
    assert not folder.exists()
    assert [r["version"] for r in store.list()] == [2]
    with pytest.raises(NotFoundError):
        store.get("iris:1")
    assert store.save_trained(iris_result, "iris")["version"] == 3


def test_list_sorts_filters_and_limits(store, iris_result, tutorial_result):
    store.save_trained(iris_result, "iris", tags=["a"])
    store.save_trained(tutorial_result, "pima", tags=["b"])
    store.save_trained(iris_result, "iris-copy")
    assert [r["name"] for r in store.list(sort="name")] == ["iris", "iris-copy", "pima"]
    accuracies = [r["metrics"]["accuracy"] for r in store.list(sort="accuracy")]
    assert accuracies == sorted(accuracies, reverse=True)
    assert [r["name"] for r in store.list(name="iris")] == ["iris-copy", "iris"]
    assert store.count(name="iris") == 2 and store.count() == 3
    assert len(store.list(limit=1)) == 1 and store.list(limit=1, offset=1)[0]["name"] == "pima"
    assert [r["name"] for r in store.list(name="%")] == []
    assert list(store.table(limit=2)["ref"]) == ["iris-copy:1", "pima:1"]
    with pytest.raises(InvalidParameterError, match="sort"):
        store.list(sort="size")


def test_list_never_opens_a_model_file(store, store_path, iris_result, monkeypatch):
    for _ in range(3):
        store.save_trained(iris_result, "iris")
    opened = []
    monkeypatch.setattr(store.artifacts.fs, "open", lambda *a, **k: opened.append(a))
    for path in store_path.glob("iris/*/model.*"):
        path.unlink()  # listing must not even need the files
    assert len(store.list()) == 3 and len(store.table()) == 3 and store.get("iris")["version"] == 3
    assert opened == []


@pytest.mark.parametrize("name", ["../../etc", "a/b", "", ".hidden", "x" * 101, "a..b", "name with space"])
def test_bad_names_are_refused_and_nothing_is_written(store, store_path, iris_result, name):
    with pytest.raises(InvalidParameterError, match="Invalid model name"):
        store.save_trained(iris_result, name)
    assert store.count() == 0
    assert [
        p
        for p in store_path.iterdir()
        if p.name not in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm", "modelshelf-store.json")
    ] == []


def test_failed_write_leaves_no_row_and_no_file(store, store_path, iris_result, monkeypatch):
    def broken(model, handle, fmt, compress):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(formats, "write_model", broken)
    with pytest.raises(OSError, match="disk full"):
        store.save_trained(iris_result, "iris")
    assert store.count() == 0
    assert list(store_path.glob("iris/*")) == []


def test_failed_index_insert_leaves_no_file(store, store_path, iris_result, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("index went away")

    monkeypatch.setattr(store.index, "insert_version", broken)
    with pytest.raises(RuntimeError):
        store.save_trained(iris_result, "iris")
    assert store.count() == 0
    assert list(store_path.glob("iris/*")) == []


def _save_in_another_process(args):
    path, start = args
    from core import Store, load_dataset, train

    result = train(load_dataset("builtin:iris"), "naive_bayes")
    store = Store(path)
    time.sleep(max(0.0, start - time.time()))
    return store.save_trained(result, "shared")["version"]


def test_eight_processes_saving_one_name_get_versions_one_to_eight(store_path):
    Store(store_path).close()
    start = time.time() + 3.0
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        got = pool.map(_save_in_another_process, [(str(store_path), start)] * 8)
    assert sorted(got) == list(range(1, 9))
    store = Store(store_path)
    assert sorted(r["version"] for r in store.list(name="shared")) == list(range(1, 9))
    for r in store.list():
        assert store.read_artifact(f"shared:{r['version']}")


def test_references_are_checked(store):
    with pytest.raises(InvalidParameterError, match="whole number"):
        store.get("iris:abc")
    with pytest.raises(NotFoundError, match="No model named 'ghost'"):
        store.get("ghost")


def test_predict_table_adds_predictions_and_probabilities(store, iris_result):
    store.save_trained(iris_result, "iris")
    ds = load_dataset("builtin:iris")
    table = store.predict("iris", ds.X.head(5))
    assert list(table.columns[-4:]) == ["prediction", "proba_0", "proba_1", "proba_2"]
    assert np.allclose(table[["proba_0", "proba_1", "proba_2"]].sum(axis=1), 1.0)


def test_load_folds_inconsistent_version_warnings(store, iris_result, monkeypatch):
    store.save_trained(iris_result, "iris")

    def noisy_load(*args, **kwargs):
        for name in ["DecisionTreeClassifier"] * 50 + ["RandomForestClassifier"]:
            warnings.warn(
                InconsistentVersionWarning(
                    estimator_name=name, current_sklearn_version="1.9.1", original_sklearn_version="1.5.2"
                ),
                stacklevel=1,
            )
        return iris_result.model

    monkeypatch.setattr(formats, "load_trusted", noisy_load)
    loaded = store.load("iris")
    assert len(loaded.warnings) == 1
    assert "1.5.2" in loaded.warnings[0] and "1.9.1" in loaded.warnings[0] and "51" in loaded.warnings[0]


def test_other_backends_plug_in_through_urls(tmp_path, iris_result):
    """An fsspec URL for the files and a SQLAlchemy URL for the index: callers do not change."""
    remote = Store(index_url=f"sqlite:///{tmp_path / 'index.db'}", artifacts_url="memory://modelshelf-test")
    try:
        record = remote.save_trained(iris_result, "iris", format="skops")
        assert record["uri"].startswith("memory://")
        assert remote.evaluate("iris").reproduced is True
        assert remote.load("iris", mmap=True).model is not None  # no local path: falls back to bytes
        metadata = len(remote.artifacts.read_bytes(record["path"].rsplit("/", 1)[0] + "/version.json"))
        assert remote.delete("iris") == record["size_bytes"] + record["evaluation_set"]["size_bytes"] + metadata
    finally:
        remote.close()
    with pytest.raises(InvalidParameterError, match="needs an index_url"):
        Store(artifacts_url="memory://elsewhere")


def test_update_tags_checks_every_tag_before_writing_any(store, iris_result):
    store.save_trained(iris_result, "iris", tags=["old"])
    with pytest.raises(InvalidParameterError, match="Invalid tag '1bad'"):
        store.update_tags("iris", add=["good", "1bad"], remove=["old"])
    assert store.get("iris")["tags"] == ["old"]
    assert store.update_tags("iris", add=["good", "new"], remove=["old"])["tags"] == ["good", "new"]


def test_versions_lists_only_those_that_exist(store, iris_result):
    for _ in range(3):
        store.save_trained(iris_result, "iris")
    store.delete("iris:2")
    assert store.versions("iris") == [3, 1]


def test_not_found_messages_do_not_reveal_the_store_path(store, store_path):
    for ref in ("ghost", "ghost:2", "ghost@prod"):
        with pytest.raises(NotFoundError) as info:
            store.get(ref)
        assert str(store_path) not in str(info.value)


@pytest.mark.parametrize(
    ("text", "suffix", "expected"),
    [
        ("my model.pkl", "", "my-model"),
        ("builtin:iris", "random_forest", "iris-random_forest"),
        ("https://x.org/pima-indians-diabetes.data.csv", "svc", "pima-indians-diabetes.data-svc"),
        ("_x.csv", "knn", "x-knn"),
        ("../../etc/passwd", "", "passwd"),
        ("...", "", "model"),
        ("a" * 300 + ".joblib", "", "a" * 99),
    ],
)
def test_suggested_names_are_always_valid(text, suffix, expected):
    from core.refs import check_name, suggest_name

    assert suggest_name(text, suffix) == expected
    assert check_name(expected) == expected


def test_save_load_import_and_delete_each_log_one_info_line(store, caplog):
    """``core.store`` logs at INFO (silent unless a front end turns logging on, as ``--verbose`` will)."""
    import logging
    import pickle

    result = train(load_dataset("builtin:iris"), "logistic_regression")
    steps = {
        "saved iris:1": lambda: store.save_trained(result, "iris"),
        "loaded iris:1": lambda: store.load("iris:1"),
        "imported other:1": lambda: store.import_model(pickle.dumps(result.model), "other"),
        "deleted iris:1": lambda: store.delete("iris:1"),
    }
    for expected, step in steps.items():
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="core.store"):
            step()
        lines = [r.getMessage() for r in caplog.records if r.name.startswith("core.store")]
        assert len(lines) == 1 and lines[0].startswith(expected), lines
        assert caplog.records[0].levelno == logging.INFO
    for name in ("core.store", "core.store.saving", "core.store.loading", "core.store.facade"):
        logger = logging.getLogger(name)  # the store configures no level or handler: silent by default
        assert (logger.level, logger.handlers) == (logging.NOTSET, [])
