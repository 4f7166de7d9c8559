"""The exploration workbench (``core.workbench``, ``compare-estimators``) and ``train --cv``."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import StratifiedKFold, cross_val_score

import core.workbench as workbench
from core.catalog_tasks import catalog_for
from core.cli import main
from core.datasets import from_frame, load_dataset
from core.errors import DatasetError, InvalidParameterError
from core.training import build_pipeline, train
from core.workbench import compare_estimators, parse_keys

ROW_KEYS = {"key", "primary", "score", "metrics", "cv_mean", "cv_std", "fit_seconds", "size_bytes"}
REGRESSORS = ["linear_regression", "ridge", "decision_tree"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def diabetes():
    return load_dataset("builtin:diabetes")


def test_compare_ranks_by_r2_on_one_split_and_reports_progress(diabetes):
    calls = []
    board = compare_estimators(diabetes, REGRESSORS, cv=3, progress=lambda *a: calls.append(a))
    assert calls == [(0, 3, "linear_regression"), (1, 3, "ridge"), (2, 3, "decision_tree"), (3, 3, "")]
    assert board.task == "regression" and board.primary == "r2" and board.n_test == 146
    scores = [e.score for e in board.entries]
    assert sorted(scores, reverse=True) == scores and len(set(board.keys)) == 3
    for entry in board.entries:
        alone = train(diabetes, entry.key, cv=3)  # the same split and folds as a train of that key alone
        assert entry.score == alone.metrics["r2"] and entry.result.cv == alone.cv
        assert entry.result.cv["k"] == 3 and len(entry.result.cv["scores"]) == 3
        assert entry.result.cv["mean"] == pytest.approx(np.mean(entry.result.cv["scores"]))
        assert entry.size_bytes > 0
        row = entry.to_dict()
        assert set(row) >= ROW_KEYS and row["cv_mean"] == entry.result.cv["mean"] and row["error"] is None
    # a kNN regressor keeps its training rows: larger than a linear model's few coefficients
    sizes = {e.key: e.size_bytes for e in board.entries}
    assert sizes["decision_tree"] > sizes["linear_regression"]


def test_default_is_every_key_of_the_inferred_task():
    board = compare_estimators(load_dataset("builtin:iris"))
    assert board.task == "classification" and sorted(board.keys) == sorted(catalog_for("classification"))
    assert all(e.error is None and 0 <= e.score <= 1 for e in board.entries)


def test_an_estimator_that_fails_is_a_row_with_its_error(diabetes, monkeypatch):
    real = workbench.fit_prepared

    def failing(prepared, key, *args, **kwargs):
        if key == "ridge":
            raise DatasetError("ridge broke")
        return real(prepared, key, *args, **kwargs)

    monkeypatch.setattr(workbench, "fit_prepared", failing)
    board = compare_estimators(diabetes, REGRESSORS)
    assert board.keys[-1] == "ridge" and board.entries[-1].error == "ridge broke"
    assert board.entries[-1].to_dict()["score"] is None


@pytest.mark.parametrize(
    ("keys", "cv", "message"),
    [
        (["ridge", "nope"], None, "Unknown estimator 'nope' for a regression target; choose one of: random_forest"),
        (["logistic_regression"], None, "logistic_regression is a classification estimator and this is a regression"),
        (["ridge"], 1, "at least 2 folds"),
        (["ridge"], 400, "Too few rows for 400-fold cross-validation: the training part has 296 rows"),
    ],
)
def test_bad_requests_are_refused_before_any_fit(diabetes, monkeypatch, keys, cv, message):
    monkeypatch.setattr(workbench, "fit_prepared", lambda *a, **k: pytest.fail("fitted before refusing"))
    with pytest.raises(InvalidParameterError, match=message):
        compare_estimators(diabetes, keys, cv=cv)


def test_stratified_folds_need_each_class_in_each_fold():
    frame = pd.DataFrame({"x": range(40), "y": ["a"] * 36 + ["b"] * 4})
    dataset = from_frame(frame, "y")
    with pytest.raises(
        InvalidParameterError,
        match=r"has 30 rows in 2 classes, the smallest \(class b\) 3 rows; .*ask for 3 folds or fewer",
    ):
        train(dataset, "knn", cv=5, test_size=0.25, stratify=True)


def test_train_cv_is_stratified_k_fold_on_the_training_part():
    dataset = load_dataset("builtin:pima")
    result = train(dataset, "logistic_regression", {"solver": "liblinear"}, cv=5)
    X_train, _, y_train, _ = result.split.apply(dataset)
    pipeline = build_pipeline("logistic_regression", result.params, dataset.X, seed=7)
    expected = cross_val_score(pipeline, X_train, y_train, cv=StratifiedKFold(5, shuffle=True, random_state=7))
    assert result.cv["metric"] == "accuracy" and result.cv["scores"] == [float(s) for s in expected]
    assert result.metrics["accuracy"] == 0.7559055118110236  # the held-out figure is untouched by the folds


def test_parse_keys():
    assert parse_keys(" ridge, lasso,,ridge ") == ["ridge", "lasso"]
    assert parse_keys("") is None and parse_keys(None) is None


def test_cli_table_json_and_save(capsys, store_path):
    store = ["--store", str(store_path)]
    args = ["compare-estimators", "--data", "builtin:diabetes", "--estimators", ",".join(REGRESSORS), "--cv", "3"]
    code, out, err = run(capsys, *args, *store)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("3 regression estimators on builtin:diabetes") and "ranked by r2" in lines[0]
    assert lines[1].split()[:4] == ["#", "key", "r2", "mae"] and "cv3" in lines[1]
    code, out, err = run(capsys, *args, "--save", "ridge", "--name", "diab", "--json", *store)
    assert code == 0, err
    rows = json.loads(out)
    assert [r["key"] for r in rows] == [line.split()[1] for line in lines[2:5]]  # the table's order
    assert all(set(r) >= ROW_KEYS and r["primary"] == "r2" for r in rows)
    assert [r["saved"] for r in rows if r["saved"]] == ["diab:1"]
    ridge = next(r for r in rows if r["key"] == "ridge")
    code, out, err = run(capsys, "show", "diab", "--json", *store)
    saved = json.loads(out)
    assert saved["metrics"]["r2"] == ridge["score"] and saved["cv"]["mean"] == ridge["cv_mean"]
    assert saved["estimator_key"] == "ridge" and saved["task"] == "regression"
    # the same record as `train` makes of that key with those settings
    code, out, err = run(
        capsys,
        "train",
        "--data",
        "builtin:diabetes",
        "--estimator",
        "ridge",
        "--cv",
        "3",
        "--name",
        "t",
        "--json",
        *store,
    )
    trained = json.loads(out)
    for key in ("params", "split", "dataset", "cv", "warnings", "estimator", "format"):
        assert saved[key] == trained[key], key
    assert ridge["size_bytes"] == saved["size_bytes"]  # the leaderboard's size is the file --save writes
    drop = {"fit_seconds"}
    assert {k: v for k, v in saved["metrics"].items() if k not in drop} == {
        k: v for k, v in trained["metrics"].items() if k not in drop
    }
    code, out, err = run(capsys, "show", "t", *store)
    assert "  cv           3-fold r2 " in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--estimators", "ridge,nope"], "Unknown estimator 'nope' for a regression target; choose one of:"),
        (["--cv", "500"], "Too few rows for 500-fold cross-validation: the training part has 296 rows"),
        (["--save", "ridge"], "--save KEY and --name NAME go together"),
        (["--estimators", "ridge", "--save", "lasso", "--name", "x"], "--save lasso is not among --estimators"),
        (["--save", "svc", "--name", "x"], "svc is a classification estimator"),
        (["--save", "ridge", "--name", "../x"], "Invalid model name"),
    ],
)
def test_cli_errors_are_one_line_and_store_nothing(capsys, store_path, extra, message):
    code, _, err = run(capsys, "compare-estimators", "--data", "builtin:diabetes", *extra, "--store", str(store_path))
    assert code == 1 and err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not store_path.exists()  # refused before the store was opened: nothing written


def test_cli_one_class_target(capsys, tmp_path, store_path):
    path = tmp_path / "one.csv"
    path.write_text("a,b\n1,x\n2,x\n3,x\n")
    code, _out, err = run(capsys, "compare-estimators", "--data", str(path), "--header", "--store", str(store_path))
    assert code == 1 and "has a single class" in err
