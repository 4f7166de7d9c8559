"""ONNX export of core's pipelines (skl2onnx), proved on the version's evaluation set.

Input layout: when every feature is numeric the ONNX graph takes ONE float tensor ``input`` of
shape ``[N, n_features]`` in the recorded feature order (what most runtimes expect); when some
columns are categorical it takes one ``[N, 1]`` input per column, float for numbers and string
for categories (a missing category is the empty string). The layout and the feature list are
written into the model's ``metadata_props`` (names in ``core.portable.onnx_meta``) so
``core.portable.onnx_runtime`` (or anyone) can feed it. ``zipmap`` is off: outputs are
``label`` and ``probabilities`` (a plain float matrix).

Parity, checked at export time: onnxruntime's labels must equal scikit-learn's on every row of
the evaluation set, and its probabilities must be within ``PROBA_TOLERANCE`` (absolute) of
``predict_proba``. ONNX computes in float32, hence a tolerance for probabilities, none for labels.
A regressor's predictions are numbers computed in float32 too: each must be within the same
tolerance scaled by the value, ``PROBA_TOLERANCE * max(1, |prediction|)`` (a prediction of 150
may differ by 0.015; float32 itself carries about 7 significant digits).
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from core.datasets import feature_types
from core.describe import final_estimator
from core.errors import FormatError
from core.frames import model_input
from core.portable.onnx_meta import INPUT_TENSOR, META_FEATURES, META_LAYOUT, short_reason
from core.portable.onnx_runtime import run_onnx

#: Largest absolute difference allowed between onnxruntime's and scikit-learn's probabilities.
PROBA_TOLERANCE = 1e-4


class NotConvertibleError(FormatError):
    """skl2onnx cannot convert the model, or the converted model disagrees with it."""


@dataclass
class Parity:
    """What the export-time comparison on the evaluation set found."""

    rows: int
    labels_equal: bool
    mismatched_labels: int
    max_proba_diff: float | None
    tolerance: float
    passed: bool
    #: Regressors: the largest absolute difference between the predicted values (else None).
    max_value_diff: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        proba = "n/a" if self.max_proba_diff is None else f"{self.max_proba_diff:.2e}"
        verdict = "passed" if self.passed else "FAILED"
        if self.max_value_diff is not None:
            return (
                f"parity {verdict} on {self.rows} evaluation rows: predictions "
                f"{'within' if self.labels_equal else f'outside on {self.mismatched_labels} rows of'} the tolerance "
                f"{self.tolerance:g} x max(1, |value|), max difference {self.max_value_diff:.2e}"
            )
        return (
            f"parity {verdict} on {self.rows} evaluation rows: labels "
            f"{'equal' if self.labels_equal else f'differ on {self.mismatched_labels}'}, "
            f"max probability difference {proba} (tolerance {self.tolerance:g})"
        )


@dataclass
class OnnxExport:
    data: bytes
    parity: Parity | None
    layout: str


def _features(model: Any, X: pd.DataFrame | None, feature_names: list[str] | None) -> list[str]:
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(c) for c in names]
    if feature_names:
        return list(feature_names)
    if X is not None:
        return [str(c) for c in X.columns]
    return [f"x{i}" for i in range(int(final_estimator(model).n_features_in_))]


def _prepared(model: Any, features: list[str], kinds: dict[str, str]) -> tuple[Any, str]:
    """A copy of the pipeline that skl2onnx can convert, and the input layout it will have."""
    model = copy.deepcopy(model)
    transformer = model.steps[0][1] if isinstance(model, Pipeline) and len(model.steps) > 1 else None
    if not isinstance(transformer, ColumnTransformer):
        return model, "tensor"
    if all(kinds.get(f) == "number" for f in features):
        # Route by position so the graph takes one float tensor instead of one input per column.
        transformer.transformers_ = [
            (name, fitted, cols if isinstance(fitted, str) else [features.index(str(c)) for c in cols])
            for name, fitted, cols in transformer.transformers_
        ]
        return model, "tensor"
    for _name, fitted, cols in transformer.transformers_:
        if isinstance(fitted, str) or not any(kinds.get(str(c)) == "category" for c in cols):
            continue
        steps = fitted.steps if isinstance(fitted, Pipeline) else [("step", fitted)]
        for _, step in steps:
            if isinstance(step, SimpleImputer):
                step.missing_values = ""  # skl2onnx imputes strings only by a string marker
    return model, "columns"


def _initial_types(features: list[str], kinds: dict[str, str], layout: str) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType  # heavy and optional

    if layout == "tensor":
        return [(INPUT_TENSOR, FloatTensorType([None, len(features)]))]
    return [
        (f, StringTensorType([None, 1]) if kinds.get(f) == "category" else FloatTensorType([None, 1])) for f in features
    ]


def convert(model: Any, X: pd.DataFrame | None = None, feature_names: list[str] | None = None) -> tuple[bytes, str]:
    """The ONNX bytes of a fitted model and its input layout, or NotConvertibleError with the reason."""
    from skl2onnx import convert_sklearn  # heavy and optional: only a conversion needs it

    features = _features(model, X, feature_names)
    kinds = feature_types(X[features]) if X is not None and set(features) <= set(X.columns) else {}
    kinds = {f: kinds.get(f, "number") for f in features}
    estimator = final_estimator(model)
    label = type(estimator).__name__
    try:
        prepared, layout = _prepared(model, features, kinds)
        options = {id(final_estimator(prepared)): {"zipmap": False}} if hasattr(estimator, "predict_proba") else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onx = convert_sklearn(prepared, initial_types=_initial_types(features, kinds, layout), options=options)
    except Exception as exc:  # skl2onnx raises many kinds; all mean "cannot convert"
        raise NotConvertibleError(f"not convertible: {label}: {short_reason(exc)}") from exc
    meta = {META_LAYOUT: layout, META_FEATURES: json.dumps([{"name": f, "kind": kinds[f]} for f in features])}
    for key, value in meta.items():
        entry = onx.metadata_props.add()
        entry.key, entry.value = key, value
    return onx.SerializeToString(), layout


def check_parity(data: bytes, model: Any, X: pd.DataFrame, tolerance: float = PROBA_TOLERANCE) -> Parity:
    """Compare onnxruntime with scikit-learn on ``X``: labels equal, probabilities within ``tolerance``."""
    features = model_input(model, X)
    expected = np.asarray(model.predict(features))
    labels, proba = run_onnx(data, X)
    if is_regressor(model):
        return _value_parity(np.asarray(labels, dtype=np.float64), expected.astype(np.float64), tolerance)
    mismatched = int(np.sum(np.asarray(labels).astype(object) != expected.astype(object)))
    max_diff = None
    proba_ok = True
    if proba is not None and hasattr(model, "predict_proba"):
        try:
            reference = model.predict_proba(features)
        except AttributeError:
            reference = None
        if reference is not None:
            max_diff = float(np.max(np.abs(np.asarray(proba, dtype=np.float64) - reference))) if len(X) else 0.0
            proba_ok = max_diff <= tolerance
    return Parity(
        rows=len(X),
        labels_equal=mismatched == 0,
        mismatched_labels=mismatched,
        max_proba_diff=max_diff,
        tolerance=tolerance,
        passed=mismatched == 0 and proba_ok,
    )


def _value_parity(values: np.ndarray, expected: np.ndarray, tolerance: float) -> Parity:
    """Regressors: every prediction within ``tolerance * max(1, |expected|)`` of scikit-learn's."""
    values = values.reshape(expected.shape) if values.size == expected.size else values
    if values.shape != expected.shape:
        return Parity(len(expected), False, len(expected), None, tolerance, False, float("inf"))
    diff = np.abs(values - expected)
    outside = int(np.sum(~(diff <= tolerance * np.maximum(1.0, np.abs(expected)))))
    largest = float(np.max(diff)) if diff.size else 0.0
    return Parity(len(expected), outside == 0, outside, None, tolerance, outside == 0, largest)


def export_onnx(model: Any, X: pd.DataFrame | None, feature_names: list[str] | None = None) -> OnnxExport:
    """Convert, then prove it on ``X`` (the evaluation set) when there is one."""
    data, layout = convert(model, X, feature_names)
    parity = check_parity(data, model, X) if X is not None and len(X) else None
    return OnnxExport(data=data, parity=parity, layout=layout)
