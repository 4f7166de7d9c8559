"""Plain-parameter export: a model's learned numbers as JSON, and back into scikit-learn.

The tutorial's last tip, made concrete: keep the parameters in a form you control. The JSON
holds no code and no pickle, only arrays and names (the schema is in docs/portable.md, with a
``schema_version``). ``core.portable.params_predict`` reads it with numpy alone; ``to_sklearn``
rebuilds a working scikit-learn model from it, which is the answer to "my pickle no longer
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
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
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
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier

from core.datasets import to_jsonable
from core.describe import class_path, final_estimator
from core.errors import FormatError
from core.frames import model_input
from core.portable import params_predict
from core.portable.params_checks import check_document
from core.portable.params_predict import FORMAT, MODEL_TYPES, READABLE, SCHEMA_VERSION

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
_TREE_FIELDS = ("children_left", "children_right", "feature", "threshold")
_NODE_EXTRAS = ("impurity", "n_node_samples", "weighted_n_node_samples", "missing_go_to_left")


class NotRepresentableError(FormatError):
    """The model has parts the plain-parameter schema cannot hold faithfully."""


def _refuse(reason: str) -> NotRepresentableError:
    return NotRepresentableError(f"not exportable as JSON parameters: {reason}")


def _floats(array: Any) -> list[Any]:
    array = np.asarray(array, dtype=np.float64)
    if not np.isfinite(array).all():
        raise _refuse("a learned array holds NaN or infinity, which plain JSON cannot carry")
    return array.tolist()


# -- export -----------------------------------------------------------------------------------------


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
    for extra in _NODE_EXTRAS:
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


_HGB_FIELDS = ("value", "count", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right")
_HGB_EXTRAS = ("gain", "depth", "is_leaf", "bin_threshold")


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
            for field in (*_HGB_FIELDS, *_HGB_EXTRAS):
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
        raise _refuse(f"{type(estimator).__name__} is not a fitted classifier")
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


# -- import -----------------------------------------------------------------------------------------


def read_params(data: bytes | str | dict[str, Any], max_bytes: int | None = None) -> dict[str, Any]:
    """Parse and check a plain-parameter document (no code is ever run).

    The text is bounded (``max_bytes``, the upload limit by default) before it is parsed, and the
    document is checked by ``params_checks.check_document`` (class dtypes from a short list,
    bounded counts, child links that form trees) before anything is built from it.
    """
    if isinstance(data, dict):
        params = data
    else:
        if max_bytes is None:
            from core.settings import load_settings

            max_bytes = load_settings().max_upload_bytes
        if len(data) > max_bytes:
            raise FormatError(f"The parameter file is {len(data):,} bytes, over the upload limit of {max_bytes:,}")
        try:
            params = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise FormatError(f"Not a JSON parameter file: {type(exc).__name__}: {exc}") from exc
    if not isinstance(params, dict) or params.get("format") != FORMAT:
        raise FormatError(f'Not a ModelShelf parameter file (expected "format": "{FORMAT}")')
    if params.get("schema_version") not in READABLE:
        raise FormatError(
            f"Unsupported schema_version {params.get('schema_version')!r}: "
            f"this ModelShelf reads versions {', '.join(map(str, READABLE))} (up to {SCHEMA_VERSION})"
        )
    for key in ("features", "classes", "classes_dtype", "model", "estimator"):
        if key not in params:
            raise FormatError(f"The parameter file lacks the field {key!r}")
    kind = params["model"].get("type") if isinstance(params["model"], dict) else None
    if kind not in MODEL_TYPES:
        raise FormatError(f"Unknown model type {kind!r} in the parameter file; known: {', '.join(MODEL_TYPES)}")
    if MODEL_TYPES[kind] > params["schema_version"]:
        raise FormatError(f"The model type {kind!r} needs schema_version {MODEL_TYPES[kind]} or later")
    check_document(params)
    return params


def _estimator_class(path: str) -> type:
    classes = {
        c.__name__: c
        for c in (
            DecisionTreeClassifier,
            ExtraTreeClassifier,
            RandomForestClassifier,
            ExtraTreesClassifier,
            GaussianNB,
            GradientBoostingClassifier,
            HistGradientBoostingClassifier,
            KNeighborsClassifier,
            SVC,
        )
    }
    name = path.rsplit(".", 1)[-1]
    if name in classes:
        return classes[name]
    from sklearn import linear_model, svm

    for module in (linear_model, svm):
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, LinearClassifierMixin):
            return cls
    raise FormatError(f"The parameter file names an estimator ModelShelf does not rebuild: {path!r}")


def _fresh(cls: type, params: dict[str, Any]) -> Any:
    accepted = cls().get_params(deep=False)
    return cls(**{k: v for k, v in params.items() if k in accepted})


def _rebuild_tree(data: dict[str, Any], n_features: int, n_classes: int, params: dict[str, Any], cls: type) -> Any:
    from sklearn.tree._tree import NODE_DTYPE, Tree

    n_nodes = len(data["children_left"])
    nodes = np.zeros(n_nodes, dtype=NODE_DTYPE)
    nodes["left_child"] = data["children_left"]
    nodes["right_child"] = data["children_right"]
    nodes["feature"] = data["feature"]
    nodes["threshold"] = data["threshold"]
    for extra in _NODE_EXTRAS:
        if extra in data:
            nodes[extra] = data[extra]
    values = np.ascontiguousarray(np.asarray(data["value"], dtype=np.float64).reshape(n_nodes, 1, n_classes))
    tree = Tree(n_features, np.array([n_classes], dtype=np.intp), 1)
    tree.__setstate__({"max_depth": int(data["max_depth"]), "node_count": n_nodes, "nodes": nodes, "values": values})
    estimator = _fresh(cls, params)
    estimator.tree_ = tree
    estimator.n_outputs_ = 1
    estimator.n_features_in_ = n_features
    estimator.max_features_ = n_features
    return estimator


def _synthetic_fit(estimator: Any, n_features: int, classes: np.ndarray) -> Any:
    """Fit on a few made-up rows so scikit-learn sets up its own private state (loss, binning,
    validation); the learned arrays are then replaced by the ones from the JSON."""
    y = np.tile(classes, 4)
    X = np.arange(len(y) * n_features, dtype=np.float64).reshape(len(y), n_features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X, y)


def _rebuild_gradient_boosting(
    model: dict[str, Any], n_features: int, classes: np.ndarray, params: dict[str, Any]
) -> GradientBoostingClassifier:
    settings = {**params, "n_estimators": 1, "n_iter_no_change": None, "subsample": 1.0}
    prior = model.get("init_class_prior")
    settings["init"] = "zero" if prior is None else None
    estimator = _synthetic_fit(_fresh(GradientBoostingClassifier, settings), n_features, classes)
    estimator.set_params(**{k: v for k, v in params.items() if k in estimator.get_params(deep=False)})
    if prior is not None:
        estimator.init_.class_prior_ = np.asarray(prior, dtype=np.float64)
    stages = model["trees"]
    trees = np.empty((len(stages), len(stages[0])), dtype=object)
    for i, stage in enumerate(stages):
        for k, tree in enumerate(stage):
            trees[i, k] = _rebuild_tree(tree, n_features, 1, {}, DecisionTreeRegressor)
    estimator.estimators_ = trees
    estimator.n_estimators_ = len(stages)
    estimator.train_score_ = np.zeros(len(stages), dtype=np.float64)
    estimator.learning_rate = float(model["learning_rate"])
    return estimator


def _rebuild_hist_gradient_boosting(
    model: dict[str, Any], n_features: int, classes: np.ndarray, params: dict[str, Any]
) -> HistGradientBoostingClassifier:
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE, X_BITSET_INNER_DTYPE
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    settings = {**params, "max_iter": 1, "early_stopping": False, "categorical_features": None}
    estimator = _synthetic_fit(_fresh(HistGradientBoostingClassifier, settings), n_features, classes)
    estimator.set_params(**{k: v for k, v in params.items() if k in estimator.get_params(deep=False)})
    no_bitsets = np.zeros((0, 8), dtype=X_BITSET_INNER_DTYPE)
    predictors = []
    for iteration in model["predictors"]:
        trees = []
        for tree in iteration:
            nodes = np.zeros(len(tree["value"]), dtype=PREDICTOR_RECORD_DTYPE)
            for field in (*_HGB_FIELDS, *_HGB_EXTRAS):
                nodes[field] = tree[field]
            trees.append(TreePredictor(nodes, no_bitsets, no_bitsets.copy()))
        predictors.append(trees)
    baseline = np.asarray(model["baseline"], dtype=np.float64).reshape(1, -1)
    if baseline.shape[1] != estimator.n_trees_per_iteration_:
        raise FormatError("The parameter file's baseline does not match its number of classes")
    estimator._predictors = predictors
    estimator._baseline_prediction = baseline
    return estimator


def _rebuild_svc(model: dict[str, Any], n_features: int, classes: np.ndarray, params: dict[str, Any]) -> SVC:
    estimator = _fresh(SVC, params)
    dual = np.asarray(model["dual_coef"], dtype=np.float64)
    intercept = np.asarray(model["intercept"], dtype=np.float64)
    estimator._sparse = False
    estimator.support_ = np.asarray(model["support"], dtype=np.int32)
    estimator.support_vectors_ = np.asarray(model["support_vectors"], dtype=np.float64).reshape(-1, n_features)
    estimator._n_support = np.asarray(model["n_support"], dtype=np.int32)
    estimator._dual_coef_ = dual
    estimator._intercept_ = intercept
    # The public attributes carry scikit-learn's signs: flipped for two classes (see SVC.fit).
    binary = len(classes) == 2
    estimator.dual_coef_ = -dual if binary else dual
    estimator.intercept_ = -intercept if binary else intercept.copy()
    estimator._probA = np.asarray(model.get("prob_a") or [], dtype=np.float64)
    estimator._probB = np.asarray(model.get("prob_b") or [], dtype=np.float64)
    estimator._effective_probability = bool(estimator._probA.size)
    estimator._gamma = float(model["gamma"])
    estimator.fit_status_ = 0
    estimator.shape_fit_ = (int(model.get("n_train", 0)), n_features)
    estimator.class_weight_ = np.ones(len(classes), dtype=np.float64)
    n_pairs = len(classes) * (len(classes) - 1) // 2
    estimator._num_iter = np.zeros(n_pairs, dtype=np.int32)
    estimator.n_iter_ = estimator._num_iter
    return estimator


def _rebuild_estimator(params: dict[str, Any], n_features: int) -> Any:
    cls = _estimator_class(params["estimator"])
    model = params["model"]
    classes = params_predict._classes(params)
    n_classes = len(classes)
    kind = model["type"]
    if kind == "linear":
        estimator = _fresh(cls, params.get("params", {}))
        estimator.coef_ = np.asarray(model["coef"], dtype=np.float64)
        estimator.intercept_ = np.asarray(model["intercept"], dtype=np.float64)
    elif kind == "gaussian_nb":
        estimator = _fresh(cls, params.get("params", {}))
        estimator.theta_ = np.asarray(model["theta"], dtype=np.float64)
        estimator.var_ = np.asarray(model["var"], dtype=np.float64)
        estimator.class_prior_ = np.asarray(model["class_prior"], dtype=np.float64)
        estimator.class_count_ = np.asarray(model["class_count"], dtype=np.float64)
        estimator.epsilon_ = float(model["epsilon"])
    elif kind == "tree":
        estimator = _rebuild_tree(model["tree"], n_features, n_classes, params.get("params", {}), cls)
        estimator.n_classes_ = n_classes
    elif kind == "forest":
        inner = ExtraTreeClassifier if cls is ExtraTreesClassifier else DecisionTreeClassifier
        estimator = _fresh(cls, params.get("params", {}))
        estimator.estimators_ = []
        for tree in model["trees"]:
            member = _rebuild_tree(tree, n_features, n_classes, {}, inner)
            member.classes_ = np.arange(n_classes, dtype=np.float64)
            member.n_classes_ = n_classes
            estimator.estimators_.append(member)
        estimator.estimator_ = inner()
        estimator.n_classes_ = n_classes
        estimator.n_outputs_ = 1
    elif kind == "gradient_boosting":
        estimator = _rebuild_gradient_boosting(model, n_features, classes, params.get("params", {}))
    elif kind == "hist_gradient_boosting":
        estimator = _rebuild_hist_gradient_boosting(model, n_features, classes, params.get("params", {}))
    elif kind == "knn":
        estimator = _fresh(cls, params.get("params", {}))
        # Fitting k-NN only stores the rows (and picks its search structure from them): fitting
        # on the exported rows and labels IS the faithful rebuild.
        estimator.fit(np.asarray(model["fit_X"], dtype=np.float64), classes.take(np.asarray(model["y"], dtype=np.intp)))
    elif kind == "svc":
        estimator = _rebuild_svc(model, n_features, classes, params.get("params", {}))
    else:
        raise FormatError(f"Unknown model type {kind!r} in the parameter file")
    estimator.classes_ = classes
    estimator.n_features_in_ = n_features
    return estimator


def _rebuild_preprocess(preprocess: dict[str, Any], features: list[dict[str, Any]]) -> ColumnTransformer:
    """Fit the pipeline's own preprocessing on a tiny frame built from the JSON, then set the learned values."""
    transformers = []
    n_rows = 2
    for block in preprocess["blocks"]:
        steps: list[tuple[str, Any]] = []
        for step in block["steps"]:
            if step["type"] == "simple_imputer":
                steps.append(("impute", SimpleImputer(strategy=step["strategy"])))
            elif step["type"] == "standard_scaler":
                steps.append(
                    ("scale", StandardScaler(with_mean=step["mean"] is not None, with_std=step["scale"] is not None))
                )
            elif step["type"] == "one_hot_encoder":
                steps.append(("onehot", OneHotEncoder(handle_unknown=step["handle_unknown"], sparse_output=False)))
                n_rows = max(n_rows, *(len(c) for c in step["categories"]))
            else:
                raise FormatError(f"Unknown preprocessing step {step['type']!r} in the parameter file")
        transformers.append((block["name"], Pipeline(steps), list(block["columns"])))
    frame = {}
    for feature in features:
        frame[feature["name"]] = np.arange(n_rows, dtype=np.float64) if feature["kind"] == "number" else None
    for block in preprocess["blocks"]:
        onehot = next((s for s in block["steps"] if s["type"] == "one_hot_encoder"), None)
        if onehot is not None:
            for column, categories in zip(block["columns"], onehot["categories"], strict=True):
                frame[column] = pd.Series([categories[i % len(categories)] for i in range(n_rows)], dtype=object)
    synthetic = pd.DataFrame({k: (v if v is not None else ["?"] * n_rows) for k, v in frame.items()})
    transformer = ColumnTransformer(transformers, verbose_feature_names_out=False)
    transformer.fit(synthetic)
    for (_, fitted, _), block in zip(transformer.transformers_, preprocess["blocks"], strict=False):
        for (_, step), spec in zip(fitted.steps, block["steps"], strict=True):
            if spec["type"] == "simple_imputer":
                dtype = np.float64 if block["kind"] == "numeric" else object
                step.statistics_ = np.asarray(spec["statistics"], dtype=dtype)
            elif spec["type"] == "standard_scaler":
                step.mean_ = None if spec["mean"] is None else np.asarray(spec["mean"], dtype=np.float64)
                step.scale_ = None if spec["scale"] is None else np.asarray(spec["scale"], dtype=np.float64)
                step.var_ = None if step.scale_ is None else step.scale_**2
            elif spec["type"] == "one_hot_encoder":
                learned = [list(c) for c in step.categories_]
                if learned != [list(c) for c in spec["categories"]]:
                    raise FormatError("The one-hot categories could not be rebuilt in their recorded order")
    return transformer


