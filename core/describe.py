"""What a model is, described in JSON-able facts: its final estimator, public class path,
parameters, classes and feature count.

Both the store (for a version's record) and the sandboxed worker (for the facts it reports about a
stranger's file) describe models this way, so it lives in neither.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.datasets import to_jsonable


def describe_model(model: Any) -> dict[str, Any]:
    """What the record says about an estimator: class path, parameters, classes, feature count."""
    final = final_estimator(model)
    classes = getattr(model, "classes_", getattr(final, "classes_", None))
    return {
        "estimator": class_path(model),
        "params": jsonable_params(model),
        "classes": [to_jsonable(c) for c in classes] if classes is not None else None,
        "n_features_in": to_jsonable(getattr(model, "n_features_in_", None)),
        "feature_names_in": [str(c) for c in getattr(model, "feature_names_in_", [])] or None,
    }


def final_estimator(model: Any) -> Any:
    """The last step of a pipeline (or the model itself): what the user thinks of as "the model"."""
    from sklearn.pipeline import Pipeline  # deferred: a model in hand has scikit-learn loaded already

    while isinstance(model, Pipeline):
        model = model.steps[-1][1]
    return model


def class_path(model: Any) -> str:
    """``sklearn.linear_model._logistic.LogisticRegression`` -> public ``sklearn.linear_model.LogisticRegression``."""
    cls = type(final_estimator(model))
    module = cls.__module__
    parts = module.split(".")
    public = ".".join(p for p in parts if not p.startswith("_"))
    return f"{public}.{cls.__name__}"


def jsonable_params(model: Any) -> dict[str, Any]:
    """``get_params(deep=False)`` of the final estimator, with anything not JSON-able as its repr."""
    estimator = final_estimator(model)
    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    return {k: _jsonable(v) for k, v in sorted(params.items())}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)
