"""Tasks and regression (issue 14, items 1-3): inference, the catalog by task, metrics, re-scoring."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.catalog_tasks import REGRESSORS, catalog_for, spec_for
from core.cli import main
from core.datasets import from_frame, load_dataset
from core.describe import class_path
from core.errors import DatasetError, InvalidParameterError
from core.metrics import regression_metrics
from core.store.scoring import differences
from core.tasks import choose_task, infer_task, task_of_estimator, task_of_record
from core.training import train


@pytest.fixture(scope="module")
def diabetes():
    return load_dataset("builtin:diabetes")


@pytest.mark.parametrize(
    ("values", "task", "why"),
    [
        (["a", "b", "a"], "classification", "not numeric"),
        ([True, False, True], "classification", "not numeric"),
        ([0.5, 1.25, 2.0], "regression", "non-integral"),
        ([1.0, 2.0, 1.0], "classification", "2 distinct integer values"),  # integral floats: classes
        (list(range(21)), "regression", "21 distinct integer values (> 20)"),
        (list(range(20)), "classification", "20 distinct integer values (<= 20)"),
    ],
)
def test_the_task_is_inferred_from_the_target_and_says_why(values, task, why):
    found, reason = infer_task(pd.Series(values))
    assert found == task and why in reason


@pytest.mark.parametrize(
    ("name", "task"),
    [("diabetes", "regression"), ("iris", "classification"), ("wine", "classification"), ("digits", "classification")],
)
def test_builtin_data_sets_get_the_task_they_are_known_for(name, task):
    assert infer_task(load_dataset(f"builtin:{name}").y)[0] == task


def test_classes_of_a_many_valued_integer_target_are_allowed_with_a_warning():
    task, _, notes = choose_task(pd.Series(range(50), name="count"), "classification")
    assert task == "classification" and notes and "many classes" in notes[0]


def test_a_classifier_on_non_integral_values_is_refused_suggesting_regression():
    with pytest.raises(DatasetError, match="--task regression"):
        choose_task(pd.Series([0.5, 1.5, 2.25], name="y"), "classification")


def test_shared_keys_resolve_by_task_and_single_task_keys_name_the_allowed_ones():
    assert spec_for("random_forest", "regression").class_path.endswith("RandomForestRegressor")
    assert spec_for("random_forest", "classification").class_path.endswith("RandomForestClassifier")
    with pytest.raises(InvalidParameterError, match=r"choose one of: .*ridge"):
        spec_for("logistic_regression", "regression")
    with pytest.raises(InvalidParameterError, match="naive_bayes"):
        spec_for("svr", "classification")
    assert set(catalog_for("regression")) == {
        *("random_forest", "extra_trees", "gradient_boosting", "hist_gradient_boosting", "decision_tree", "knn"),
        *("linear_regression", "ridge", "lasso", "elastic_net", "svr"),
    }
    with pytest.raises(InvalidParameterError, match="'alpha' of ridge"):
        spec_for("ridge", "regression").resolve({"alpha": "-1"})


@pytest.mark.parametrize("key", sorted(REGRESSORS))
def test_every_regressor_trains_on_diabetes(diabetes, key):
    params = {"n_estimators": 10} if "n_estimators" in REGRESSORS[key].param_names else {}
    result = train(diabetes, key, params, scale=key in ("svr", "knn"))
    assert result.task == "regression"
    assert set(result.metrics) >= {"r2", "mae", "rmse", "mape", "max_error"}
    assert result.metrics["primary"] == "r2" and "accuracy" not in result.metrics
    assert class_path(result.model).endswith(REGRESSORS[key].class_path.rsplit(".", 1)[1])
    assert task_of_estimator(result.model) == "regression"


def test_regression_metrics_match_their_definitions_and_mape_is_none_with_a_zero_target():
    class Fixed:
        def predict(self, X):
            return np.array([1.0, 3.0, 2.0, 5.0])

    y = pd.Series([1.0, 2.0, 2.0, 4.0])
    m = regression_metrics(Fixed(), pd.DataFrame({"x": range(4)}), y)
    assert m["mae"] == pytest.approx(0.5) and m["max_error"] == 1.0
    assert m["rmse"] == pytest.approx(np.sqrt(0.5)) and m["mape"] == pytest.approx((0.5 + 0.25) / 4)
    assert m["r2"] == pytest.approx(1 - 2.0 / 4.75)
    assert regression_metrics(Fixed(), pd.DataFrame({"x": range(4)}), pd.Series([0.0, 2.0, 2.0, 4.0]))["mape"] is None


def test_a_target_with_missing_values_says_how_many_rows():
    frame = pd.DataFrame({"x": range(6), "y": [1.5, None, 2.5, None, 3.5, 4.5]})
    with pytest.raises(DatasetError, match=r"2 of 6 rows .* lack a value in the target column 'y'"):
        from_frame(frame, target="y")


def test_a_one_class_target_is_refused():
    with pytest.raises(DatasetError, match="single class"):
        from_frame(pd.DataFrame({"x": range(5), "y": [1] * 5}), target="y")


def test_diabetes_trains_saves_reloads_and_rescores_with_r2_reproduced(store, diabetes):
    result = train(diabetes, "random_forest", {"n_estimators": 20})
    record = store.save_trained(result, "diab")
    assert record["task"] == "regression" and record["metrics"]["primary"] == "r2"
    loaded = store.load("diab")
    assert np.array_equal(loaded.model.predict(result.X_test), result.model.predict(result.X_test))
    evaluation = store.evaluate("diab")
    assert evaluation.reproduced is True and evaluation.differences == {}
    assert evaluation.primary == "r2" and evaluation.score == record["metrics"]["r2"]
    assert evaluation.accuracy is None


def test_a_score_that_moved_is_shown_per_metric():
    recorded = {"r2": 0.5, "mae": 40.0, "rmse": 50.0, "mape": None, "max_error": 100.0}
    measured = {"r2": 0.5, "mae": 40.5, "rmse": 50.0, "mape": 0.3, "max_error": 100.0}
    assert differences(recorded, measured, "regression") == {"mae": 0.5, "mape": None}


def test_old_records_read_as_classification_with_accuracy_else_by_their_class():
    assert task_of_record({"metrics": {"accuracy": 0.7}, "estimator": "sklearn.linear_model.Ridge"}) == "classification"
    assert task_of_record({"metrics": {}, "estimator": "sklearn.linear_model.Ridge"}) == "regression"
    assert task_of_record({"metrics": {}, "estimator": "sklearn.cluster.KMeans"}) == "clustering"
    assert task_of_record({"metrics": {}, "estimator": "sklearn.decomposition.PCA"}) == "transformer"
    assert task_of_record({"metrics": {}, "estimator": "os.system"}) is None


def test_cli_trains_the_diabetes_regression_and_reproduces_r2(capsys, store_path):
    argv = ["--store", str(store_path), "train", "--data", "builtin:diabetes", "--target", "target"]
    assert main([*argv, "--estimator", "random_forest", "--name", "diab"]) == 0
    out = capsys.readouterr().out
    assert "task regression (inferred: the target has 214 distinct integer values (> 20)" in out
    assert "held-out r2 0.4753728794450637 (146 rows)" in out  # the figure the README quotes
    assert main(["--store", str(store_path), "evaluate", "diab", "--json"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    assert evaluation["reproduced"] is True and evaluation["primary"] == "r2" and evaluation["differences"] == {}
    assert main(["--store", str(store_path), "evaluate", "diab"]) == 0
    assert "  reproduced   yes" in capsys.readouterr().out
    assert main(["--store", str(store_path), "list", "--task", "regression", "--sort", "score"]) == 0
    assert "regression  r2 0.4754" in capsys.readouterr().out  # as the README shows it


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--estimator", "logistic_regression"], "logistic_regression is a classification estimator"),
        (["--estimator", "svc", "--task", "classification", "--data", "x.csv"], None),
    ],
)
def test_cli_refuses_a_classifier_for_a_regression_target_in_one_line(capsys, store_path, tmp_path, argv, message):
    data = tmp_path / "x.csv"
    data.write_text("a,y\n" + "".join(f"{i},{i * 0.37:.2f}\n" for i in range(30)))
    args = ["--store", str(store_path), "train", "--data", str(data), "--name", "x", *argv]
    args = [str(data) if a == "x.csv" else a for a in args]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ")
    assert (message or "--task regression") in err
    assert not store_path.exists() or not list(store_path.glob("x/*"))


def test_cli_lists_one_score_column_sorts_by_score_or_a_metric_and_filters_by_task(capsys, store_path):
    store = ["--store", str(store_path)]
    for data, key, name in (("diabetes", "ridge", "ridge"), ("diabetes", "knn", "knn"), ("iris", "knn", "flowers")):
        assert main([*store, "train", "--data", f"builtin:{data}", "--estimator", key, "--name", name]) == 0
    capsys.readouterr()
    assert main([*store, "list", "--task", "regression", "--sort", "score"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["MODEL", "ALIASES", "ESTIMATOR", "TASK", "SCORE"]
    scores = [float(line.split("r2 ")[1].split()[0]) for line in lines[1:]]
    assert len(scores) == 2 and scores == sorted(scores, reverse=True) and "flowers" not in "".join(lines)
    listed = json.loads(_run_json(capsys, [*store, "list", "--sort", "mae"]))
    maes = [r["metrics"].get("mae") for r in listed]
    assert maes[:2] == sorted(maes[:2]) and maes[2] is None  # smallest error first; unscored by it last
    assert [r["task"] for r in json.loads(_run_json(capsys, [*store, "list", "--task", "classification"]))] == [
        "classification"
    ]


def _run_json(capsys, argv):
    assert main([*argv, "--json"]) == 0
    return capsys.readouterr().out


def test_an_imported_clustering_model_is_stored_and_listed_not_scored(capsys, store_path, tmp_path):
    import joblib
    from sklearn.cluster import KMeans

    path = tmp_path / "km.joblib"
    joblib.dump(KMeans(3, n_init=2, random_state=0).fit(load_dataset("builtin:iris").X), path)
    store = ["--store", str(store_path)]
    assert main([*store, "import", str(path), "--name", "km"]) == 0
    capsys.readouterr()
    assert json.loads(_run_json(capsys, [*store, "show", "km"]))["task"] == "clustering"
    assert main([*store, "list", "--task", "clustering"]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[0] == "km:1" and row[3:5] == ["clustering", "-"]
    assert main([*store, "evaluate", "km"]) == 1
    assert capsys.readouterr().err.strip() == "error: km:1 is a clustering model: it is stored and listed, not scored"


def test_a_rescore_that_differs_shows_each_difference(capsys, store_path, tmp_path):
    store = ["--store", str(store_path)]
    assert main([*store, "train", "--data", "builtin:diabetes", "--estimator", "ridge", "--name", "r"]) == 0
    shifted = load_dataset("builtin:diabetes").X.assign(target=load_dataset("builtin:diabetes").y + 10.0)
    shifted.to_csv(tmp_path / "shifted.csv", index=False)
    capsys.readouterr()
    assert main([*store, "evaluate", "r", "--data", str(tmp_path / "shifted.csv")]) == 0
    out = capsys.readouterr().out
    assert "  reproduced   NO" in out
    moved = {line.split()[1] for line in out.splitlines() if line.startswith("  difference")}
    assert moved == {"r2", "mae", "rmse", "mape", "max_error"}


def test_predict_summarises_a_regressors_numbers_by_their_range(capsys, store_path, tmp_path):
    store = ["--store", str(store_path)]
    assert main([*store, "train", "--data", "builtin:diabetes", "--estimator", "ridge", "--name", "r"]) == 0
    rows = load_dataset("builtin:diabetes").X.head(20)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    capsys.readouterr()
    argv = [*store, "predict", "r", "--data", str(tmp_path / "rows.csv"), "-o", str(tmp_path / "out.csv")]
    summary = json.loads(_run_json(capsys, argv))["predictions"]
    written = pd.read_csv(tmp_path / "out.csv")["prediction"]
    assert summary == {"min": written.min(), "mean": pytest.approx(written.mean()), "max": written.max()}


def test_estimators_filters_by_task(capsys):
    listed = json.loads(_run_json(capsys, ["estimators", "--task", "regression"]))
    assert {e["task"] for e in listed} == {"regression"} and {e["key"] for e in listed} == set(REGRESSORS)
    both = json.loads(_run_json(capsys, ["estimators", "knn"]))
    assert [(e["task"], e["class"].rsplit(".", 1)[1]) for e in both] == [
        ("classification", "KNeighborsClassifier"),
        ("regression", "KNeighborsRegressor"),
    ]
    assert main(["estimators", "svr", "--task", "classification"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "svr is a regression estimator" in err and "logistic_regression" in err


def test_the_issues_ridge_pipeline_imports_with_a_csv_and_is_scored_with_r2(capsys, store_path, diabetes, tmp_path):
    """The issue's report: ``import ridge.joblib --name ridge --data diab.csv --target target`` failed
    with "Classification metrics can't handle a mix of multiclass and continuous targets"."""
    import joblib
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    diabetes.X.assign(target=diabetes.y).to_csv(tmp_path / "diab.csv", index=False)
    joblib.dump(make_pipeline(StandardScaler(), Ridge()).fit(diabetes.X, diabetes.y), tmp_path / "ridge.joblib")
    argv = ["--store", str(store_path), "import", str(tmp_path / "ridge.joblib"), "--name", "ridge"]
    assert main([*argv, "--data", str(tmp_path / "diab.csv"), "--target", "target"]) == 0
    out = capsys.readouterr().out
    assert "ridge.joblib as ridge:1" in out and "held-out rows of" in out
    assert main(["--store", str(store_path), "show", "ridge", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["task"] == "regression" and record["metrics"]["primary"] == "r2"
    assert 0.3 < record["metrics"]["r2"] < 0.7  # held-out rows of a model that saw them all: a real R², not accuracy
