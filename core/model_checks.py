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

Feature counts are never taken from the file alone: scikit-learn checks the data it is given
against ``n_features_in_``, so every tree, binner and fitted-data array must agree with that
attribute (and with each other), and an estimator whose compiled code reads features by index is
refused when it lacks it. Ensembles that hand the data to their members unchecked (forests,
gradient boosting, isolation forests) must have members of exactly their own width.

Plus the plain checks: the object is a fitted scikit-learn estimator (or pipeline) with ``predict``,
no deeper than a bound, with no special (``__...__``) attributes set on scikit-learn instances.
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


def _features_of(estimator: Any, what: str) -> int:
    """``n_features_in_``, required: scikit-learn compares the data's width with it before any
    compiled code indexes a feature, and skips that comparison when the attribute is missing."""
    value = vars(estimator).get("n_features_in_") if hasattr(estimator, "__dict__") else None
    if isinstance(value, np.integer):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**31:
        raise _bad(
            what,
            "it has no valid n_features_in_ (every fitted scikit-learn model has one), so the features "
            "its compiled code reads could not be checked against the data",
        )
    return value


def check_nesting(model: Any, limit: int, tick: Callable[[], None] | None = None) -> None:
    """No chain of containers and objects longer than ``limit``, measured without recursion.

    The unpickler counts depth as it builds; a file can still deepen a list after putting it in
    its parent (through the memo), and skops builds objects its own way. Printing, comparing or
    copying such a model would recurse until Python (or C) runs out of stack.
    """
    height: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(model, False)]
    steps = 0
    while stack:
        obj, finished = stack.pop()
        key = id(obj)
        if finished:
            on_path.discard(key)
            below = max((height.get(id(c), 0) for c in _children(obj)), default=0)
            if below + 1 > limit:
                raise UnsafeModelError(
                    f"The file nests objects too deeply to be a model (more than {limit} levels), so it was refused"
                )
            height[key] = below + 1
            continue
        if key in height or key in on_path or _is_leaf(obj):
            continue
        steps += 1
        if tick is not None and steps % 1024 == 0:
            tick()
        on_path.add(key)
        stack.append((obj, True))
        stack.extend((child, False) for child in _children(obj) if not _is_leaf(child))


def _is_leaf(obj: Any) -> bool:
    return (
        obj is None
        or isinstance(obj, (str, bytes, int, float, complex, np.generic))
        or (isinstance(obj, np.ndarray) and not obj.dtype.hasobject)
    )


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
        state = getattr(obj, "__dict__", None)
        if type(obj).__module__.startswith("sklearn.") and isinstance(state, dict) and _has_special_names(state):
            raise _bad(type(obj).__name__, "it has special attributes (__...__) set on the object itself")
        for kind, check in checkers:
            if isinstance(obj, kind):
                check(obj)
        if isinstance(obj, BaseDecisionTree) and isinstance(obj.__dict__.get("tree_"), Tree):
            seen.add(id(obj.tree_))  # just checked with the estimator's feature count: not twice
        stack.extend(_children(obj))


def _has_special_names(state: dict) -> bool:
    """``__sklearn_is_fitted__``, ``__setstate__``...: names Python and scikit-learn look up as behaviour."""
    return any(isinstance(k, str) and k.startswith("__") for k in state)


def _checkers() -> list[tuple[type, Callable[[Any], None]]]:
    from sklearn.cluster._kmeans import _BaseKMeans
    from sklearn.ensemble._gb import BaseGradientBoosting
    from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import BaseHistGradientBoosting
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.neighbors import BallTree, KDTree
    from sklearn.neighbors._base import NeighborsBase
    from sklearn.svm._base import BaseLibSVM
    from sklearn.tree import BaseDecisionTree

    found: list[tuple[type, Callable[[Any], None]]] = [
        (BaseDecisionTree, _check_decision_tree),
        (BaseHistGradientBoosting, _check_hist_gradient_boosting),
        (TreePredictor, lambda p: check_predictor(p, None, None)),
        (BaseLibSVM, _check_libsvm),
        (BaseGradientBoosting, _check_gradient_boosting),
        (NeighborsBase, _check_neighbors),
        (_BaseKMeans, _check_kmeans),
        (KDTree, _check_binary_tree),
        (BallTree, _check_binary_tree),
        (object, _check_ensemble_features),
    ]
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
    # decision_path() writes each sample's path into a buffer of max_depth + 1 slots per sample.
    max_depth = state.get("max_depth")
    depth = _depth(nodes["left_child"], nodes["right_child"], internal)
    if not isinstance(max_depth, (int, np.integer)) or not depth <= int(max_depth) <= node_count:
        raise _bad("decision tree", f"its max_depth {max_depth!r:.20} is not its depth {depth}")


