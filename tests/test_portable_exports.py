"""ONNX parity and exact JSON parameters for every catalog estimator on two data sets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core import load_dataset, train
from core.portable import params_json, params_predict
from core.portable.onnx_export import PROBA_TOLERANCE, NotConvertibleError, export_onnx
from core.portable.onnx_runtime import run_onnx
from core.portable.params_json import NotRepresentableError
from tests.portable_support import DATASETS, ESTIMATORS, JSON_REFUSED, ONNX_REFUSED, mixed_csv, trained

MATRIX = [(source, key) for source in DATASETS for key in ESTIMATORS]


@pytest.mark.parametrize(("source", "estimator"), MATRIX)
def test_onnx_parity_or_a_clear_refusal(source, estimator):
    result = trained(source, estimator)
    if estimator in ONNX_REFUSED:
        with pytest.raises(NotConvertibleError, match=r"^not convertible: HistGradientBoostingClassifier: "):
            export_onnx(result.model, result.X_test)
        return
    exported = export_onnx(result.model, result.X_test)
    parity = exported.parity
    assert parity.passed and parity.labels_equal and parity.rows == len(result.X_test)
    assert parity.max_proba_diff is not None and parity.max_proba_diff <= PROBA_TOLERANCE
    # Check the claim independently of check_parity: run the bytes and compare ourselves.
    labels, proba = run_onnx(exported.data, result.X_test)
    np.testing.assert_array_equal(labels, result.model.predict(result.X_test))
    np.testing.assert_allclose(proba, result.model.predict_proba(result.X_test), atol=PROBA_TOLERANCE, rtol=0)
    assert exported.layout == "tensor"  # all built-in features are numeric: one float tensor


@pytest.mark.parametrize(("source", "estimator"), MATRIX)
def test_json_reproduces_labels_exactly_or_refuses(source, estimator):
    result = trained(source, estimator)
    if estimator in JSON_REFUSED:
        refused = r"^not exportable as JSON parameters: (SVC|KNeighbors|GradientBoosting|HistGradientBoosting)"
        with pytest.raises(NotRepresentableError, match=refused):
            params_json.export_params(result.model, result.X_test)
        return
    exported = params_json.export_params(result.model, result.X_test)
    document = json.loads(exported.text)
    assert document["schema_version"] == 1 and document["format"] == "modelshelf.params"
    expected = result.model.predict(result.X_test)
    np.testing.assert_array_equal(params_predict.predict(document, result.X_test), expected)
    # The numpy predictor also takes a plain 2-D array in feature order.
    np.testing.assert_array_equal(params_predict.predict(document, result.X_test.to_numpy()), expected)
    rebuilt = params_json.to_sklearn(exported.text)
    np.testing.assert_array_equal(rebuilt.predict(result.X_test), expected)
    np.testing.assert_array_equal(rebuilt.predict_proba(result.X_test), result.model.predict_proba(result.X_test))


def test_json_and_onnx_handle_scaling_text_columns_and_missing_values():
    dataset = load_dataset(mixed_csv(), target="bought")
    for estimator in ("logistic_regression", "random_forest", "naive_bayes", "decision_tree"):
        result = train(dataset, estimator, {"n_estimators": 4} if estimator == "random_forest" else None, scale=True)
        X = result.X_test
        assert X["age"].isna().any() and X["city"].isna().any()
        expected = result.model.predict(X)
        exported = params_json.export_params(result.model, X)
        np.testing.assert_array_equal(params_predict.predict(json.loads(exported.text), X), expected)
        np.testing.assert_array_equal(params_json.to_sklearn(exported.text).predict(X), expected)
        onnx = export_onnx(result.model, X)
        assert onnx.layout == "columns" and onnx.parity.passed
        labels, _ = run_onnx(onnx.data, X)
        np.testing.assert_array_equal(labels.astype(object), expected.astype(object))


def test_unknown_category_goes_nowhere_in_both_the_numpy_predictor_and_sklearn():
    result = train(load_dataset(mixed_csv(), target="bought"), "logistic_regression")
    rows = result.X_test.head(3).copy()
    rows["city"] = ["paris", "leeds", None]
    document = params_json.to_params(result.model)
    np.testing.assert_array_equal(params_predict.predict(document, rows), result.model.predict(rows))


def test_json_refuses_a_document_of_another_schema_version():
    result = trained("builtin:iris", "decision_tree")
    document = params_json.to_params(result.model)
    with pytest.raises(params_json.FormatError, match="schema_version 2"):
        params_json.to_sklearn({**document, "schema_version": 2})
    with pytest.raises(ValueError, match="schema_version 1"):
        params_predict.predict({**document, "schema_version": 2}, result.X_test)
    with pytest.raises(params_json.FormatError, match="Not a JSON parameter file"):
        params_json.to_sklearn(b"\x80\x04 not json")


def test_json_predictor_mirrors_float32_thresholds():
    """A value between a float64 threshold and its float32 rounding must go where sklearn sends it."""
    result = trained("builtin:iris", "decision_tree")
    document = params_json.to_params(result.model)
    tree = document["model"]["tree"]
    root_feature, root_threshold = tree["feature"][0], tree["threshold"][0]
    rows = result.X_test.head(4).copy()
    column = rows.columns[root_feature]
    just_above = np.nextafter(root_threshold, np.inf)
    rows[column] = [root_threshold, just_above, float(np.float32(root_threshold)), just_above + 1e-3]
    np.testing.assert_array_equal(params_predict.predict(document, rows), result.model.predict(rows))
