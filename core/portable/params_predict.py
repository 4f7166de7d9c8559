"""Predict from ModelShelf's plain-parameter JSON with numpy alone.

This module imports nothing but numpy, the standard library and ``params_knn`` (which imports
no more), on purpose: it is the reference that says what the JSON means, it ships inside every
bundle as one file (``predict_params.py``: ``how_to_load.predictor_source`` writes ``params_knn``
in where it is imported), and that file can be copied next to the JSON into any project that has
numpy, without scikit-learn.

It mirrors scikit-learn's own arithmetic step by step (imputation, scaling, one-hot encoding,
``X @ coef.T + intercept``, trees comparing the float32-cast value with the float64 threshold,
forests summing the trees' leaf fractions then dividing, Gaussian naive Bayes' joint
log-likelihood, gradient boosting's init constants plus shrunk regression trees, histogram
gradient boosting's baseline plus trees walked in float64, k-NN's nearest rows and votes, and
libsvm's one-vs-one kernel sums and votes), so its labels equal scikit-learn's exactly, not
approximately.

    >>> import json
    >>> params = json.load(open("model.json"))
    >>> predict(params, {"age": [31.0], "city": ["Leeds"]})
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from core.portable.params_knn import knn_scores

#: The newest schema this module reads and writes; it reads every version in ``READABLE``.
SCHEMA_VERSION = 2
READABLE = (1, 2)
FORMAT = "modelshelf.params"
#: The schema version that introduced each ``model.type``: a document carries the lowest version
#: that describes it, so files of the version-1 kinds stay readable by version-1 readers.
MODEL_TYPES = {
    "linear": 1,
    "tree": 1,
    "forest": 1,
    "gaussian_nb": 1,
    "gradient_boosting": 2,
    "hist_gradient_boosting": 2,
    "knn": 2,
    "svc": 2,
}


def _column(rows: Any, name: str, index: int) -> list[Any] | np.ndarray:
    """One input column by name (a mapping or DataFrame) or by position (a 2-D array)."""
    if isinstance(rows, Mapping) or hasattr(rows, "columns"):
        if name not in rows:
            raise KeyError(f"the rows lack the column {name!r} the model needs")
        values = rows[name]
        return values.tolist() if hasattr(values, "tolist") else list(values)
    return np.asarray(rows)[:, index]


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return type(value).__name__ in ("NAType", "NaTType")


def _numeric_block(rows: Any, features: list[str], block: dict[str, Any]) -> np.ndarray:
    columns = block["columns"]
    X = np.empty((_n_rows(rows, features), len(columns)), dtype=np.float64)
    for j, name in enumerate(columns):
        raw = _column(rows, name, features.index(name))
        X[:, j] = np.asarray([np.nan if _is_missing(v) else v for v in raw], dtype=np.float64)
    for step in block["steps"]:
        kind = step["type"]
        if kind == "simple_imputer":
            statistics = np.asarray(step["statistics"], dtype=np.float64)
            missing = np.isnan(X)
            X[missing] = np.take(statistics, np.nonzero(missing)[1])
        elif kind == "standard_scaler":
            if step.get("mean") is not None:
                X = X - np.asarray(step["mean"], dtype=np.float64)
            if step.get("scale") is not None:
                X = X / np.asarray(step["scale"], dtype=np.float64)
        else:
            raise ValueError(f"step {kind!r} does not apply to numeric columns")
    return X


def _categorical_block(rows: Any, features: list[str], block: dict[str, Any]) -> np.ndarray:
    columns = block["columns"]
    values = [list(_column(rows, name, features.index(name))) for name in columns]
    out: np.ndarray | None = None
    for step in block["steps"]:
        kind = step["type"]
        if kind == "simple_imputer":
            for j, fill in enumerate(step["statistics"]):
                values[j] = [fill if _is_missing(v) else v for v in values[j]]
        elif kind == "one_hot_encoder":
            parts = []
            for j, categories in enumerate(step["categories"]):
                position = {c: i for i, c in enumerate(categories)}
                onehot = np.zeros((len(values[j]), len(categories)), dtype=np.float64)
                for r, v in enumerate(values[j]):
                    i = position.get(v)
                    if i is None:
                        if step.get("handle_unknown", "error") != "ignore":
                            raise ValueError(f"unknown category {v!r} in column {columns[j]!r}")
                        continue
                    onehot[r, i] = 1.0
                parts.append(onehot)
            out = np.hstack(parts) if parts else np.zeros((len(values[0]) if values else 0, 0))
        else:
            raise ValueError(f"step {kind!r} does not apply to categorical columns")
    if out is None:
        raise ValueError("a categorical block must end with a one-hot encoder")
    return out


def _n_rows(rows: Any, features: list[str]) -> int:
    if isinstance(rows, Mapping) or hasattr(rows, "columns"):
        return len(rows[features[0]]) if features else 0
    return int(np.asarray(rows).shape[0])


def transform(params: dict[str, Any], rows: Any) -> np.ndarray:
    """The numeric matrix the estimator sees: the preprocessing blocks, side by side."""
    features = [f["name"] for f in params["features"]]
    preprocess = params.get("preprocess")
    if not preprocess:
        X = np.column_stack([np.asarray(_column(rows, n, i), dtype=np.float64) for i, n in enumerate(features)])
        return X.reshape(_n_rows(rows, features), len(features))
    blocks = []
    for block in preprocess["blocks"]:
        if block["kind"] == "numeric":
            blocks.append(_numeric_block(rows, features, block))
        else:
            blocks.append(_categorical_block(rows, features, block))
    return np.hstack(blocks)


def _classes(params: dict[str, Any]) -> np.ndarray:
    dtype = params["classes_dtype"]
    return np.asarray(params["classes"], dtype=object if dtype == "object" else dtype)


def _tree_leaf_values(tree: dict[str, Any], X32: np.ndarray) -> np.ndarray:
    """``tree_.predict``: each row walks from the root; NaN follows ``missing_go_to_left``."""
    left = np.asarray(tree["children_left"], dtype=np.int64)
    right = np.asarray(tree["children_right"], dtype=np.int64)
    feature = np.asarray(tree["feature"], dtype=np.int64)
    threshold = np.asarray(tree["threshold"], dtype=np.float64)
    missing_left = np.asarray(tree.get("missing_go_to_left") or [0] * len(left), dtype=bool)
    value = np.asarray(tree["value"], dtype=np.float64)
    node = np.zeros(X32.shape[0], dtype=np.int64)
    active = left[node] != -1
    while active.any():
        rows = np.nonzero(active)[0]
        current = node[rows]
        x = X32[rows, feature[current]].astype(np.float64)
        go_left = np.where(np.isnan(x), missing_left[current], x <= threshold[current])
        node[rows] = np.where(go_left, left[current], right[current])
        active = left[node] != -1
    return value[node, 0, :]


def _tree_proba(tree: dict[str, Any], X32: np.ndarray, n_classes: int) -> np.ndarray:
    return _tree_leaf_values(tree, X32)[:, :n_classes]


def _gb_raw(model: dict[str, Any], X32: np.ndarray) -> np.ndarray:
    """``GradientBoostingClassifier._raw_predict``: the init constants, then stage by stage
    ``raw[:, k] += learning_rate * leaf value`` of regression trees walked on float32 inputs."""
    init = np.asarray(model["init_raw"], dtype=np.float64)
    raw = np.tile(init, (X32.shape[0], 1))
    rate = float(model["learning_rate"])
    for stage in model["trees"]:
        for k, tree in enumerate(stage):
            raw[:, k] += rate * _tree_leaf_values(tree, X32)[:, 0]
    return raw


def _hgb_raw(model: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """``HistGradientBoostingClassifier._raw_predict``: baseline plus each iteration's tree values,
    trees walked on float64 inputs (``x <= num_threshold`` left; NaN follows ``missing_go_to_left``)."""
    baseline = np.asarray(model["baseline"], dtype=np.float64)
    raw = np.zeros((X.shape[0], baseline.shape[0]), dtype=np.float64)
    raw += baseline
    for iteration in model["predictors"]:
        for k, nodes in enumerate(iteration):
            raw[:, k] += _hgb_tree(nodes, X)
    return raw


def _hgb_tree(nodes: dict[str, Any], X: np.ndarray) -> np.ndarray:
    left = np.asarray(nodes["left"], dtype=np.int64)
    right = np.asarray(nodes["right"], dtype=np.int64)
    feature = np.asarray(nodes["feature_idx"], dtype=np.int64)
    threshold = np.asarray(nodes["num_threshold"], dtype=np.float64)
    missing_left = np.asarray(nodes["missing_go_to_left"], dtype=bool)
    is_leaf = np.asarray(nodes["is_leaf"], dtype=bool)
    value = np.asarray(nodes["value"], dtype=np.float64)
    node = np.zeros(X.shape[0], dtype=np.int64)
    active = ~is_leaf[node]
    while active.any():
        rows = np.nonzero(active)[0]
        current = node[rows]
        x = X[rows, feature[current]]
        go_left = np.where(np.isnan(x), missing_left[current], x <= threshold[current])
        node[rows] = np.where(go_left, left[current], right[current])
        active = ~is_leaf[node]
    return value[node]


def _powi(base: np.ndarray, times: int) -> np.ndarray:
    """libsvm's ``powi``: exponentiation by squaring, in its order of multiplications."""
    result = np.ones_like(base)
    tmp = base.copy()
    t = times
    while t > 0:
        if t % 2 == 1:
            result = result * tmp
        tmp = tmp * tmp
        t //= 2
    return result