def _depth(left: np.ndarray, right: np.ndarray, internal: np.ndarray) -> int:
    """Levels below the root of a tree whose links were checked: one numpy step per level."""
    frontier = np.array([0])
    depth = -1
    while frontier.size:
        depth += 1
        inner = frontier[internal[frontier]]
        frontier = np.concatenate([left[inner], right[inner]])
    return depth


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
    from sklearn.tree._tree import Tree

    tree = vars(estimator).get("tree_")
    if tree is None:
        return
    if not isinstance(tree, Tree):
        raise _bad("decision tree", "its tree_ is not a scikit-learn tree")
    n_features = _features_of(estimator, "decision tree")
    if int(tree.n_features) != n_features:
        raise _bad("decision tree", f"its tree has {tree.n_features} features, the estimator {n_features}")
    check_tree(tree, n_features)


def _check_ensemble_features(obj: Any) -> None:
    """Members may not expect more columns than their ensemble is given.

    Forests, gradient boosting and isolation forests check the data once, against their own
    ``n_features_in_``, then hand it to each tree's compiled code unchecked (``check_input=False``):
    there both must be present and equal (an isolation forest's member sees its feature subset).
    Other ensembles call their members' public methods, which check the data themselves.
    """
    from sklearn.ensemble import IsolationForest
    from sklearn.ensemble._forest import BaseForest
    from sklearn.ensemble._gb import BaseGradientBoosting

    members = vars(obj).get("estimators_") if isinstance(getattr(obj, "__dict__", None), dict) else None
    if members is None:
        return
    name = type(obj).__name__
    strict = isinstance(obj, (BaseForest, BaseGradientBoosting, IsolationForest))
    outer = _features_of(obj, name) if strict else n_features_of(obj)
    flat = members.ravel() if isinstance(members, np.ndarray) else members
    if outer is None or not isinstance(flat, (list, tuple, np.ndarray)):
        if strict:
            raise _bad(name, "its estimators_ is not a list of trees")
        return
    subsets = vars(obj).get("estimators_features_") if isinstance(obj, IsolationForest) else None
    if subsets is not None and (not isinstance(subsets, list) or len(subsets) != len(flat)):
        raise _bad(name, "its feature subsets do not match its members")
    for index, member in enumerate(flat):
        inner = _features_of(member, name) if strict else n_features_of(member)
        if inner is None:
            continue
        width = outer if subsets is None else min(outer, int(np.asarray(subsets[index]).size))
        if inner > width or (strict and subsets is None and inner != outer):
            raise _bad(name, f"a member expects {inner} features, the ensemble {outer}")


def _check_gradient_boosting(model: Any) -> None:
    """``predict_stages`` writes tree ``k`` of each stage into column ``k`` of an output sized by
    the init estimator: ``estimators_`` must be (stages, 1) for regression and binary
    classification, (stages, n_classes) for multiclass, of regression trees of one output."""
    from sklearn.base import is_classifier
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.tree import DecisionTreeRegressor
    from sklearn.tree._tree import Tree

    state = vars(model)
    cells = state.get("estimators_")
    if cells is None:
        return
    what = "gradient boosting model"
    n_features = _features_of(model, what)
    if not isinstance(cells, np.ndarray) or cells.dtype != object or cells.ndim != 2 or cells.shape[0] < 1:
        raise _bad(what, "its estimators_ is not a 2-D array of trees")
    classifier = is_classifier(model)
    if classifier:
        classes = state.get("classes_")
        n_classes = state.get("n_classes_")
        if not isinstance(classes, np.ndarray) or classes.ndim != 1 or n_classes != classes.shape[0] or n_classes < 2:
            raise _bad(what, "its classes do not match its class count")
        expected = 1 if n_classes == 2 else int(n_classes)
    else:
        expected = 1
    if cells.shape[1] != expected or state.get("n_trees_per_iteration_") != expected:
        raise _bad(what, f"its estimators_ has {cells.shape[1]:,} tree(s) per stage, where {expected} are expected")
    if state.get("n_estimators_", cells.shape[0]) != cells.shape[0]:
        raise _bad(what, "its estimators_ does not match n_estimators_")
    for cell in {id(c): c for c in cells.ravel()}.values():
        if type(cell) is not DecisionTreeRegressor:
            raise _bad(what, "a cell of its estimators_ is not a DecisionTreeRegressor")
        inner = _features_of(cell, what)
        tree = vars(cell).get("tree_")
        if inner != n_features:
            raise _bad(what, f"a tree expects {inner} features, the model {n_features}")
        if not isinstance(tree, Tree) or tree.n_outputs != 1 or tree.max_n_classes != 1:
            raise _bad(what, "a tree is not a one-output regression tree")
    init = state.get("init_")
    if isinstance(init, str) and init == "zero":
        return
    if classifier and isinstance(init, DummyClassifier):
        init_state = vars(init)
        prior = np.asarray(init_state.get("class_prior_"))
        init_classes = np.asarray(init_state.get("classes_"))
        if init_state.get("n_outputs_") != 1 or init_state.get("n_classes_") != n_classes:
            raise _bad(what, "its init estimator does not know the model's classes")
        if prior.shape != (n_classes,) or init_classes.shape != (n_classes,):
            raise _bad(what, "its init estimator does not know the model's classes")
        if expected > 1 and not getattr(state.get("_loss"), "is_multiclass", False):
            raise _bad(what, "its loss is not a multiclass loss")
        return
    if not classifier and isinstance(init, DummyRegressor):
        return
    raise _bad(what, "its init_ is neither 'zero' nor the dummy estimator scikit-learn fits")


