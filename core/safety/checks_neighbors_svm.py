"""Checks on the other index structures compiled code trusts: neighbours (KD-tree, ball tree,
their distance metrics), k-means centres, libsvm's support vectors and scipy sparse matrices.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse
from sklearn.neighbors import BallTree, KDTree

from core.safety.checks import _bad, _features_of

# -- nearest neighbours and support vectors ------------------------------------------------------


def _check_neighbors(model: Any) -> None:
    """Brute-force search computes distances between the data and ``_fit_X`` in compiled code
    that takes the width from one side: the fitted data must be exactly ``n_features_in_`` wide,
    its index (if any) built on data of that shape, and class labels inside ``classes_``."""
    state = vars(model)
    fit_X = state.get("_fit_X")
    if fit_X is None:
        return
    what = "neighbours model"
    n_features = _features_of(model, what)
    if not (isinstance(fit_X, np.ndarray) or sparse.issparse(fit_X)) or fit_X.ndim != 2:
        raise _bad(what, "its fitted data is not a 2-D array")
    n_samples, width = fit_X.shape
    if width != n_features:
        raise _bad(what, f"its fitted data has {width} column(s), the model {n_features} features")
    if state.get("n_samples_fit_") != n_samples:
        raise _bad(what, "its sample count does not match its fitted data")
    method, index = state.get("_fit_method"), state.get("_tree")
    kinds = {"brute": type(None), "kd_tree": KDTree, "ball_tree": BallTree}
    if not isinstance(method, str) or method not in kinds or type(index) is not kinds[method]:
        raise _bad(what, "its search method and its index disagree")
    if index is not None and np.asarray(index.data).shape != (n_samples, width):
        raise _bad(what, "its index was built on data of another shape")
    # Brute-force search builds its distance metric from these at predict time: weighted metrics
    # index their weights (V, VI, w) by feature, unchecked (seuclidean with 1 weight read past it).
    params = state.get("effective_metric_params_")
    if params is not None and not isinstance(params, dict):
        raise _bad(what, "its metric parameters are not a mapping")
    for key in ("V", "VI", "w"):
        value = (params or {}).get(key)
        if value is not None and (np.ndim(value) < 1 or any(size != width for size in np.shape(value))):
            raise _bad(what, f"its metric parameter {str(key)[:20]!r} does not match its {width} features")
    _check_minkowski_power(state.get("p"), what, "p", finite=False)
    if state.get("effective_metric_") == "minkowski":
        _check_minkowski_power((params or {}).get("p", 2), what, "metric parameter 'p'", finite=True)
    metric = state.get("effective_metric_")
    if type(metric).__module__ == "sklearn.metrics._dist_metrics":
        _check_distance_metric(metric, np.asarray(fit_X) if not sparse.issparse(fit_X) else fit_X)
    labels = state.get("_y")
    if labels is None:
        return
    labels = np.asarray(labels)
    if labels.ndim not in (1, 2) or labels.shape[0] != n_samples:
        raise _bad(what, "its labels do not match its fitted data")
    classes = state.get("classes_")
    if classes is None:
        return
    if state.get("outputs_2d_", labels.ndim == 2) != (labels.ndim == 2):
        raise _bad(what, "its labels and its output count disagree")
    columns = [labels] if labels.ndim == 1 else list(labels.T)
    per_output = [classes] if labels.ndim == 1 else classes
    if (not isinstance(per_output, list) and labels.ndim == 2) or len(per_output) != len(columns):
        raise _bad(what, "its labels and its classes disagree")
    for column, known in zip(columns, per_output, strict=True):
        size = np.asarray(known).shape[0] if np.asarray(known).ndim == 1 else -1
        if column.dtype.kind not in "iu" or (column.size and (column.min() < 0 or column.max() >= size)):
            raise _bad(what, "a label is outside its classes")


def _check_minkowski_power(p: Any, what: str, name: str, finite: bool) -> None:
    """A Minkowski power is a number above 0 (finite where it is used as one), as scikit-learn's
    own constructors require: a NaN, zero or negative power made every prediction the same."""
    if p is None and not finite:
        return
    number = isinstance(p, (int, float, np.integer, np.floating)) and not isinstance(p, (bool, np.bool_))
    if not number or not p > 0 or (finite and not np.isfinite(p)):
        shown = f"{p!r:.30}" if number else type(p).__name__
        raise _bad(what, f"its {name} is {shown}, not a {'finite ' if finite else ''}power above 0")


def _check_kmeans(model: Any) -> None:
    """k-means predicts in compiled code that reads ``X.shape[1]`` values from each centre and
    runs ``_n_threads`` OpenMP threads: the centres must be as wide as the data, the count sane."""
    state = vars(model)
    centres = state.get("cluster_centers_")
    if centres is None:
        return
    what = "k-means model"
    n_features = _features_of(model, what)
    if not isinstance(centres, np.ndarray) or centres.ndim != 2 or centres.shape[0] < 1:
        raise _bad(what, "its cluster centres are not a 2-D array")
    if centres.shape[1] != n_features:
        raise _bad(what, f"its cluster centres have {centres.shape[1]} column(s), the model {n_features} features")
    threads = state.get("_n_threads", 1)
    if not isinstance(threads, (int, np.integer)) or not 0 < threads <= 1024:
        raise _bad(what, "its thread count is not between 1 and 1024")


def _check_binary_tree(tree: Any) -> None:
    """KD/ball trees: the index permutation and node ranges stay inside the data; children exist."""
    data, idx_array, node_data, node_bounds = (np.asarray(a) for a in tree.get_arrays())
    n = data.shape[0] if data.ndim == 2 else -1
    if n < 0 or idx_array.shape != (n,) or (n and (idx_array.min() < 0 or idx_array.max() >= n)):
        raise _bad("neighbours index", "its index array does not fit its data")
    n_nodes = node_data.shape[0]
    start, end, leaf = node_data["idx_start"], node_data["idx_end"], node_data["is_leaf"].astype(bool)
    if n_nodes < 1 or (start < 0).any() or (end > n).any() or (start > end).any():
        raise _bad("neighbours index", "a node's range is outside the data")
    inner = np.flatnonzero(~leaf)
    if inner.size and 2 * int(inner.max()) + 2 >= n_nodes:
        raise _bad("neighbours index", "an inner node has no children")
    if node_bounds.ndim != 3 or node_bounds.shape[1] != n_nodes or node_bounds.shape[2] != data.shape[1]:
        raise _bad("neighbours index", "its node bounds have the wrong shape")
    state = tree.__getstate__()
    n_levels, stored_nodes, metric, weights = state[5], state[6], state[11], state[12]
    if stored_nodes != n_nodes or not 0 < n_levels < 64 or n_nodes > 2**n_levels - 1:
        raise _bad("neighbours index", "its node count does not match its arrays")
    if weights is not None and np.asarray(weights).shape != (n,):
        raise _bad("neighbours index", "its sample weights do not match its data")
    _check_distance_metric(metric, data)


def _check_distance_metric(metric: Any, data: np.ndarray) -> None:
    """Weighted metrics index their weights by feature: the sizes must match the data's width."""
    state = metric.__getstate__()
    mat = state[2]
    if type(metric).__name__.startswith("MinkowskiDistance"):
        # A search tree prunes with the triangle inequality: scikit-learn builds one only for p >= 1.
        _check_minkowski_power(state[0], "distance metric", "power p", finite=True)
        if not state[0] >= 1:
            raise _bad("distance metric", f"its power p is {state[0]!r:.30}, below 1 (not a distance)")
    if type(metric).__name__.startswith("MahalanobisDistance") and (mat.ndim != 2 or mat.shape[0] != mat.shape[1]):
        raise _bad("distance metric", "its matrix is not square")
    try:
        metric._validate_data(data)
    except ValueError as exc:
        raise _bad("distance metric", str(exc)) from exc


