"""Exports kept beside a version and recorded in it; ONNX prediction; how-to-load snippets that run."""

from __future__ import annotations

import contextlib
import io
import json
import runpy
import zipfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from core import load_dataset, train
from core.errors import FormatError, IntegrityError, InvalidParameterError
from core.frames import predict_table
from core.portable import params_predict
from core.portable.derived import ensure_onnx, ensure_params
from core.portable.exports import (
    export_status,
    export_version,
    predict_rows,
    predict_with_onnx,
)
from core.portable.how_to_load import (
    DOWNLOAD_FORMATS,
    PREDICTOR_FILENAME,
    download_filename,
    how_to_load,
    predictor_source,
    skops_types,
)
from core.portable.onnx_export import NotConvertibleError
from core.portable.onnx_meta import read_onnx
from core.portable.onnx_runtime import _sessions, run_onnx
from core.portable.requirements import environment_report, requirements_txt
from tests.portable_support import custom_step_model, mixed_csv, trained


@pytest.fixture
def saved(store):
    record = store.save_trained(trained("builtin:iris", "random_forest"), "iris")
    return store, record


def test_exports_are_kept_beside_the_version_and_recorded(saved):
    store, record = saved
    data, info = ensure_onnx(store, "iris")
    folder = record["path"].rsplit("/", 1)[0]
    assert info["path"] == f"{folder}/model.onnx" and info["status"] == "ok"
    assert info["parity"]["passed"] and info["tolerance"] == 1e-4 and info["model_sha256"] == record["sha256"]
    _, json_info = ensure_params(store, "iris:1")
    assert json_info["exact"] and json_info["rows_checked"] == record["evaluation_set"]["n_rows"]
    exports = store.get("iris")["exports"]
    assert exports["onnx"]["sha256"] == info["sha256"] and exports["json"]["path"] == f"{folder}/params.json"
    # The second call reads the checked file back instead of converting again.
    again, again_info = ensure_onnx(store, "iris")
    assert again == data and again_info["exported_at"] == info["exported_at"]
    # The model file itself is untouched and still loads.
    assert store.get("iris")["sha256"] == record["sha256"]
    store.load("iris")