# -- histogram gradient boosting -----------------------------------------------------------------


def check_predictor(
    predictor: Any, n_features: int | None, is_categorical: Any, n_bins: np.ndarray | None = None
) -> None:
    """A HistGradientBoosting tree: its node layout, links, 0/1 flags, feature indices, bin
    thresholds and categorical bitset rows all within what the binner and the bitsets hold.

    ``is_categorical`` and ``n_bins`` are the binner's (in the order the trees see features).
    """
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    state = vars(predictor)
    nodes = state.get("nodes")
    if not isinstance(nodes, np.ndarray) or nodes.dtype.names is None or nodes.ndim != 1 or nodes.size < 1:
        raise _bad("boosted tree", "its node array is missing or empty")
    if nodes.dtype != PREDICTOR_RECORD_DTYPE:
        raise _bad("boosted tree", "its node array does not have scikit-learn's node layout")
    for flag in ("is_leaf", "is_categorical", "missing_go_to_left"):
        if not np.isin(nodes[flag], (0, 1)).all():
            raise _bad("boosted tree", f"its {flag} flags are not all 0 or 1")
    leaf = nodes["is_leaf"].astype(bool)
    _check_tree_links("boosted tree", nodes["left"], nodes["right"], leaf, nodes.size)
    internal = ~leaf
    features = nodes["feature_idx"][internal].astype(np.int64)
    if features.size and (features.min() < 0 or (n_features is not None and features.max() >= n_features)):
        raise _bad("boosted tree", f"a node splits on feature {int(features.max())} of a {n_features}-feature model")
    raw, binned = state.get("raw_left_cat_bitsets"), state.get("binned_left_cat_bitsets")
    for bitsets in (raw, binned):
        if not isinstance(bitsets, np.ndarray) or bitsets.dtype != np.uint32 or bitsets.ndim != 2:
            raise _bad("boosted tree", "its categorical bitsets are malformed")
        if bitsets.shape[1] != 8 or bitsets.shape[0] != raw.shape[0]:
            raise _bad("boosted tree", "its categorical bitsets have the wrong shape")
    categorical = internal & nodes["is_categorical"].astype(bool)
    if categorical.any():
        if int(nodes["bitset_idx"][categorical].max()) >= raw.shape[0]:
            raise _bad("boosted tree", "a categorical split points past its bitsets")
        if is_categorical is not None:
            flags = np.asarray(is_categorical, dtype=bool)
            split_on = nodes["feature_idx"][categorical]
            if (split_on >= flags.size).any() or not flags[split_on].all():
                raise _bad("boosted tree", "a categorical split is on a feature that is not categorical")
    numeric = internal & ~nodes["is_categorical"].astype(bool)
    if n_bins is not None and numeric.any():
        limits = np.asarray(n_bins)[nodes["feature_idx"][numeric]]
        if (nodes["bin_threshold"][numeric] >= limits).any():
            raise _bad("boosted tree", "a split's bin threshold is past its feature's bins")


