"""Shared pieces of the portable-model tests: small, fast catalog models and a mixed-type data set."""

from __future__ import annotations

import io
import warnings
import zipfile
from functools import cache

import numpy as np
import pandas as pd

from core import load_dataset, train
from core.catalog import CATALOG

#: Few trees and iterations: the matrix checks faithfulness, not model quality.
FAST_PARAMS = {
    "logistic_regression": {"max_iter": 300},
    "random_forest": {"n_estimators": 4},
    "extra_trees": {"n_estimators": 4},
    "gradient_boosting": {"n_estimators": 4},
    "hist_gradient_boosting": {"max_iter": 4},
}
DATASETS = ("builtin:breast_cancer", "builtin:iris")
ESTIMATORS = tuple(CATALOG)
#: What each export refuses, by design (docs/portable.md says why).
ONNX_REFUSED = {"hist_gradient_boosting"}
#: The JSON schema version each catalog estimator's export carries (the lowest that describes it).
JSON_SCHEMA = {key: 2 if key in ("svc", "knn", "gradient_boosting", "hist_gradient_boosting") else 1 for key in CATALOG}


@cache
def trained(source: str, estimator: str, scale: bool = False):
    """A fitted TrainResult, cached across the tests of a session (they never mutate it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(load_dataset(source), estimator, FAST_PARAMS.get(estimator), scale=scale)


def custom_step_model(source: str = "builtin:iris"):
    """A pipeline with a step the JSON schema does not hold (MinMaxScaler): a real JSON refusal."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler

    result = trained(source, "logistic_regression")
    dataset = load_dataset(source)
    model = Pipeline([("scale", MinMaxScaler()), ("model", LogisticRegression(max_iter=300))])
    model.fit(dataset.X, dataset.y)
    return model, result.X_test, result.y_test


def mixed_csv() -> bytes:
    """Numbers and text, with missing values in both: the per-column ONNX layout and one-hot JSON."""
    rng = np.random.default_rng(3)
    n = 240
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n).round(1),
            "city": rng.choice(["leeds", "york", "hull"], n),
            "income": rng.normal(5, 1, n).round(3),
        }
    )
    frame.loc[::17, "age"] = np.nan
    frame.loc[::13, "city"] = None
    frame["bought"] = np.where((frame.city == "leeds") | (frame.income > 5.4), "yes", "no")
    return frame.to_csv(index=False).encode()


def rezip(data: bytes, replace: dict[str, bytes | None]) -> bytes:
    """The same zip with some members replaced (bytes), added, or removed (None)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            if name in replace:
                if replace[name] is not None:
                    target.writestr(name, replace[name])
            else:
                target.writestr(name, source.read(name))
        for name, content in replace.items():
            if name not in source.namelist() and content is not None:
                target.writestr(name, content)
    return out.getvalue()
