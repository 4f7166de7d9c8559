"""The exploration workbench on the Train page, the Models page's compare diff and a recorded CV (issue 14)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from core import load_dataset, train
from tests.test_app import DETAIL, MODELS, TRAIN, app_store, fresh_app, labels, ok, open_page  # noqa: F401

KEYS = ["linear_regression", "ridge", "decision_tree"]


def leaderboard_of(at) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "rank" in d.value.columns)


def compare(at, keys=KEYS, folds=3):
    at.multiselect(key="compare_keys_regression").set_value(keys)
    at.number_input[labels(at.number_input).index("Cross-validation folds (0: none)")].set_value(folds)
    at.button[labels(at.button).index("Compare")].click().run()
    ok(at)


def test_compare_shows_progress_and_a_leaderboard_and_saves_any_row(app_store):  # noqa: F811
    at = open_page(TRAIN)
    at.selectbox(key="train_builtin").set_value("diabetes").run()
    ok(at)
    assert set(at.multiselect(key="compare_keys_regression").value) >= {"ridge", "svr", "random_forest"}
    compare(at)
    progress = at.get("progress")
    assert progress and progress[-1].proto.value == 100 and "Fitted 3 estimators" in progress[-1].proto.text
    assert at.status[-1].label.startswith("Compared 3 estimators: best linear_regression (r2 0.5")
    board = leaderboard_of(at)
    assert sorted(board["key"]) == sorted(KEYS) and list(board["rank"]) == [1, 2, 3]
    assert list(board["r2"]) == sorted(board["r2"], reverse=True) and board["cv_mean"].notna().all()
    alone = train(load_dataset("builtin:diabetes"), "ridge", cv=3)  # the page's defaults are train's
    row = board.set_index("key").loc["ridge"]
    assert row["r2"] == alone.metrics["r2"] and row["cv_mean"] == alone.cv["mean"]

    index = list(board["key"]).index("ridge")
    at.session_state["compare_leaderboard"] = {"selection": {"rows": [index], "columns": [], "cells": []}}
    at.run()
    at.text_input(key="compare_name_ridge").set_value("diab-ridge")
    at.button[labels(at.button).index("Save ridge")].click().run()
    ok(at)
    record = app_store.get("diab-ridge:1")
    assert record["estimator_key"] == "ridge" and record["metrics"]["r2"] == alone.metrics["r2"]
    assert record["cv"] == alone.cv
    assert [t.value for t in at.toast] == ["Saved as diab-ridge:1."]  # as Train's Save says it
    assert any("stored as diab-ridge:1" in re.sub(r"\\(.)", r"\1", s.value) for s in at.success)

    at.button[labels(at.button).index("Save ridge")].click().run()  # the same fitted model again
    ok(at)
    assert app_store.get("diab-ridge")["version"] == 1  # no copy stored
    assert any("identical to diab-ridge:1" in re.sub(r"\\(.)", r"\1", i.value) for i in at.info)

    at.query_params["model"] = "diab-ridge:1"
    at.switch_page(DETAIL).run()
    ok(at)
    assert any("3-fold r2" in m.value for m in at.markdown)


def test_the_leaderboard_goes_when_the_target_changes():
    at = open_page(TRAIN)
    at.selectbox(key="train_builtin").set_value("diabetes").run()
    compare(at, ["ridge"], 0)
    assert "cv_mean" not in leaderboard_of(at).columns  # no folds asked: no CV columns
    at.selectbox(key="train_target").set_value("bmi").run()
    ok(at)
    assert not any("rank" in d.value.columns for d in at.dataframe)


def test_too_few_rows_for_the_folds_is_one_error():
    at = open_page(TRAIN)
    at.selectbox(key="train_builtin").set_value("iris").run()
    at.multiselect(key="compare_keys_classification").set_value(["knn"])
    at.number_input[labels(at.number_input).index("Cross-validation folds (0: none)")].set_value(5)
    at.slider(key="compare_test").set_value(0.95)  # 7 training rows in 3 classes
    at.button[labels(at.button).index("Compare")].click().run()
    assert not at.exception
    shown = re.sub(r"\\(.)", r"\1", at.error[0].value)
    assert len(at.error) == 1 and "Too few rows for 5-fold stratified" in shown
    assert "the training part has 7 rows in 3 classes" in shown and "ask for 2 folds or fewer" in shown


def test_compare_view_shows_the_hyperparameter_diff_the_warnings_and_the_fingerprint(app_store):  # noqa: F811
    iris = load_dataset("builtin:iris")
    app_store.save_trained(train(iris, "random_forest", {"max_depth": 3, "n_estimators": 10}), "forest")
    app_store.save_trained(train(iris, "random_forest", {"max_depth": 5, "n_estimators": 10}), "forest")
    pima = load_dataset("builtin:pima")
    warned = app_store.save_trained(train(pima, "logistic_regression"), "pima")  # lbfgs does not converge
    at = open_page(MODELS)
    at.selectbox(key="models_order").set_value("Ascending").run()
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    at.run()
    ok(at)
    compared = next(d.value for d in at.dataframe if "sklearn" in d.value.columns)
    assert "accuracy" in compared.columns and "r2" not in compared.columns  # no version has an R²: no column
    diff = next(d.value for d in at.dataframe if "parameter" in d.value.columns)
    assert list(diff["parameter"]) == ["max_depth"]  # n_estimators, criterion... are equal: left out
    assert list(diff.iloc[0][["forest:1", "forest:2"]]) == ["3", "5"]
    details = next(d.value for d in at.dataframe if "fingerprint" in d.value.columns).set_index("ref")
    assert details.loc["forest:1", "fingerprint"] == app_store.get("forest:1")["dataset"]["fingerprint"]
    assert any("All trained on the same data" in c.value for c in at.caption)

    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [1, 2], "columns": [], "cells": []}}
    at.run()
    ok(at)
    details = next(d.value for d in at.dataframe if "fingerprint" in d.value.columns).set_index("ref")
    assert "ConvergenceWarning" in details.loc["pima:1", "warnings"] and warned["warnings"]
    assert details.loc["forest:2", "warnings"] == "-"
    assert any("Not all trained on the same data" in c.value for c in at.caption)
    diff = next(d.value for d in at.dataframe if "parameter" in d.value.columns)
    assert "C" in set(diff["parameter"]) and (diff.set_index("parameter").loc["C", "forest:2"] == "(absent)")


@pytest.mark.parametrize("cv", [None, 4])
def test_params_diff_and_details_in_core(cv):
    from core.views import compare_details, params_diff

    iris = load_dataset("builtin:iris")
    records = [
        {"name": "a", "version": 1, "params": {"x": 1, "y": None}, "dataset": {"fingerprint": "f"}, "warnings": []},
        {"name": "a", "version": 2, "params": {"x": 1, "y": 2}, "dataset": {"fingerprint": "f"}, "warnings": ["w"]},
    ]
    if cv:
        records[1]["cv"] = train(iris, "knn", cv=cv).cv
    diff = params_diff(records)
    assert diff.to_dict("records") == [{"parameter": "y", "a:1": "None", "a:2": "2"}]
    details = compare_details(records).set_index("ref")
    assert details.loc["a:2", "warnings"] == "w" and details.loc["a:1", "cv"] == "-"
    assert (details.loc["a:2", "cv"] == "-") == (cv is None)
