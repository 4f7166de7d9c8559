"""Regressors leave the shelf like classifiers: ONNX with parity, JSON refused with the reason,
bundles, model cards that show the scores the record holds, and how-to-load snippets that run.

Each regressor family of the diabetes corpus (``tests/test_model_policy_regressors.py``) is saved
with its held-out rows, then exported: ONNX predictions must agree with scikit-learn's within
``PROBA_TOLERANCE * max(1, |value|)`` (float32 arithmetic), or the export is refused naming the
estimator and skl2onnx's reason.
"""

from __future__ import annotations

import contextlib
import io
import runpy
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.metrics import mean_absolute_error, r2_score

from core.errors import FormatError
from core.portable.exports import export_version
from core.portable.how_to_load import how_to_load, task_of
from core.portable.onnx_export import PROBA_TOLERANCE, NotConvertibleError, check_parity, export_onnx
from core.portable.onnx_runtime import run_onnx
from core.portable.params_export import to_params
from tests.test_model_policy_regressors import CORPUS

#: What skl2onnx cannot convert among the corpus, and the words of its refusal.
ONNX_REFUSED = {
    "hist_gradient_boosting": "not convertible: HistGradientBoostingRegressor",
    "log_target_ridge": "not convertible: TransformedTargetRegressor",
}


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:300], X.iloc[300:], y.iloc[:300], y.iloc[300:]


@pytest.fixture(scope="module")
def fitted(split) -> dict[str, object]:
    X, _, y, _ = split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: make().fit(X, y) for name, make in CORPUS.items()}


def _save(store, model, split, name: str = "diab"):
    _, X_test, _, y_test = split
    predicted = model.predict(X_test)
    metrics = {"r2": r2_score(y_test, predicted), "mae": mean_absolute_error(y_test, predicted), "primary": "r2"}
    return store.save(model, name, X_test=X_test, y_test=y_test, metrics=metrics)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_onnx_export_agrees_within_the_tolerance_or_is_refused_with_the_reason(fitted, split, name: str) -> None:
    model, X_test = fitted[name], split[1]
    if name in ONNX_REFUSED:
        with pytest.raises(NotConvertibleError, match=ONNX_REFUSED[name]):
            export_onnx(model, X_test)
        return
    made = export_onnx(model, X_test)
    assert made.parity is not None and made.parity.passed, made.parity
    assert made.parity.max_proba_diff is None and made.parity.rows == len(X_test)
    values, proba = run_onnx(made.data, X_test)
    expected = model.predict(X_test)
    assert proba is None and values.shape == expected.shape
    assert np.all(np.abs(values - expected) <= PROBA_TOLERANCE * np.maximum(1.0, np.abs(expected)))
    assert made.parity.max_value_diff == pytest.approx(float(np.max(np.abs(values.astype(np.float64) - expected))))


def test_onnx_parity_fails_when_the_values_drift(fitted, split) -> None:
    """The check can fail: an ONNX graph of a slightly different model is caught, row by row."""
    model, X_test = fitted["ridge"], split[1]
    other = CORPUS["ridge"]().fit(split[0], split[2] + 0.05)  # every prediction shifted by 0.05
    parity = check_parity(export_onnx(other, None).data, model, X_test)
    assert not parity.passed and parity.mismatched_labels == len(X_test)
    assert "predictions outside on" in parity.summary() and parity.max_value_diff == pytest.approx(0.05, rel=1e-2)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_json_parameters_refuse_regressors_with_the_reason(fitted, name: str) -> None:
    with pytest.raises(FormatError, match="is a regressor: the JSON schema describes classifiers only"):
        to_params(fitted[name])


@pytest.mark.parametrize("name", ["ridge", "gradient_boosting", "hist_gradient_boosting", "scaled_ridge"])
def test_a_regressor_bundle_holds_its_card_scores_and_what_was_left_out(store, fitted, split, name: str) -> None:
    record = _save(store, fitted[name], split)
    assert task_of(record) == "regression"
    exported = export_version(store, "diab", "bundle")
    files = set(zipfile.ZipFile(io.BytesIO(exported.data)).namelist())
    assert {"model.pkl", "metadata.json", "README.md", "evaluation.parquet"} <= files
    assert ("model.onnx" in files) == (name not in ONNX_REFUSED)
    assert "params.json" not in files and "json" in exported.info["omitted"]
    card = zipfile.ZipFile(io.BytesIO(exported.data)).read("README.md").decode()
    assert "Task: regression; primary score: r2" in card and "Predicting values for new rows" in card
    assert f"{round(record['metrics']['r2'], 6)}" in card and f"{round(record['metrics']['mae'], 6)}" in card
    assert "accuracy" not in card and "classes" not in card
    assert "predictions = session.run(None, feeds)[0].ravel()" in card or name in ONNX_REFUSED


