"""The tables the dashboard draws, built in core and checked without a browser."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core import load_dataset, train
from core.environment import compare_environment
from core.errors import DatasetError
from core.text import human_bytes
from core.views import (
    confusion_frame,
    environment_table,
    feature_row,
    feature_weights,
    metrics_long,
    metrics_table,
    params_table,
    record_json,
    scalar_metrics,
)


@pytest.fixture(scope="module")
def iris():
    return load_dataset("builtin:iris")


def test_tree_importances_name_the_input_columns_and_sum_to_one(iris):
    result = train(iris, "random_forest", {"n_estimators": 10})
    weights = feature_weights(result.model)
    assert set(weights["feature"]) == set(iris.feature_names)
    assert (weights["kind"] == "importance").all()
    assert weights["weight"].sum() == pytest.approx(1.0)
    assert list(weights["weight"]) == sorted(weights["weight"], reverse=True)


def test_multiclass_coefficients_come_per_class(iris):
    result = train(iris, "logistic_regression", {"max_iter": 1000})
    weights = feature_weights(result.model)
    assert (weights["kind"] == "coefficient").all()
    assert len(weights) == 3 * 4
    assert set(weights["class"]) == {"0", "1", "2"}
    coef = result.model[-1].coef_
    assert weights["weight"].abs().max() == pytest.approx(np.abs(coef).max())


def test_binary_coefficients_are_one_row_per_encoded_feature():
    frame = pd.DataFrame({"a": [1.0, 2, 3, 4, 5, 6, 7, 8], "c": list("xyxyxyxy"), "y": [0, 0, 0, 0, 1, 1, 1, 1]})
    from core.datasets import from_frame

    result = train(from_frame(frame, "y"), "logistic_regression", test_size=0.25)
    weights = feature_weights(result.model)
    assert sorted(weights["feature"]) == ["a", "c_x", "c_y"]
    assert set(weights["class"]) == {"1"}


def test_models_without_weights_give_none(iris):
    assert feature_weights(train(iris, "knn").model) is None
    assert feature_weights(train(iris, "svc", {"kernel": "rbf"}).model) is None


def test_metrics_table_and_long_form_line_up(store, iris):
    a = store.save_trained(train(iris, "decision_tree"), "a")
    b = store.save_trained(train(iris, "knn"), "b")
    wide = metrics_table([a, b])
    assert list(wide["ref"]) == ["a:1", "b:1"]
    assert wide.loc[0, "accuracy"] == a["metrics"]["accuracy"]
    assert wide.loc[1, "estimator"] == "KNeighborsClassifier"
    long = metrics_long([a, b])
    assert set(long["metric"]) <= {"accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc"}
    got = long[(long["ref"] == "b:1") & (long["metric"] == "f1")]["value"].item()
    assert got == b["metrics"]["f1"]


def test_record_tables(store, iris):
    record = store.save_trained(train(iris, "random_forest", {"n_estimators": 5, "max_depth": None}), "rf")
    params = params_table(record).set_index("parameter")["value"]
    assert params["n_estimators"] == "5" and params["max_depth"] == "None"
    scalars = scalar_metrics(record).set_index("metric")["value"]
    assert scalars["accuracy"] == record["metrics"]["accuracy"] and "confusion_matrix" not in scalars
    cm = confusion_frame(record["metrics"])
    assert cm.to_numpy().sum() == record["split"]["n_test"]
    env = environment_table(compare_environment(record["environment"]))
    assert env.loc[env["package"] == "scikit-learn", "status"].item() == "ok"
    dumped = json.loads(record_json(record, drop=("uri",)))
    assert "uri" not in dumped and dumped["sha256"] == record["sha256"]


def test_environment_table_marks_a_major_sklearn_change_red():
    saved = {"python_version": "3.11.7", "packages": {"scikit-learn": "0.24.2"}}
    env = environment_table(compare_environment(saved)).set_index("package")
    assert env.loc["scikit-learn", "status"] == "error"


def test_feature_row_keeps_the_recorded_order_and_names_what_is_missing():
    record = {"dataset": {"feature_names": ["b", "a"]}}
    assert list(feature_row({"a": 1, "b": 2}, record).columns) == ["b", "a"]
    with pytest.raises(DatasetError, match="a"):
        feature_row({"b": 2}, record)


@pytest.mark.parametrize(("size", "text"), [(None, "-"), (999, "999 B"), (2534, "2.5 kB"), (3_200_000, "3.2 MB")])
def test_human_bytes(size, text):
    assert human_bytes(size) == text


def test_escape_markdown_neutralises_links_html_and_directives():
    from core.text import escape_markdown

    text = escape_markdown("[x](http://evil) <img src=x> :red[y] $z$ **b**")
    for i, ch in enumerate(text):
        if ch in "[]()<>:$*" and not (i and text[i - 1] == "\\"):
            raise AssertionError(f"unescaped {ch!r} at {i} in {text!r}")
    assert text.replace("\\", "") == "[x](http://evil) <img src=x> :red[y] $z$ **b**"


def test_parse_tags():
    from core.text import parse_tags

    assert parse_tags(" a, b,,c ;a") == ["a", "b", "c"]
    assert parse_tags("") == []


def test_human_bytes_goes_up_to_terabytes():
    from core.text import human_bytes

    assert human_bytes(999) == "999 B"
    assert human_bytes(2534) == "2.5 kB"
    assert human_bytes(1_234_500_000_000) == "1.2 TB"