def _check_libsvm(model: Any) -> None:
    """libsvm trusts these arrays' lengths: counts must add up before predict reaches C code."""
    support = getattr(model, "support_", None)
    vectors = getattr(model, "support_vectors_", None)
    n_support = getattr(model, "_n_support", None)
    coef = getattr(model, "_dual_coef_", None)
    intercept = getattr(model, "_intercept_", None)
    if support is None or vectors is None or n_support is None or coef is None or intercept is None:
        return

    kernel = getattr(model, "kernel", None)
    if not isinstance(kernel, str):
        # A callable kernel's matrix is handed to libsvm as "precomputed" and indexed by support_.
        raise _bad("support vector model", "its kernel is not one of libsvm's kernel names")
    precomputed = kernel == "precomputed"
    # A precomputed kernel keeps no support vectors, only their row numbers in the training kernel,
    # which libsvm uses to index each row of the kernel given to predict (shape_fit_[0] wide).
    n_sv = np.asarray(support).shape[0] if precomputed and np.ndim(support) == 1 else vectors.shape[0]
    if precomputed:
        shape_fit = getattr(model, "shape_fit_", None)
        width = shape_fit[0] if isinstance(shape_fit, tuple) and shape_fit else None
        rows = np.asarray(support)
        if not isinstance(width, (int, np.integer)) or (rows.size and (rows.min() < 0 or rows.max() >= width)):
            raise _bad("support vector model", "its support indices fall outside the training kernel")
    n_support = np.asarray(n_support)
    if np.asarray(support).shape != (n_sv,) or (n_support < 0).any():
        raise _bad("support vector model", "its support arrays disagree")
    classifier = getattr(model, "_impl", "") in ("c_svc", "nu_svc")
    n_class = n_support.size if classifier else 2
    if classifier and int(n_support.sum()) != n_sv:
        raise _bad("support vector model", f"{int(n_support.sum())} support vectors counted, {n_sv} stored")
    # Regression and one-class models: libsvm takes its class count from this array's length
    # (scikit-learn writes two entries); a longer one makes predict read past the intercepts.
    if not classifier and (n_support.shape != (2,) or (n_support > n_sv).any()):
        raise _bad("support vector model", "its support counts do not fit a regression or one-class model")
    expected_coef = (max(n_class - 1, 1), n_sv)
    if tuple(coef.shape) != expected_coef or np.asarray(intercept).size != max(n_class * (n_class - 1) // 2, 1):
        raise _bad("support vector model", "its coefficients do not match its support vectors")
    for name in ("_probA", "_probB"):
        extra = np.asarray(getattr(model, name, np.empty(0)))
        if extra.size not in (0, np.asarray(intercept).size):
            raise _bad("support vector model", f"{name} has the wrong length")
    n_features = _features_of(model, "support vector model")
    if getattr(model, "kernel", "") == "precomputed":
        # libsvm reads the data's column support_[i] for support vector i: the training rows.
        if np.asarray(support).size and (np.asarray(support).min() < 0 or np.asarray(support).max() >= n_features):
            raise _bad("support vector model", "a support index is past the precomputed kernel's columns")
    elif vectors.shape[1] != n_features:
        raise _bad("support vector model", "its support vectors have the wrong width")
    if sparse.issparse(vectors):
        _check_sparse(vectors)


def _check_sparse(matrix: Any) -> None:
    try:
        if hasattr(matrix, "check_format"):
            matrix.check_format(full_check=True)
        elif matrix.format == "coo":
            rows, cols = matrix.coords if hasattr(matrix, "coords") else (matrix.row, matrix.col)
            if rows.size and (rows.min() < 0 or rows.max() >= matrix.shape[0] or cols.min() < 0):
                raise ValueError("coordinates out of range")
            if cols.size and cols.max() >= matrix.shape[1]:
                raise ValueError("coordinates out of range")
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise _bad("sparse matrix", str(exc)) from exc
