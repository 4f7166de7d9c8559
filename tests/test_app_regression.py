"""The dashboard with regressors (issue 14): the Train page's task choice, metrics and plots; the
Model detail page's plots and re-score; the Models page's score column and task filter."""

from __future__ import annotations

import pandas as pd
import pytest

from core import load_dataset, train
from tests.test_app import DETAIL, MODELS, TRAIN, UPLOAD, app_store, fresh_app, labels, metric, ok, open_page, open_tab  # noqa: F401


def chart_titles(at) -> list[str]:
    return [str(chart.proto.spec) for chart in at.get("plotly_chart")]


def test_train_page_infers_regression_trains_plots_and_saves(app_store):  # noqa: F811
    at = open_page(TRAIN)
    at.selectbox(key="train_builtin").set_value("diabetes").run()
    ok(at)
    assert at.radio(key="train_task").value == "auto"
    assert any("Inferred task: regression" in c.value and "214 distinct" in c.value for c in at.caption)
    assert "Ridge regression" in at.selectbox(key="train_estimator").options
    assert "Logistic regression" not in at.selectbox(key="train_estimator").options
    at.selectbox(key="train_estimator").set_value("random_forest").run()
    at.number_input(key="param_regression_random_forest_n_estimators").set_value(20)
    at.button[labels(at.button).index("Train")].click().run()
    ok(at)
    r2 = float(metric(at, "R²"))
    assert 0.2 < r2 < 0.7 and float(metric(at, "MAE")) > 0
    titles = chart_titles(at)
    assert any("Predicted vs actual" in t for t in titles) and any("Residuals" in t for t in titles)
    at.text_input[labels(at.text_input).index("Name")].set_value("diab")
    at.button[labels(at.button).index("Save")].click().run()
    ok(at)
    record = app_store.get("diab:1")
    assert record["task"] == "regression" and record["metrics"]["r2"] == pytest.approx(r2, abs=5e-5)

    at.query_params["model"] = "diab:1"
    at.switch_page(DETAIL).run()
    ok(at)
    assert metric(at, "R²") == f"{record['metrics']['r2']:.4f}"
    at.toggle(key="plots_diab:1").set_value(True).run()
    ok(at)
    assert any("Predicted vs actual" in t for t in chart_titles(at))
    open_tab(at, "Re-score")
    at.button(key="rescore").click().run()
    ok(at)
    assert metric(at, "Reproduced r2") == f"{record['metrics']['r2']:.4f}"
    assert metric(at, "Reproduced") == "yes"


def test_the_task_choice_overrides_the_inferred_one_and_switches_the_estimators():
    at = open_page(TRAIN)
    at.selectbox(key="train_builtin").set_value("iris").run()
    at.radio(key="train_task").set_value("regression").run()
    ok(at)
    assert "Ridge regression" in at.selectbox(key="train_estimator").options
    at.selectbox(key="train_estimator").set_value("ridge").run()
    at.button[labels(at.button).index("Train")].click().run()
    ok(at)
    assert float(metric(at, "R²")) > 0.5
    at.radio(key="train_task").set_value("classification").run()
    ok(at)
    assert "Ridge regression" not in at.selectbox(key="train_estimator").options
    assert at.selectbox(key="train_estimator").value == "logistic_regression"


def test_models_page_shows_one_score_column_and_filters_by_task(app_store):  # noqa: F811
    diab = app_store.save_trained(train(load_dataset("builtin:diabetes"), "ridge"), "diab")
    iris = app_store.save_trained(train(load_dataset("builtin:iris"), "decision_tree"), "iris")
    at = open_page(MODELS)
    ok(at)
    table = at.dataframe[0].value.set_index("ref")
    assert table.loc["diab:1", "score"] == f"r2 {diab['metrics']['r2']:.4f}"
    assert table.loc["iris:1", "score"] == f"accuracy {iris['metrics']['accuracy']:.4f}"
    assert table.loc["diab:1", "task"] == "regression"
    at.selectbox(key="models_task").set_value("regression").run()
    ok(at)
    assert list(at.dataframe[0].value["ref"]) == ["diab:1"]
    at.selectbox(key="models_task").set_value("clustering").run()
    ok(at)
    assert any("No version matches" in i.value for i in at.info)
    at.selectbox(key="models_task").set_value("all").run()
    at.selectbox(key="models_sort").set_value("Score").run()
    ok(at)
    assert list(at.dataframe[0].value["ref"]) == ["iris:1", "diab:1"]  # accuracy 0.94 above r2 0.42
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    at.run()
    ok(at)
    compared = at.dataframe[1].value.set_index("ref")
    assert compared.loc["diab:1", "r2"] == diab["metrics"]["r2"] and pd.isna(compared.loc["diab:1", "accuracy"])
    assert compared.loc["iris:1", "score"].startswith("accuracy ")


def test_an_uploaded_regression_pipeline_is_scored_with_r2(app_store):  # noqa: F811
    import io

    import joblib
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_dataset("builtin:diabetes")
    buffer = io.BytesIO()
    joblib.dump(make_pipeline(StandardScaler(), Ridge()).fit(data.X, data.y), buffer)
    at = open_page(UPLOAD)
    at.file_uploader(key="upload_model").upload("ridge.joblib", buffer.getvalue())
    at.run()
    at.radio(key="upload_data").set_value("Built-in data set")
    at.selectbox[labels(at.selectbox).index("Built-in data set")].set_value("diabetes")
    at.button[labels(at.button).index("Add to the store")].click().run()
    ok(at)
    record = app_store.get("ridge:1")
    assert record["task"] == "regression" and record["metrics"].get("primary") == "r2"
    assert metric(at, "R²") == f"{record['metrics']['r2']:.4f}"
