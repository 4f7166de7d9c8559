"""Checks on the trees compiled code walks by index: decision trees, forests, gradient boosting,
HistGradientBoosting predictors, their binners and categorical preprocessing.

Child indices in range, each node reached once (no cycles), split features below the model's
width, value arrays of the right shape; ensembles' members exactly as wide as the ensemble.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._forest import BaseForest
from sklearn.ensemble._gb import BaseGradientBoosting
from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper
from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder
from sklearn.tree import DecisionTreeRegressor
from sklearn.tree._tree import Tree
from sklearn.utils.validation import check_array

from core.safety.checks import _bad, _features_of, n_features_of

TREE_LEAF = -1


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
    left, right = nodes["left_child"], nodes["right_child"]
    leaf = left == TREE_LEAF
    depth = _check_tree_links("decision tree", left, right, leaf, node_count)
    internal = ~leaf
    features = nodes["feature"][internal]
    if features.size and (features.min() < 0 or features.max() >= limit):
        raise _bad("decision tree", f"a node splits on feature {int(features.max())} of a {limit}-feature model")
    # decision_path() writes each sample's path into a buffer of max_depth + 1 slots per sample.
    max_depth = state.get("max_depth")
    if depth is None:
        # Links in range, one parent each, parents numbered first (checked just above): the
        # compiled one-pass walk is safe here, and five times faster than a numpy step per level.
        depth = int(tree.compute_node_depths().max()) - 1
    if not isinstance(max_depth, (int, np.integer)) or not depth <= int(max_depth) <= node_count:
        raise _bad("decision tree", f"its max_depth {max_depth!r:.20} is not its depth {depth}")


def _check_tree_links(what: str, left: np.ndarray, right: np.ndarray, leaf: np.ndarray, n: int) -> int | None:
    """Every node is reached exactly once from node 0: a tree, not a graph with loops or orphans.

    Returns the tree's depth when it had to walk it level by level, None when the nodes are
    numbered parents first (the caller then has a cheaper way to the depth)."""
    # Contiguous copies first: the fields of a node record are strided views, and each of the
    # steps below runs faster on packed integers than the one gather costs (40% off this check).
    left = np.ascontiguousarray(left, dtype=np.int64)
    right = np.ascontiguousarray(right, dtype=np.int64)
    internal = ~leaf
    if what == "decision tree" and (leaf > (right == TREE_LEAF)).any():
        raise _bad(what, "a leaf has one child")
    parents = np.flatnonzero(internal)
    left_of, right_of = left[parents], right[parents]
    children = np.concatenate([left_of, right_of])
    if children.size and (children.min() < 1 or children.max() >= n):
        bad = int(children.max() if children.max() >= n else children.min())
        raise _bad(what, f"a child index {bad} is outside 1..{n - 1}")
    if children.size != n - 1 or (children.size and np.bincount(children, minlength=n).max() > 1):
        raise _bad(what, "some node has two parents or none (the nodes do not form one tree)")
    if (left_of > parents).all() and (right_of > parents).all():
        # One parent each, numbered below its children (as scikit-learn's builders number them):
        # walking up from any node ends at the root, so every node is reached and none loops. O(n).
        return None
    # Each non-root node has exactly one parent; now make sure all are reachable from the root,
    # which rules out cycles among the non-root nodes. Breadth-first, one numpy step per level.
    reached = np.zeros(n, dtype=bool)
    frontier = np.array([0])
    reached[0] = True
    count = 1
    depth = -1
    while frontier.size:
        depth += 1
        inner = frontier[internal[frontier]]
        frontier = np.concatenate([left[inner], right[inner]])
        if reached[frontier].any():
            raise _bad(what, "it has a cycle")
        reached[frontier] = True
        count += frontier.size
    if count != n:
        raise _bad(what, f"{n - count} node(s) cannot be reached from the root (a cycle)")
    return depth


def _check_decision_tree(estimator: Any) -> None:
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
        # Its predictions become the (rows, 1) array the trees add into in C: one output exactly
        # (n_outputs_ 0 gave a (rows, 0) array, which predict_stages wrote past).
        constant = np.asarray(vars(init).get("constant_"))
        if vars(init).get("n_outputs_") != 1 or constant.shape != (1, 1) or constant.dtype.kind not in "iuf":
            raise _bad(what, "its init estimator does not predict one number per row")
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