def _svc_kernel(model: dict[str, Any], x: np.ndarray, sv: np.ndarray) -> np.ndarray:
    kernel = model["kernel"]
    gamma = float(model["gamma"])
    if kernel == "rbf":
        d = x - sv
        return np.exp(-gamma * np.einsum("ij,ij->i", d, d))
    dot = sv @ x
    if kernel == "linear":
        return dot
    if kernel == "poly":
        return _powi(gamma * dot + float(model["coef0"]), int(model["degree"]))
    if kernel == "sigmoid":
        return np.tanh(gamma * dot + float(model["coef0"]))
    raise ValueError(f"unknown SVC kernel {kernel!r}")


def _svc_votes(model: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """libsvm's one-vs-one prediction: for each pair i < j of classes, the decision value is
    the sum over class i's support vectors of ``dual_coef[j-1] * K`` then over class j's of
    ``dual_coef[i] * K``, plus the pair's intercept (libsvm's signs); above zero is a vote for i,
    else for j. The most votes wins, the lower class index on a tie."""
    sv = np.asarray(model["support_vectors"], dtype=np.float64)
    coef = np.asarray(model["dual_coef"], dtype=np.float64)
    intercept = np.asarray(model["intercept"], dtype=np.float64)
    n_support = [int(n) for n in model["n_support"]]
    n_classes = len(n_support)
    start = np.concatenate([[0], np.cumsum(n_support)[:-1]]).astype(int)
    kvalue = np.stack([_svc_kernel(model, X[r], sv) for r in range(X.shape[0])]) if len(X) else np.zeros((0, len(sv)))
    votes = np.zeros((X.shape[0], n_classes), dtype=np.float64)
    p = 0
    for i in range(n_classes):
        for j in range(i + 1, n_classes):
            total = np.zeros(X.shape[0], dtype=np.float64)
            for s in range(start[i], start[i] + n_support[i]):
                total += coef[j - 1, s] * kvalue[:, s]
            for s in range(start[j], start[j] + n_support[j]):
                total += coef[i, s] * kvalue[:, s]
            total = total + intercept[p]
            positive = total > 0
            votes[positive, i] += 1
            votes[~positive, j] += 1
            p += 1
    return votes


def decision(params: dict[str, Any], rows: Any) -> np.ndarray:
    """Per-class scores whose argmax (or sign, for binary linear models) is the prediction."""
    model = params["model"]
    X = transform(params, rows)
    kind = model["type"]
    if kind == "linear":
        coef = np.asarray(model["coef"], dtype=np.float64)
        intercept = np.asarray(model["intercept"], dtype=np.float64)
        scores = X @ coef.T + intercept
        return scores.reshape(-1) if scores.ndim > 1 and scores.shape[1] == 1 else scores
    if kind == "gaussian_nb":
        theta = np.asarray(model["theta"], dtype=np.float64)
        var = np.asarray(model["var"], dtype=np.float64)
        prior = np.asarray(model["class_prior"], dtype=np.float64)
        joint = []
        for i in range(len(params["classes"])):
            jointi = np.log(prior[i])
            n_ij = -0.5 * np.sum(np.log(2.0 * np.pi * var[i, :]))
            n_ij = n_ij - 0.5 * np.sum(((X - theta[i, :]) ** 2) / (var[i, :]), axis=1)
            joint.append(jointi + n_ij)
        return np.stack(joint).T
    if kind == "svc":
        return _svc_votes(model, X)
    if kind == "knn":
        return knn_scores(model, X, len(params["classes"]))
    if kind == "hist_gradient_boosting":
        return _hgb_raw(model, X)
    X32 = np.asarray(X, dtype=np.float32)
    n_classes = len(params["classes"])
    if kind == "gradient_boosting":
        return _gb_raw(model, X32)
    if kind == "tree":
        return _tree_proba(model["tree"], X32, n_classes)
    if kind == "forest":
        total = np.zeros((X32.shape[0], n_classes), dtype=np.float64)
        for tree in model["trees"]:
            total += _tree_proba(tree, X32, n_classes)
        total /= len(model["trees"])
        return total
    raise ValueError(f"unknown model type {kind!r} (schema_version {params.get('schema_version')})")


def predict(params: dict[str, Any], rows: Any) -> np.ndarray:
    """Class labels for ``rows`` (a mapping of columns, a DataFrame, or a 2-D array in feature order)."""
    if params.get("format") != FORMAT or params.get("schema_version") not in READABLE:
        raise ValueError(
            f"not a {FORMAT} document of schema_version {' or '.join(map(str, READABLE))} "
            f"(got format={params.get('format')!r}, schema_version={params.get('schema_version')!r})"
        )
    scores = decision(params, rows)
    classes = _classes(params)
    if params["model"]["type"] == "gradient_boosting" and scores.shape[1] == 1:
        # GradientBoostingClassifier.predict: raw >= 0 is classes[1] (HistGradientBoosting: > 0).
        return classes.take((scores[:, 0] >= 0).astype(np.intp), axis=0)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim == 1:
        return classes.take((scores > 0).astype(np.intp), axis=0)
    return classes.take(np.argmax(scores, axis=1), axis=0)


def predict_proba(params: dict[str, Any], rows: Any) -> np.ndarray | None:
    """Class probabilities where the estimator defines them simply (trees, forests), else None."""
    if params["model"]["type"] in ("tree", "forest"):
        return decision(params, rows)
    return None
