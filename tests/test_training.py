import numpy as np
import pandas as pd
import pytest

from core.catalog import CATALOG
from core.datasets import from_frame, load_dataset
from core.describe import class_path
from core.errors import DatasetError, InvalidParameterError
from core.training import train
from tests.conftest import DEFAULT_SOLVER_ACCURACY, PIMA_NAMES, TUTORIAL_ACCURACY


@pytest.fixture(scope="module")
def pima(pima_path):
    return load_dataset(str(pima_path), names=PIMA_NAMES, target="class")


def test_tutorial_accuracy_is_reproduced(pima):
    result = train(pima, "logistic_regression", {"solver": "liblinear"}, test_size=0.33, seed=7)
    assert result.metrics["accuracy"] == TUTORIAL_ACCURACY
    assert result.split.n_test == 254 and result.split.n_train == 514
    assert result.warnings == []


def test_default_solver_convergence_warning_reaches_the_user(pima):
    result = train(pima, "logistic_regression", test_size=0.33, seed=7)
    assert result.metrics["accuracy"] == DEFAULT_SOLVER_ACCURACY
    assert any(w.startswith("ConvergenceWarning") for w in result.warnings)


def test_metrics_are_complete_for_binary(pima):
    m = train(pima, "logistic_regression", {"solver": "liblinear"}).metrics
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "balanced_accuracy"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["confusion_matrix"]["labels"] == [0, 1]
    assert np.sum(m["confusion_matrix"]["matrix"]) == 254


@pytest.mark.parametrize("data", ["builtin:iris", "builtin:breast_cancer"])
@pytest.mark.parametrize("key", sorted(CATALOG))
def test_every_estimator_trains_on_builtin_data(key, data):
    params = {"n_estimators": 10} if "n_estimators" in CATALOG[key].param_names else {}
    result = train(load_dataset(data), key, params, scale=key in ("svc", "knn", "logistic_regression"))
    assert 0.5 < result.metrics["accuracy"] <= 1.0
    assert class_path(result.model).startswith("sklearn.")


def test_categorical_and_missing_values_are_handled_inside_the_pipeline():
    frame = pd.DataFrame(
        {
            "colour": ["red", "blue", None, "red", "green", "blue"] * 10,
            "size": [1.0, np.nan, 3.0, 4.0, 5.0, 6.0] * 10,
            "label": ["a", "b", "a", "b", "a", "b"] * 10,
        }
    )
    ds = from_frame(frame, target="label")
    result = train(ds, "random_forest", {"n_estimators": 5}, stratify=True)
    raw = pd.DataFrame({"colour": ["purple", None], "size": [np.nan, 2.0]})
    assert list(result.model.predict(raw)) != [] and set(result.model.predict(raw)) <= {"a", "b"}


def test_stratify_keeps_class_balance():
    result = train(load_dataset("builtin:iris"), "naive_bayes", stratify=True, test_size=0.2)
    assert result.y_test.value_counts().tolist() == [10, 10, 10]
    assert result.split.stratify is True


def test_bad_test_size():
    with pytest.raises(InvalidParameterError, match="test_size"):
        train(load_dataset("builtin:iris"), "naive_bayes", test_size=1.5)


def test_unfittable_data_is_a_clear_error():
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": [0, 1, 0, 1]})
    with pytest.raises(DatasetError):
        train(from_frame(frame), "knn", {"n_neighbors": 50})