def to_sklearn(data: bytes | str | dict[str, Any]) -> Any:
    """A working scikit-learn model (a Pipeline when the JSON has preprocessing) from the JSON."""
    params = read_params(data)
    features = params["features"]
    try:
        if params.get("preprocess"):
            preprocess = _rebuild_preprocess(params["preprocess"], features)
            n_features = sum(
                len(b["columns"]) if b["kind"] == "numeric" else sum(len(c) for c in b["steps"][-1]["categories"])
                for b in params["preprocess"]["blocks"]
            )
            return Pipeline([("preprocess", preprocess), ("model", _rebuild_estimator(params, n_features))])
        return _rebuild_estimator(params, len(features))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"The parameter file is malformed: {type(exc).__name__}: {exc}") from None


def is_params_json(data: bytes) -> bool:
    """True when the bytes are a ModelShelf plain-parameter document (by content, not by name)."""
    if data.lstrip()[:1] != b"{":
        return False
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return False
    # Only the marker: a parameter file with a newer schema must reach read_params and say so.
    return isinstance(document, dict) and document.get("format") == FORMAT


def import_params(
    store: Any,
    data: bytes,
    name: str,
    *,
    filename: str | None = None,
    tags: Any = (),
    note: str = "",
    owner: str | None = None,
) -> dict[str, Any]:
    """Rebuild the model from its JSON with THIS scikit-learn and store it as a new version (joblib).

    The way back when a pickle no longer loads: nothing in the JSON is executed, only numbers
    and names are read. The version records where it came from; it has no evaluation set (the
    JSON carries none), so score it with ``Store.evaluate(ref, data=...)``.
    """
    from core.formats import sha256_bytes

    params = read_params(data)
    model = to_sklearn(params)
    features = params["features"]
    dataset = {
        "source": filename or "params.json",
        "fingerprint": None,
        "n_rows": None,
        "n_features": len(features),
        "feature_names": [f["name"] for f in features],
        "feature_types": {f["name"]: f["kind"] for f in features},
        "target": None,
        "classes": params["classes"],
    }
    imported = {
        "filename": filename,
        "sha256": sha256_bytes(data),
        "size_bytes": len(data),
        "from": "json",
        "schema_version": params["schema_version"],
        "estimator": params["estimator"],
    }
    return store.save(
        model,
        name,
        format="joblib",
        tags=tags,
        note=note,
        dataset=dataset,
        owner=owner,
        extra={"origin": "imported", "imported": imported, "estimator_key": None},
    )
