"""The way back: a working scikit-learn model rebuilt from a plain-parameter document.

The answer to "my pickle no longer loads after an upgrade": export the JSON with the old
version, rebuild it here with this one (``to_sklearn``). The document is read and checked by
``params_checks.read_params`` first; nothing in it is executed, only numbers and names are read.
Fitted arrays are set from the JSON; where scikit-learn keeps private state (loss, binning,
validation), a fit on a few made-up rows sets it up before the learned arrays replace its own.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn import linear_model, svm
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE, X_BITSET_INNER_DTYPE
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.impute import SimpleImputer
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier
from sklearn.tree._tree import NODE_DTYPE, Tree

from core.errors import FormatError
from core.portable import params_predict
from core.portable.params_checks import read_params
from core.portable.params_export import HGB_EXTRAS, HGB_FIELDS, NODE_EXTRAS


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
    for module in (linear_model, svm):
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, LinearClassifierMixin):
            return cls
    raise FormatError(f"The parameter file names an estimator ModelShelf does not rebuild: {path!r}")


def _fresh(cls: type, params: dict[str, Any]) -> Any:
    accepted = cls().get_params(deep=False)
    return cls(**{k: v for k, v in params.items() if k in accepted})


def _rebuild_tree(data: dict[str, Any], n_features: int, n_classes: int, params: dict[str, Any], cls: type) -> Any:
    n_nodes = len(data["children_left"])
    nodes = np.zeros(n_nodes, dtype=NODE_DTYPE)
    nodes["left_child"] = data["children_left"]
    nodes["right_child"] = data["children_right"]
    nodes["feature"] = data["feature"]
    nodes["threshold"] = data["threshold"]
    for extra in NODE_EXTRAS:
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
    settings = {**params, "max_iter": 1, "early_stopping": False, "categorical_features": None}
    estimator = _synthetic_fit(_fresh(HistGradientBoostingClassifier, settings), n_features, classes)
    estimator.set_params(**{k: v for k, v in params.items() if k in estimator.get_params(deep=False)})
    no_bitsets = np.zeros((0, 8), dtype=X_BITSET_INNER_DTYPE)
    predictors = []
    for iteration in model["predictors"]:
        trees = []
        for tree in iteration:
            nodes = np.zeros(len(tree["value"]), dtype=PREDICTOR_RECORD_DTYPE)
            for field in (*HGB_FIELDS, *HGB_EXTRAS):
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
        raise FormatError(f"The parameter file is malformed: {type(exc).__name__}: {exc}") from exc