def _check_bin_mapper(mapper: Any, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """The binner's per-feature arrays: one entry per feature, bin counts that match the
    thresholds, categories that fit the 256-bit bitsets, the missing-values bin last.
    Returns its categorical mask and its non-missing bin counts."""
    from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper

    what = "boosted model"
    if not isinstance(mapper, _BinMapper):
        raise _bad(what, "its binner (_bin_mapper) is missing")
    state = vars(mapper)
    thresholds = state.get("bin_thresholds_")
    n_bins = state.get("n_bins_non_missing_")
    mask = state.get("is_categorical_")
    missing = state.get("missing_values_bin_idx_")
    if not isinstance(thresholds, list) or len(thresholds) != n_features:
        known = len(thresholds) if isinstance(thresholds, list) else "no"
        raise _bad(what, f"its binner knows {known} features, the model {n_features}")
    if not isinstance(n_bins, np.ndarray) or n_bins.shape != (n_features,) or n_bins.dtype.kind not in "iu":
        raise _bad(what, "its binner's bin counts do not match its features")
    if not isinstance(mask, np.ndarray) or mask.shape != (n_features,) or not np.isin(mask, (0, 1)).all():
        raise _bad(what, "its binner's categorical mask does not match its features")
    if isinstance(missing, np.integer):
        missing = int(missing)
    if not isinstance(missing, int) or not 0 < missing <= 255 or state.get("n_bins") != missing + 1:
        raise _bad(what, "its binner's missing-values bin is not its last bin")
    for feature, edges in enumerate(thresholds):
        count = int(n_bins[feature])
        expected = count if mask[feature] else count - 1
        if not isinstance(edges, np.ndarray) or edges.ndim != 1 or edges.size != expected or not 0 < count <= missing:
            raise _bad(what, f"its binner's bin thresholds and bin counts disagree for feature {feature}")
        if mask[feature] and edges.size and not (np.isfinite(edges).all() and edges.min() >= 0 and edges.max() < 256):
            raise _bad(what, f"its binner's categories for feature {feature} do not fit a bitset")
    return mask.astype(bool), n_bins


def _check_hist_gradient_boosting(estimator: Any) -> None:
    """The trees index the binner's per-feature arrays (categorical bitsets, bin thresholds) by
    feature and bin: the binner, the trees and ``n_features_in_`` must all agree."""
    state = vars(estimator)
    predictors = state.get("_predictors")
    if predictors is None:
        return
    what = "boosted model"
    n_features = _features_of(estimator, what)
    if state.get("_in_fit"):
        raise _bad(what, "it claims to be in the middle of fitting (its trees would read raw data as bins)")
    mask, n_bins = _check_bin_mapper(state.get("_bin_mapper"), n_features)
    categorical = state.get("is_categorical_")
    if categorical is not None and (
        not isinstance(categorical, np.ndarray)
        or categorical.shape != (n_features,)
        or int(np.asarray(categorical, dtype=bool).sum()) != int(mask.sum())
    ):
        raise _bad(what, "its categorical-feature mask does not match its binner's")
    if state.get("_preprocessor") is not None:
        _check_hist_preprocessor(state["_preprocessor"], n_features, mask)
    per_iteration = state.get("n_trees_per_iteration_")
    if not isinstance(predictors, list) or any(
        not isinstance(trees, list) or len(trees) != per_iteration for trees in predictors
    ):
        raise _bad(what, "its trees per iteration do not match n_trees_per_iteration_")
    for trees in predictors:
        for predictor in trees:
            check_predictor(predictor, n_features, mask, n_bins)


def _check_hist_preprocessor(preprocessor: Any, n_features: int, mask: np.ndarray) -> None:
    """The column transformer scikit-learn puts before categorical trees: ordinal-encoded
    categorical columns first, then the numerical ones passed through, nothing dropped. The
    trees read its output by index, unchecked, so its width and order must be the binner's."""
    from functools import partial

    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder
    from sklearn.utils.validation import check_array

    what = "boosted model"
    steps = vars(preprocessor).get("transformers_") if isinstance(preprocessor, ColumnTransformer) else None
    if not isinstance(steps, list) or len(steps) != 3 or any(not isinstance(t, tuple) or len(t) != 3 for t in steps):
        raise _bad(what, "its categorical preprocessor is not the one scikit-learn builds")
    (_, encoder, cat_cols), (_, numerical, num_cols), (_, remainder, rest) = steps
    columns = [np.asarray(c) for c in (cat_cols, num_cols)]
    func = vars(numerical).get("func") if isinstance(numerical, FunctionTransformer) else None
    if (
        not isinstance(encoder, OrdinalEncoder)
        or not isinstance(numerical, FunctionTransformer)
        or not (func is None or (isinstance(func, partial) and func.func is check_array))
        or not (isinstance(remainder, str) and remainder == "drop")
        or np.asarray(rest, dtype=bool).any()
        or any(c.dtype != bool or c.shape != (n_features,) for c in columns)
        or (columns[0] == columns[1]).any()
        or len(vars(encoder).get("categories_") or ()) != int(columns[0].sum())
        or n_features_of(preprocessor) != n_features
    ):
        raise _bad(what, "its categorical preprocessor is not the one scikit-learn builds")
    n_categorical = int(columns[0].sum())
    if mask[:n_categorical].sum() != n_categorical or mask[n_categorical:].any():
        raise _bad(what, "its categorical preprocessor and its binner order features differently")


# -- nearest neighbours and support vectors ------------------------------------------------------


def _check_neighbors(model: Any) -> None:
    """Brute-force search computes distances between the data and ``_fit_X`` in compiled code
    that takes the width from one side: the fitted data must be exactly ``n_features_in_`` wide,
    its index (if any) built on data of that shape, and class labels inside ``classes_``."""
    from scipy import sparse
    from sklearn.neighbors import BallTree, KDTree

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
        raise _bad("sparse matrix", str(exc)) from None