def test_a_classifier_card_still_shows_its_classification_scores(store) -> None:
    from tests.portable_support import trained

    record = store.save_trained(trained("builtin:iris", "logistic_regression"), "iris")
    assert task_of(record) == "classification"
    card = zipfile.ZipFile(io.BytesIO(export_version(store, "iris", "bundle").data)).read("README.md").decode()
    assert "accuracy" in card and "Classifying new rows" in card and "classes" in card


@pytest.mark.parametrize("fmt", ["onnx", "joblib", "pickle", "skops", "bundle"])
def test_regressor_how_to_load_snippets_run_and_print_the_predictions(
    store, fitted, split, fmt: str, tmp_path, monkeypatch
) -> None:
    _save(store, fitted["scaled_ridge"], split)
    exported = export_version(store, "diab", fmt)
    record = store.get("diab")
    (tmp_path / exported.filename).write_bytes(exported.data)
    X_test = split[1]
    X_test.to_csv(tmp_path / "new_rows.csv", index=False)
    from core.portable.how_to_load import skops_types

    snippet = how_to_load(record, fmt, skops_types=skops_types(exported.data) if fmt == "skops" else None)
    assert "predict_proba" not in snippet and "probabilities" not in snippet
    (tmp_path / "snippet.py").write_text(snippet)
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), np.printoptions(threshold=10**6, precision=17):
        runpy.run_path(str(tmp_path / "snippet.py"), run_name="__main__")
    shown = np.array([float(t) for t in printed.getvalue().replace("[", " ").replace("]", " ").split()])
    expected = fitted["scaled_ridge"].predict(X_test)
    assert shown.shape == expected.shape
    assert np.allclose(shown, expected, rtol=PROBA_TOLERANCE if fmt == "onnx" else 1e-6)


def test_the_task_comes_from_the_record_or_the_estimators_class() -> None:
    assert task_of({"task": "regression", "estimator": "sklearn.svm.SVC"}) == "regression"
    assert task_of({"estimator": "sklearn.svm.SVR"}) == "regression"
    assert task_of({"estimator": "sklearn.svm.SVC"}) == "classification"
    assert task_of({"estimator": "sklearn.cluster.KMeans"}) is None
    assert task_of({"estimator": "os.system"}) is None and task_of({"estimator": "sklearn.nope.Nope"}) is None


def test_the_task_of_an_estimator_recorded_without_its_private_module() -> None:
    """describe_model records HistGradientBoostingRegressor under sklearn.ensemble.gradient_boosting."""
    path = "sklearn.ensemble.gradient_boosting.HistGradientBoostingRegressor"
    assert task_of({"estimator": path}) == "regression"


def test_export_and_import_of_a_regressor_on_the_command_line(capsys, store_path, fitted, split, tmp_path) -> None:
    """``export --to onnx`` prints the regression parity; ``import FILE --name`` (no --data) takes a
    StandardScaler + Ridge pipeline through the worker; ``--to json`` says why not, in one line."""
    import joblib

    from core import Store
    from core.cli import main

    store = Store(store_path)
    _save(store, fitted["scaled_ridge"], split)
    store.close()
    assert main(["--store", str(store_path), "export", "diab:1", "--to", "onnx", "-o", str(tmp_path / "d.onnx")]) == 0
    out = capsys.readouterr().out
    assert "parity       predictions within 0.0001 x max(1, |value|) on 142 evaluation rows" in out
    assert main(["--store", str(store_path), "export", "diab:1", "--to", "json", "-o", str(tmp_path / "d.json")]) != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "is a regressor: the JSON schema describes classifiers only" in err
    joblib.dump(fitted["scaled_ridge"], tmp_path / "ridge.joblib")
    assert main(["--store", str(store_path), "import", str(tmp_path / "ridge.joblib"), "--name", "ridge"]) == 0
    assert "Imported" in capsys.readouterr().out