def test_a_damaged_export_is_made_again_not_served(saved):
    store, _ = saved
    _, info = ensure_onnx(store, "iris")
    path = store.artifacts.full_path(info["path"])
    with open(path, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x01\x02")
    data, fresh = ensure_onnx(store, "iris")
    assert fresh["exported_at"] >= info["exported_at"]
    read_onnx(data)
    labels, _ = run_onnx(data, store.evaluation_set("iris")[0])
    assert len(labels) == store.get("iris")["evaluation_set"]["n_rows"]


def test_refusals_are_recorded_with_their_reason(store):
    store.save_trained(trained("builtin:iris", "hist_gradient_boosting"), "hgb")
    with pytest.raises(NotConvertibleError, match=r"^not convertible: HistGradientBoostingClassifier"):
        export_version(store, "hgb", "onnx")
    exports = store.get("hgb")["exports"]
    assert exports["onnx"]["status"] == "refused" and "HistGradientBoosting" in exports["onnx"]["reason"]
    assert not store.artifacts.exists(store.get("hgb")["path"].rsplit("/", 1)[0] + "/model.onnx")
    # ONNX refuses it, the JSON form (schema version 2) carries it exactly.
    document = json.loads(export_version(store, "hgb", "json").data)
    assert document["model"]["type"] == "hist_gradient_boosting"
    assert store.get("hgb")["exports"]["json"]["status"] == "ok"
    assert store.get("hgb")["exports"]["json"]["schema_version"] == 2
    model, X, y = custom_step_model()
    store.save(model, "custom", X_test=X, y_test=y)
    with pytest.raises(FormatError, match="not exportable as JSON parameters: only a ColumnTransformer"):
        export_version(store, "custom", "json")
    assert store.get("custom")["exports"]["json"]["status"] == "refused"
    assert not store.artifacts.exists(store.get("custom")["path"].rsplit("/", 1)[0] + "/params.json")


def test_export_status_tells_a_page_what_is_available(store):
    store.save_trained(trained("builtin:iris", "svc"), "svc")
    assert export_status(store.get("svc"))["onnx"] == {"status": "not yet", "reason": None}
    export_version(store, "svc", "onnx")
    export_version(store, "svc", "json")
    status = export_status(store.get("svc"))
    assert status["onnx"]["status"] == "ok" and status["joblib"]["status"] == "ok" and status["json"]["status"] == "ok"
    model, X, y = custom_step_model()
    store.save(model, "custom", X_test=X, y_test=y)
    with pytest.raises(FormatError):
        export_version(store, "custom", "json")
    status = export_status(store.get("custom"))
    assert status["json"]["status"] == "refused" and status["json"]["reason"].startswith("not exportable")


def test_delete_removes_the_exports_too(saved):
    store, record = saved
    ensure_onnx(store, "iris")
    ensure_params(store, "iris")
    folder = record["path"].rsplit("/", 1)[0]
    assert store.artifacts.exists(f"{folder}/model.onnx") and store.artifacts.exists(f"{folder}/params.json")
    store.delete("iris:1")
    assert not store.artifacts.exists(f"{folder}/model.onnx") and not store.artifacts.exists(f"{folder}/params.json")


def test_attach_file_refuses_to_replace_the_model_or_escape_the_folder(saved):
    store, _ = saved
    for bad in ("model.joblib", "evaluation.parquet", "../x.onnx", ".hidden"):
        with pytest.raises(InvalidParameterError):
            store.attach_file("iris", bad, b"x")


def test_pickle_joblib_skops_downloads(saved):
    store, record = saved
    same = export_version(store, "iris", "pickle")  # the default format: the stored file itself
    assert same.info["same_file"] and same.data == store.read_artifact("iris")
    assert same.filename == "iris-v1.pkl"
    X, _ = store.evaluation_set("iris")
    for fmt in ("joblib", "skops"):
        exported = export_version(store, "iris", fmt)
        assert exported.info["same_file"] is False and exported.filename == download_filename(record, fmt)
        from core.formats import load_trusted

        np.testing.assert_array_equal(load_trusted(exported.data, fmt).predict(X), store.load("iris").model.predict(X))


def test_predict_with_onnx_matches_sklearn_and_caches_the_session(saved):
    store, _ = saved
    X, _ = store.evaluation_set("iris")
    expected = predict_table(store.load("iris").model, X, store.get("iris"))
    got = predict_with_onnx(store, "iris", X)
    assert list(got.columns) == list(expected.columns)
    np.testing.assert_array_equal(got["prediction"], expected["prediction"])
    np.testing.assert_allclose(got.filter(like="proba_"), expected.filter(like="proba_"), atol=1e-4)
    sha = store.get("iris")["exports"]["onnx"]["sha256"]
    assert sha in _sessions
    one = predict_with_onnx(store, "iris", X.head(1))
    assert len(one) == 1 and one["prediction"].iloc[0] == expected["prediction"].iloc[0]


def test_predict_with_onnx_on_text_columns(store):
    dataset = load_dataset(mixed_csv(), target="bought")
    store.save_trained(train(dataset, "logistic_regression"), "shop")
    X, _ = store.evaluation_set("shop")
    got = predict_with_onnx(store, "shop", X)
    np.testing.assert_array_equal(got["prediction"].astype(str), store.predict("shop", X)["prediction"].astype(str))


def _onnx_with_external_tensor() -> bytes:
    tensor = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        initializer=[tensor],
    )
    return helper.make_model(graph).SerializeToString()


def test_onnx_files_that_reference_external_data_are_refused():
    data = _onnx_with_external_tensor()
    with pytest.raises(FormatError, match="references external data \\(tensor 'w'\\)"):
        read_onnx(data)
    with pytest.raises(FormatError, match="external data"):
        run_onnx(data, None)
    with pytest.raises(FormatError, match="Not an ONNX model"):
        read_onnx(b"definitely not protobuf \xff\xff\xff")
    assert onnx.load_model_from_string(data).graph.initializer[0].name == "w"  # the test file is well formed


def _write_rows(tmp_path, X):
    X.to_csv(tmp_path / "new_rows.csv", index=False)


@pytest.mark.parametrize("fmt", DOWNLOAD_FORMATS)
def test_how_to_load_snippets_run_and_predict_what_the_store_predicts(saved, fmt, tmp_path, monkeypatch):
    store, _ = saved
    exported = export_version(store, "iris", fmt)
    record = store.get("iris")
    (tmp_path / exported.filename).write_bytes(exported.data)
    X, _ = store.evaluation_set("iris")
    _write_rows(tmp_path, X)
    (tmp_path / PREDICTOR_FILENAME).write_text(predictor_source())
    types = skops_types(exported.data) if fmt == "skops" else None
    snippet = how_to_load(record, fmt, skops_types=types)
    assert snippet.startswith("# pip install ")
    assert "scikit-learn==" in snippet or fmt in ("onnx", "json")
    assert exported.filename in snippet
    (tmp_path / "snippet.py").write_text(snippet)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        runpy.run_path(str(tmp_path / "snippet.py"), run_name="__main__")
    expected = store.predict("iris", X)["prediction"].tolist()
    numbers = [int(t) for t in printed.getvalue().replace("[", " ").replace("]", " ").split() if t.isdigit()]
    assert numbers[-len(expected) :] == expected


