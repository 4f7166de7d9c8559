"""Checks on a model object after it was loaded from a stranger's file, before anything uses it.

The restricted unpickler stops a file from running code, but a file can still describe a
*structure* that scikit-learn's compiled code trusts blindly: a decision tree whose child index
points past the end of its node array, a tree that loops back on itself, a split on feature 50
of a 4-feature model. ``predict`` would then read out of bounds or never stop. So every
structure that compiled code walks by index is checked here, with numpy, before first use:

* ``sklearn.tree._tree.Tree`` (decision trees, forests, extra trees, gradient boosting),
* HistGradientBoosting ``TreePredictor`` nodes and its categorical bitsets,
* KD-tree / ball-tree index arrays (nearest neighbours),
* libsvm's support-vector arrays (SVC and friends),
* scipy sparse matrices (``check_format(full_check=True)``).

Plus the plain checks: the object is a fitted scikit-learn estimator (or pipeline) with ``predict``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from core.errors import FormatError, UnsafeModelError

TREE_LEAF = -1
_MAX_OBJECTS = 5_000_000  # objects visited while walking a model (a bound, not a target)


def _bad(what: str, why: str) -> UnsafeModelError:
    return UnsafeModelError(f"Refused a crafted or damaged {what}: {why}; nothing was loaded")


def check_fitted_estimator(model: Any) -> None:
    """A fitted scikit-learn estimator or pipeline that can ``predict``; else one clear FormatError."""
    from sklearn.base import BaseEstimator
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(model, BaseEstimator):
        raise FormatError(
            f"The file holds a {type(model).__module__}.{type(model).__qualname__}, not a scikit-learn model"
        )
    if not callable(getattr(model, "predict", None)):
        raise FormatError(f"The file's {type(model).__name__} has no predict method, so it cannot be scored")
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise FormatError(f"The file holds an unfitted {type(model).__name__}; fit it before uploading") from None
    except (TypeError, AttributeError, ValueError) as exc:
        raise FormatError(f"The file's {type(model).__name__} is not a usable fitted model: {exc}") from None


def n_features_of(model: Any) -> int | None:
    """How many input columns the model was fitted on (None when it does not say)."""
    value = getattr(model, "n_features_in_", None)
    return int(value) if isinstance(value, (int, np.integer)) else None


# -- walking the object graph --------------------------------------------------------------------


def _children(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, np.ndarray):
        return list(obj.ravel()) if obj.dtype.hasobject else []
    state = getattr(obj, "__dict__", None)
    return list(state.values()) if isinstance(state, dict) else []


def validate_model(model: Any, tick: Callable[[], None] | None = None) -> None:
    """Walk every object reachable from ``model`` and check the structures compiled code indexes."""
    from scipy import sparse
    from sklearn.tree import BaseDecisionTree
    from sklearn.tree._tree import Tree

    checkers = _checkers()
    seen: set[int] = set()
    stack = [model]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool, np.generic)):
            continue
        seen.add(id(obj))
        if len(seen) > _MAX_OBJECTS:
            raise _bad("model", f"it holds more than {_MAX_OBJECTS:,} objects")
        if tick is not None and len(seen) % 1024 == 0:
            tick()
        if isinstance(obj, Tree):
            check_tree(obj)
            continue
        if sparse.issparse(obj):
            _check_sparse(obj)
            continue
        for kind, check in checkers:
            if isinstance(obj, kind):
                check(obj)
        if isinstance(obj, BaseDecisionTree) and isinstance(obj.__dict__.get("tree_"), Tree):
            seen.add(id(obj.tree_))  # just checked with the estimator's feature count: not twice
        stack.extend(_children(obj))


def _checkers() -> list[tuple[type, Callable[[Any], None]]]:
    from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import BaseHistGradientBoosting
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.svm._base import BaseLibSVM
    from sklearn.tree import BaseDecisionTree

    found: list[tuple[type, Callable[[Any], None]]] = [
        (BaseDecisionTree, _check_decision_tree),
        (BaseHistGradientBoosting, _check_hist_gradient_boosting),
        (TreePredictor, lambda p: check_predictor(p, None, None)),
        (BaseLibSVM, _check_libsvm),
    ]
    from sklearn.neighbors import BallTree, KDTree

    found += [(KDTree, _check_binary_tree), (BallTree, _check_binary_tree)]
    found.append((object, _check_ensemble_features))
    return found


# -- decision trees ------------------------------------------------------------------------------


def check_tree(tree: Any, n_features: int | None = None) -> None:
    """Child indices in range (or both -1 for a leaf), each node reached once from the root (no
    cycles, nothing orphaned), split features below ``n_features``, value array of the right shape.
    """
    state = tree.__getstate__()
    nodes, values = state.get("nodes"), state.get("values")
    node_count = int(state.get("node_count", -1))
    if not isinstance(nodes, np.ndarray) or nodes.dtype.names is None or not isinstance(values, np.ndarray):
        raise _bad("decision tree", "its node arrays are missing")
    if node_count < 1 or nodes.shape != (node_count,):
        raise _bad("decision tree", f"node_count {node_count} does not match {nodes.shape[0]} nodes")
    n_outputs, n_classes = int(tree.n_outputs), np.asarray(tree.n_classes)
    expected = (node_count, n_outputs, int(tree.max_n_classes))
    if values.shape != expected or n_classes.shape != (n_outputs,) or int(n_classes.max()) != expected[2]:
        raise _bad("decision tree", f"its value array has shape {values.shape}, expected {expected}")
    limit = int(tree.n_features) if n_features is None else min(int(tree.n_features), n_features)
    _check_tree_links(
        "decision tree", nodes["left_child"], nodes["right_child"], nodes["left_child"] == TREE_LEAF, node_count
    )
    internal = nodes["left_child"] != TREE_LEAF
    features = nodes["feature"][internal]
    if features.size and (features.min() < 0 or features.max() >= limit):
        raise _bad("decision tree", f"a node splits on feature {int(features.max())} of a {limit}-feature model")


def _check_tree_links(what: str, left: np.ndarray, right: np.ndarray, leaf: np.ndarray, n: int) -> None:
    """Every node is reached exactly once from node 0: a tree, not a graph with loops or orphans."""
    left, right = left.astype(np.int64), right.astype(np.int64)
    internal = ~leaf
    if leaf.any() and what == "decision tree" and (right[leaf] != TREE_LEAF).any():
        raise _bad(what, "a leaf has one child")
    children = np.concatenate([left[internal], right[internal]])
    if children.size and (children.min() < 1 or children.max() >= n):
        bad = int(children.max() if children.max() >= n else children.min())
        raise _bad(what, f"a child index {bad} is outside 1..{n - 1}")
    if children.size != n - 1 or (children.size and np.bincount(children, minlength=n).max() > 1):
        raise _bad(what, "some node has two parents or none (the nodes do not form one tree)")
    parents = np.flatnonzero(internal)
    if (left[parents] > parents).all() and (right[parents] > parents).all():
        # One parent each, numbered below its children (as scikit-learn's builders number them):
        # walking up from any node ends at the root, so every node is reached and none loops. O(n).
        return
    # Each non-root node has exactly one parent; now make sure all are reachable from the root,
    # which rules out cycles among the non-root nodes. Breadth-first, one numpy step per level.
    reached = np.zeros(n, dtype=bool)
    frontier = np.array([0])
    reached[0] = True
    count = 1
    while frontier.size:
        inner = frontier[internal[frontier]]
        frontier = np.concatenate([left[inner], right[inner]])
        if reached[frontier].any():
            raise _bad(what, "it has a cycle")
        reached[frontier] = True
        count += frontier.size
    if count != n:
        raise _bad(what, f"{n - count} node(s) cannot be reached from the root (a cycle)")


def _check_decision_tree(estimator: Any) -> None:
    tree = getattr(estimator, "tree_", None)
    if tree is None:
        return
    n_features = n_features_of(estimator)
    if n_features is not None and int(tree.n_features) != n_features:
        raise _bad("decision tree", f"its tree has {tree.n_features} features, the estimator {n_features}")
    check_tree(tree, n_features)


def _check_ensemble_features(obj: Any) -> None:
    """Forests hand X to their trees unchecked: a member may not expect more columns than the forest."""
    members = getattr(obj, "__dict__", {}).get("estimators_")
    outer = n_features_of(obj)
    if members is None or outer is None:
        return
    flat = members.ravel() if isinstance(members, np.ndarray) else members
    if not isinstance(flat, (list, tuple, np.ndarray)):
        return
    for member in flat:
        inner = n_features_of(member)
        if inner is not None and inner > outer:
            raise _bad(type(obj).__name__, f"a member expects {inner} features, the ensemble {outer}")


# -- histogram gradient boosting -----------------------------------------------------------------


def check_predictor(predictor: Any, n_features: int | None, is_categorical: Any) -> None:
    """A HistGradientBoosting tree: links, feature indices and categorical bitset indices in range."""
    nodes = getattr(predictor, "nodes", None)
    if not isinstance(nodes, np.ndarray) or nodes.dtype.names is None or nodes.ndim != 1 or nodes.size < 1:
        raise _bad("boosted tree", "its node array is missing or empty")
    needed = {"left", "right", "is_leaf", "feature_idx", "is_categorical", "bitset_idx"}
    if not needed <= set(nodes.dtype.names):
        raise _bad("boosted tree", "its node array lacks " + ", ".join(sorted(needed - set(nodes.dtype.names))))
    leaf = nodes["is_leaf"].astype(bool)
    _check_tree_links("boosted tree", nodes["left"], nodes["right"], leaf, nodes.size)
    internal = ~leaf
    features = nodes["feature_idx"][internal].astype(np.int64)
    if features.size and (features.min() < 0 or (n_features is not None and features.max() >= n_features)):
        raise _bad("boosted tree", f"a node splits on feature {int(features.max())} of a {n_features}-feature model")
    categorical = internal & nodes["is_categorical"].astype(bool)
    if categorical.any():
        n_bitsets = min(len(getattr(predictor, "binned_left_cat_bitsets", ())), len(predictor.raw_left_cat_bitsets))
        if int(nodes["bitset_idx"][categorical].max()) >= n_bitsets:
            raise _bad("boosted tree", "a categorical split points past its bitsets")
        if is_categorical is not None:
            flags = np.asarray(is_categorical, dtype=bool)
            if (nodes["feature_idx"][categorical] >= flags.size).any() or not flags[
                nodes["feature_idx"][categorical]
            ].all():
                raise _bad("boosted tree", "a categorical split is on a feature that is not categorical")


def _check_hist_gradient_boosting(estimator: Any) -> None:
    predictors = getattr(estimator, "_predictors", None)
    if predictors is None:
        return
    n_features = n_features_of(estimator)
    mapper = getattr(estimator, "_bin_mapper", None)
    thresholds = getattr(mapper, "bin_thresholds_", None)
    if n_features is not None and thresholds is not None and len(thresholds) != n_features:
        raise _bad("boosted model", f"its binner knows {len(thresholds)} features, the model {n_features}")
    categorical = getattr(estimator, "is_categorical_", None)
    if categorical is not None and n_features is not None and len(categorical) != n_features:
        raise _bad("boosted model", "its categorical-feature mask has the wrong length")
    # predict finds a split's categories through the binner's mask, which is in the order the
    # categorical preprocessor puts columns in (categorical first), not the input's order.
    binned = getattr(mapper, "is_categorical_", None)
    if binned is not None:
        if n_features is not None and np.asarray(binned).size != n_features:
            raise _bad("boosted model", "its binner's categorical-feature mask has the wrong length")
        categorical = binned
    for iteration in predictors:
        for predictor in iteration:
            check_predictor(predictor, n_features, categorical)


# -- nearest neighbours and support vectors ------------------------------------------------------


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
    mat = metric.__getstate__()[2]
    if type(metric).__name__.startswith("MahalanobisDistance") and (mat.ndim != 2 or mat.shape[0] != mat.shape[1]):
        raise _bad("distance metric", "its matrix is not square")
    try:
        metric._validate_data(data)
    except ValueError as exc:
        raise _bad("distance metric", str(exc)) from None


def _check_libsvm(model: Any) -> None:
    """libsvm trusts these arrays' lengths: counts must add up before predict reaches C code."""
    support = getattr(model, "support_", None)
    vectors = getattr(model, "support_vectors_", None)
    n_support = getattr(model, "_n_support", None)
    coef = getattr(model, "_dual_coef_", None)
    intercept = getattr(model, "_intercept_", None)
    if support is None or vectors is None or n_support is None or coef is None or intercept is None:
        return
    from scipy import sparse

    precomputed = getattr(model, "kernel", "") == "precomputed"
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
    expected_coef = (max(n_class - 1, 1), n_sv)
    if tuple(coef.shape) != expected_coef or np.asarray(intercept).size != max(n_class * (n_class - 1) // 2, 1):
        raise _bad("support vector model", "its coefficients do not match its support vectors")
    for name in ("_probA", "_probB"):
        extra = np.asarray(getattr(model, name, np.empty(0)))
        if extra.size not in (0, np.asarray(intercept).size):
            raise _bad("support vector model", f"{name} has the wrong length")
    n_features = n_features_of(model)
    if n_features is not None and getattr(model, "kernel", "") != "precomputed" and vectors.shape[1] != n_features:
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
        raise _bad("sparse matrix", str(exc)) from None
