"""Plain-parameter export: a model's learned numbers as JSON, proved against the model.

The tutorial's last tip, made concrete: keep the parameters in a form you control. The JSON
holds no code and no pickle, only arrays and names (the schema is in docs/portable.md, with a
``schema_version``). ``core.portable.params_predict`` reads it with numpy alone;
``params_rebuild.to_sklearn`` rebuilds a working scikit-learn model from it, which is the answer to "my pickle no longer
loads after an upgrade": export the JSON with the old version, import it with the new one.

Every catalog estimator is represented: linear models, trees, forests and Gaussian naive Bayes
(schema version 1), gradient boosting, histogram gradient boosting, SVC and k-NN (version 2; a
k-NN file holds its training rows). An export is only written when the numpy predictor
reproduces the model's labels exactly on the rows given (the version's kept evaluation set);
what cannot be represented faithfully (``REFUSED``: custom steps, multi-output, categorical
splits, ...) is refused with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

from core.datasets import to_jsonable
from core.describe import class_path, final_estimator
from core.errors import FormatError
from core.frames import model_input
from core.portable import params_predict
from core.portable.params_predict import FORMAT, MODEL_TYPES

#: What the schema does not hold, and why (checked in ``_model_params``; everything else in the
#: catalog is exported).
REFUSED = {
    "custom steps": "preprocessing other than SimpleImputer, StandardScaler and OneHotEncoder in a "
    "ColumnTransformer, or any step after it, is not in the schema",
    "multi-output": "models predicting several targets at once are not in the schema",
    "categorical splits": "HistGradientBoostingClassifier splits on native categories (bitsets over "
    "binned values) are not in the schema; core's pipelines one-hot encode text columns instead",
    "custom init": "GradientBoostingClassifier with an init estimator other than the default class "
    "prior (or 'zero') is not in the schema",
    "precomputed or callable kernels": "an SVC kernel other than rbf, linear, poly or sigmoid is not in the schema",
    "other metrics": "KNeighborsClassifier with a metric other than minkowski (any p) or euclidean/"
    "manhattan, or with callable weights, is not in the schema",
}
#: A KNN export holds the whole training set: above this many numbers it is refused (use ONNX or
#: the model file), to keep a "parameter file" from silently becoming a copy of a large data set.
KNN_MAX_VALUES = 5_000_000
#: The node arrays an export writes beyond the split itself, and ``params_rebuild`` reads back.
NODE_EXTRAS = ("impurity", "n_node_samples", "weighted_n_node_samples", "missing_go_to_left")
HGB_FIELDS = ("value", "count", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right")
HGB_EXTRAS = ("gain", "depth", "is_leaf", "bin_threshold")


class NotRepresentableError(FormatError):
    """The model has parts the plain-parameter schema cannot hold faithfully."""


def _refuse(reason: str) -> NotRepresentableError:
    return NotRepresentableError(f"not exportable as JSON parameters: {reason}")


def _floats(array: Any) -> list[Any]:
    array = np.asarray(array, dtype=np.float64)
    if not np.isfinite(array).all():
        raise _refuse("a learned array holds NaN or infinity, which plain JSON cannot carry")
    return array.tolist()


def _step_params(step: Any, kind: str) -> dict[str, Any]:
    if isinstance(step, SimpleImputer):
        if step.add_indicator or not (isinstance(step.missing_values, float) and np.isnan(step.missing_values)):
            raise _refuse("only SimpleImputer(missing_values=nan, add_indicator=False) is represented")
        statistics = step.statistics_
        if kind == "numeric":
            return {"type": "simple_imputer", "strategy": step.strategy, "statistics": _floats(statistics)}
        return {"type": "simple_imputer", "strategy": step.strategy, "statistics": [to_jsonable(v) for v in statistics]}
    if isinstance(step, StandardScaler) and kind == "numeric":
        return {
            "type": "standard_scaler",
            "mean": None if step.mean_ is None or not step.with_mean else _floats(step.mean_),
            "scale": None if step.scale_ is None or not step.with_std else _floats(step.scale_),
        }
    if isinstance(step, OneHotEncoder) and kind == "categorical":
        if step.drop is not None or step.sparse_output or getattr(step, "_infrequent_enabled", False):
            raise _refuse("only OneHotEncoder(drop=None, sparse_output=False) without infrequent categories")
        return {
            "type": "one_hot_encoder",
            "categories": [[to_jsonable(c) for c in cats] for cats in step.categories_],
            "handle_unknown": step.handle_unknown,
        }
    raise _refuse(f"the preprocessing step {type(step).__name__} on {kind} columns is not in the schema")


def _preprocess_params(transformer: ColumnTransformer, features: list[str]) -> dict[str, Any]:
    blocks = []
    for name, fitted, columns in transformer.transformers_:
        if isinstance(fitted, str):
            if fitted == "drop" or len(columns) == 0:
                continue
            raise _refuse(f"the ColumnTransformer passes columns through unchanged ({name!r})")
        if not isinstance(fitted, Pipeline):
            fitted = Pipeline([("step", fitted)])
        names = [features[c] if isinstance(c, (int, np.integer)) else str(c) for c in columns]
        kind = "categorical" if any(isinstance(s, OneHotEncoder) for _, s in fitted.steps) else "numeric"
        steps = [_step_params(step, kind) for _, step in fitted.steps]
        if kind == "categorical" and steps[-1]["type"] != "one_hot_encoder":
            raise _refuse("a categorical block must end with its one-hot encoder")
        blocks.append({"name": name, "kind": kind, "columns": names, "steps": steps})
    return {"type": "column_transformer", "blocks": blocks}


def _tree_params(tree: Any) -> dict[str, Any]:
    t = tree.tree_
    out: dict[str, Any] = {
        "children_left": t.children_left.tolist(),
        "children_right": t.children_right.tolist(),
        "feature": t.feature.tolist(),
        "threshold": _floats(t.threshold),
        "value": _floats(t.value),
        "max_depth": int(t.max_depth),
    }
    nodes = t.__getstate__()["nodes"]
    for extra in NODE_EXTRAS:
        out[extra] = nodes[extra].tolist()
    return out


def _gradient_boosting_params(estimator: GradientBoostingClassifier) -> dict[str, Any]:
    init = estimator.init_
    if isinstance(init, str) and init == "zero":
        prior = None
    elif isinstance(init, DummyClassifier) and init.strategy == "prior":
        prior = _floats(init.class_prior_)
    else:
        raise _refuse(f"GradientBoostingClassifier: {REFUSED['custom init']}")
    # The init raw prediction is the same for every row: take it from scikit-learn itself, so the
    # link (log-odds, log of priors) and its clipping are exactly scikit-learn's.
    n_features = estimator.n_features_in_
    init_raw = estimator._raw_predict_init(np.zeros((1, n_features), dtype=np.float32))[0]
    return {
        "type": "gradient_boosting",
        "learning_rate": float(estimator.learning_rate),
        "init_raw": _floats(init_raw),
        "init_class_prior": prior,
        "trees": [[_tree_params(tree) for tree in stage] for stage in estimator.estimators_],
    }


def _hist_gradient_boosting_params(estimator: HistGradientBoostingClassifier) -> dict[str, Any]:
    is_categorical = getattr(estimator, "is_categorical_", None)
    if getattr(estimator, "_preprocessor", None) is not None or (is_categorical is not None and np.any(is_categorical)):
        raise _refuse(f"HistGradientBoostingClassifier: {REFUSED['categorical splits']}")
    predictors = []
    for iteration in estimator._predictors:
        trees = []
        for predictor in iteration:
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise _refuse(f"HistGradientBoostingClassifier: {REFUSED['categorical splits']}")
            tree = {}
            for field in (*HGB_FIELDS, *HGB_EXTRAS):
                column = nodes[field]
                tree[field] = _floats(column) if column.dtype.kind == "f" else column.tolist()
            trees.append(tree)
        predictors.append(trees)
    return {
        "type": "hist_gradient_boosting",
        "baseline": _floats(np.ravel(estimator._baseline_prediction)),
        "predictors": predictors,
    }


def _knn_params(estimator: KNeighborsClassifier) -> dict[str, Any]:
    metric = estimator.effective_metric_
    metric_params = estimator.effective_metric_params_ or {}
    powers = {"euclidean": 2, "manhattan": 1}
    if metric in powers and not metric_params:
        p = powers[metric]
    elif metric == "minkowski" and set(metric_params) <= {"p", "w"} and metric_params.get("w") is None:
        p = metric_params.get("p", estimator.p)
    else:
        raise _refuse(f"KNeighborsClassifier: {REFUSED['other metrics']} (metric {metric!r})")
    if estimator.weights not in ("uniform", "distance") or estimator.outputs_2d_:
        raise _refuse(f"KNeighborsClassifier: {REFUSED['other metrics']}")
    fit_X = np.asarray(estimator._fit_X)
    if fit_X.size > KNN_MAX_VALUES:
        raise _refuse(
            f"KNeighborsClassifier: its training set has {fit_X.size} numbers, more than the "
            f"{KNN_MAX_VALUES} a parameter file may hold; use ONNX or the model file"
        )
    out = {
        "type": "knn",
        "n_neighbors": int(estimator.n_neighbors),
        "weights": estimator.weights,
        "p": float(p) if float(p) != int(p) else int(p),
        "algorithm": estimator._fit_method,
        "fit_X": _floats(fit_X),
        "y": np.asarray(estimator._y).astype(np.int64).tolist(),
    }
    if estimator._fit_method == "kd_tree":
        # Which of several rows at the same distance are kept depends on the order the KD-tree
        # visits them: its node arrays are exported so the numpy predictor walks the same tree.
        _, idx_array, node_data, node_bounds = estimator._tree.get_arrays()
        out["kd_tree"] = {
            "idx_array": np.asarray(idx_array).astype(np.int64).tolist(),
            "idx_start": node_data["idx_start"].astype(np.int64).tolist(),
            "idx_end": node_data["idx_end"].astype(np.int64).tolist(),
            "is_leaf": node_data["is_leaf"].astype(bool).tolist(),
            "lower": _floats(node_bounds[0]),
            "upper": _floats(node_bounds[1]),
        }
    elif estimator._fit_method != "brute":
        raise _refuse(
            f"KNeighborsClassifier: its {estimator._fit_method} search is not in the schema "
            "(brute force and KD-tree are)"
        )
    return out


def _svc_params(estimator: SVC) -> dict[str, Any]:
    if estimator.kernel not in ("rbf", "linear", "poly", "sigmoid") or estimator._sparse:
        raise _refuse(f"SVC: {REFUSED['precomputed or callable kernels']}")
    if estimator.break_ties and estimator.decision_function_shape == "ovr" and len(estimator.classes_) > 2:
        raise _refuse("SVC(break_ties=True) predicts from the one-vs-rest scores, which are not in the schema")
    return {
        "type": "svc",
        "kernel": estimator.kernel,
        "gamma": float(estimator._gamma),
        "coef0": float(estimator.coef0),
        "degree": int(estimator.degree),
        "support_vectors": _floats(estimator.support_vectors_),
        "n_support": np.asarray(estimator._n_support).astype(np.int64).tolist(),
        "dual_coef": _floats(estimator._dual_coef_),
        "intercept": _floats(estimator._intercept_),
        "support": np.asarray(estimator.support_).astype(np.int64).tolist(),
        "prob_a": _floats(estimator._probA),
        "prob_b": _floats(estimator._probB),
        "n_train": int(estimator.shape_fit_[0]),
    }


def _model_params(estimator: Any) -> dict[str, Any]:
    name = type(estimator).__name__
    if getattr(estimator, "n_outputs_", 1) != 1 or getattr(estimator, "outputs_2d_", False):
        raise _refuse(REFUSED["multi-output"])
    if type(estimator) is GradientBoostingClassifier:
        return _gradient_boosting_params(estimator)
    if type(estimator) is HistGradientBoostingClassifier:
        return _hist_gradient_boosting_params(estimator)
    if type(estimator) is KNeighborsClassifier:
        return _knn_params(estimator)
    if type(estimator) is SVC:
        return _svc_params(estimator)
    if isinstance(estimator, LinearClassifierMixin):
        return {
            "type": "linear",
            "coef": _floats(estimator.coef_),
            "intercept": _floats(np.atleast_1d(estimator.intercept_)),
        }
    if isinstance(estimator, GaussianNB):
        return {
            "type": "gaussian_nb",
            "theta": _floats(estimator.theta_),
            "var": _floats(estimator.var_),
            "class_prior": _floats(estimator.class_prior_),
            "class_count": _floats(estimator.class_count_),
            "epsilon": float(estimator.epsilon_),
        }
    if isinstance(estimator, (DecisionTreeClassifier, ExtraTreeClassifier)):
        return {"type": "tree", "tree": _tree_params(estimator)}
    if isinstance(estimator, (RandomForestClassifier, ExtraTreesClassifier)):
        return {"type": "forest", "trees": [_tree_params(t) for t in estimator.estimators_]}
    raise _refuse(
        f"{name} is not one of the represented estimators (linear models, decision trees, "
        "random forests, extra trees, gradient boosting, histogram gradient boosting, SVC, "
        "k-nearest neighbours, Gaussian naive Bayes)"
    )


def _classes_dtype(classes: np.ndarray) -> str:
    kind = classes.dtype.kind
    if kind in "iu":
        return "int64"
    if kind == "f":
        return "float64"
    if kind == "b":
        return "bool"
    return "object"


def to_params(model: Any, feature_names: list[str] | None = None) -> dict[str, Any]:
    """The JSON-able plain-parameter document of a fitted model (or a clear refusal)."""
    estimator = final_estimator(model)
    if not hasattr(estimator, "classes_"):
        # Schema versions 1 and 2 describe classifiers only; a regressor's values are not in them yet.
        kind = "a regressor" if is_regressor(estimator) else "not a fitted classifier"
        raise _refuse(
            f"{type(estimator).__name__} is {kind}: the JSON schema describes classifiers only "
            "(use the ONNX form or the model file)"
        )
    steps = model.steps[:-1] if isinstance(model, Pipeline) else []
    if len(steps) > 1 or (steps and not isinstance(steps[0][1], ColumnTransformer)):
        raise _refuse("only a ColumnTransformer followed by the estimator is represented")
    names = getattr(model, "feature_names_in_", None)
    features = [str(c) for c in names] if names is not None else list(feature_names or [])
    if not features:
        features = [f"x{i}" for i in range(int(getattr(model, "n_features_in_", estimator.n_features_in_)))]
    kinds = {f: "number" for f in features}
    preprocess = None
    if steps:
        preprocess = _preprocess_params(steps[0][1], features)
        for block in preprocess["blocks"]:
            for column in block["columns"]:
                kinds[column] = "category" if block["kind"] == "categorical" else "number"
    classes = np.asarray(estimator.classes_)
    model_params = _model_params(estimator)
    return {
        "format": FORMAT,
        # The lowest version that describes the document, so older readers still read what they can.
        "schema_version": MODEL_TYPES[model_params["type"]],
        "estimator": class_path(model),
        "params": {k: v for k, v in estimator.get_params(deep=False).items() if _plain(v)},
        "features": [{"name": f, "kind": kinds[f]} for f in features],
        "classes": [to_jsonable(c) for c in classes],
        "classes_dtype": _classes_dtype(classes),
        "preprocess": preprocess,
        "model": model_params,
    }


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return not (isinstance(value, float) and not np.isfinite(value))
    return False


@dataclass
class ParamsExport:
    """The JSON text plus what the exactness check found."""

    text: str
    params: dict[str, Any]
    rows_checked: int
    exact: bool | None  # None: there were no rows to check it on

    def summary(self) -> dict[str, Any]:
        return {"exact": self.exact, "rows_checked": self.rows_checked, "schema_version": self.params["schema_version"]}


def disagreements(params: dict[str, Any], model: Any, X: pd.DataFrame) -> int:
    """On how many rows of ``X`` the numpy predictor's label differs from the model's (0: exact)."""
    expected = np.asarray(model.predict(model_input(model, X)))
    return int(np.sum(np.asarray(params_predict.predict(params, X)) != expected))


def export_params(model: Any, X: pd.DataFrame | None, feature_names: list[str] | None = None) -> ParamsExport:
    """Export and prove it: the numpy predictor must give scikit-learn's labels on every row of ``X``."""
    params = to_params(model, feature_names)
    text = json.dumps(params, allow_nan=False, separators=(",", ":"))
    reread = json.loads(text)
    rows = 0
    if X is not None and len(X):
        mismatched = disagreements(reread, model, X)
        if mismatched:
            raise _refuse(
                f"the numpy predictor disagrees with scikit-learn on {mismatched} of {len(X)} evaluation rows"
            )
        rows = len(X)
    return ParamsExport(text=text, params=reread, rows_checked=rows, exact=True if rows else None)