def test_requirements_pin_the_saved_versions_and_report_differences(saved):
    _, record = saved
    text = requirements_txt(record)
    assert f"scikit-learn=={record['environment']['packages']['scikit-learn']}" in text.splitlines()
    old = json.loads(json.dumps(record))
    old["environment"]["packages"]["scikit-learn"] = "0.24.2"
    report = environment_report(old)
    assert "scikit-learn==0.24.2" in report["requirements"]
    assert report["status"] == "error"
    assert [d["package"] for d in report["compatibility"]["differences"]] == ["scikit-learn"]


def test_exports_refuse_a_damaged_model_file(saved):
    store, record = saved
    with open(store.artifacts.full_path(record["path"]), "r+b") as handle:
        handle.seek(50)
        handle.write(b"\xff\xfe")
    with pytest.raises(IntegrityError):
        export_version(store, "iris", "onnx")
    with pytest.raises(IntegrityError):
        export_version(store, "iris", "bundle")


def test_bundle_contents_and_determinism(saved):
    store, record = saved
    first = export_version(store, "iris", "bundle")
    second = export_version(store, "iris", "bundle")
    assert first.data == second.data and first.filename == "iris-v1.zip"
    archive = zipfile.ZipFile(io.BytesIO(first.data))
    names = set(archive.namelist())
    assert names == {
        "manifest.json",
        "model.pkl",
        "metadata.json",
        "requirements.txt",
        "evaluation.parquet",
        "model.onnx",
        "params.json",
        "predict_params.py",
        "README.md",
    }
    manifest = json.loads(archive.read("manifest.json"))
    assert set(manifest["files"]) == names - {"manifest.json"}
    assert manifest["model"]["sha256"] == record["sha256"]
    card = archive.read("README.md").decode()
    for part in ("# Model description", "Intended uses", "Hyperparameters", "n_estimators", "accuracy", "**onnx**"):
        assert part in card
    assert json.loads(archive.read("metadata.json"))["sha256"] == record["sha256"]


def test_a_bare_estimator_fitted_on_arrays_exports_too(store):
    from sklearn.datasets import load_breast_cancer
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_breast_cancer(return_X_y=True)
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X[:400], y[:400])
    store.save(model, "bare", X_test=X[400:], y_test=y[400:])
    frame, _ = store.evaluation_set("bare")
    expected = model.predict(X[400:])
    document = json.loads(export_version(store, "bare", "json").data)
    assert [f["name"] for f in document["features"]][:2] == ["x0", "x1"] and document["preprocess"] is None
    np.testing.assert_array_equal(params_predict.predict(document, frame), expected)
    np.testing.assert_array_equal(predict_with_onnx(store, "bare", frame)["prediction"], expected)


def test_without_an_evaluation_set_exports_say_they_are_unchecked(store):
    result = trained("builtin:iris", "decision_tree")
    store.save(result.model, "plain")  # no X_test / y_test: nothing to prove the exports on
    _, onnx_info = ensure_onnx(store, "plain")
    _, json_info = ensure_params(store, "plain")
    assert onnx_info["parity"] is None
    assert json_info["exact"] is None and json_info["rows_checked"] == 0


def test_predict_rows_auto_uses_onnx_when_it_can_and_sklearn_otherwise(store):
    store.save_trained(trained("builtin:iris", "random_forest"), "rf")
    store.save_trained(trained("builtin:iris", "hist_gradient_boosting"), "hgb")
    X, _ = store.evaluation_set("rf")
    table, engine = predict_rows(store, "rf", X.head(1))
    assert engine == "onnx" and table["prediction"].iloc[0] == store.predict("rf", X.head(1))["prediction"].iloc[0]
    for _ in range(2):  # the first call records the refusal, the second goes straight to sklearn
        table, engine = predict_rows(store, "hgb", X.head(1))
        assert engine == "sklearn" and len(table) == 1
    assert store.get("hgb")["exports"]["onnx"]["status"] == "refused"
    assert predict_rows(store, "rf", X.head(2), engine="sklearn")[1] == "sklearn"
    with pytest.raises(NotConvertibleError):
        predict_rows(store, "hgb", X.head(1), engine="onnx")
    with pytest.raises(InvalidParameterError, match="Unknown engine 'tpu'"):
        predict_rows(store, "rf", X, engine="tpu")


def test_an_onnx_model_the_runtime_cannot_run_is_recorded_as_refused(saved, monkeypatch):
    from core.portable import conversions

    def broken(*args, **kwargs):
        raise FormatError("onnxruntime could not load the converted model")

    store, _ = saved
    monkeypatch.setattr(conversions, "export_onnx", broken)
    with pytest.raises(NotConvertibleError, match="not convertible: onnxruntime could not load"):
        export_version(store, "iris", "onnx")
    assert store.get("iris")["exports"]["onnx"]["status"] == "refused"
