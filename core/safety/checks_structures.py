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
* scipy sparse matrices (``check_format(full_check=True)``),
* linear models' ``coef_`` and ``intercept_`` (``checks_linear``).

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
from scipy import sparse
from sklearn.cluster._kmeans import _BaseKMeans
from sklearn.ensemble._gb import BaseGradientBoosting
from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import BaseHistGradientBoosting
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.linear_model._base import LinearClassifierMixin, LinearModel
from sklearn.linear_model._glm.glm import _GeneralizedLinearRegressor
from sklearn.linear_model._stochastic_gradient import BaseSGDRegressor
from sklearn.neighbors import BallTree, KDTree
from sklearn.neighbors._base import NeighborsBase
from sklearn.svm._base import BaseLibSVM
from sklearn.tree import BaseDecisionTree
from sklearn.tree._tree import Tree

from core.safety.checks import _bad, _children, _has_special_names
from core.safety.checks_linear import _check_linear_model
from core.safety.checks_neighbors_svm import (
    _check_binary_tree,
    _check_kmeans,
    _check_libsvm,
    _check_neighbors,
    _check_sparse,
)
from core.safety.checks_trees import (
    _check_decision_tree,
    _check_ensemble_features,
    _check_gradient_boosting,
    _check_hist_gradient_boosting,
    check_predictor,
    check_tree,
)

_MAX_OBJECTS = 5_000_000  # objects visited while walking a model (a bound, not a target)


def validate_model(model: Any, tick: Callable[[], None] | None = None) -> None:
    """Walk every object reachable from ``model`` and check the structures compiled code indexes."""
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


def _checkers() -> list[tuple[type, Callable[[Any], None]]]:
    found: list[tuple[type, Callable[[Any], None]]] = [
        (BaseDecisionTree, _check_decision_tree),
        (BaseHistGradientBoosting, _check_hist_gradient_boosting),
        (TreePredictor, lambda p: check_predictor(p, None, None)),
        (BaseLibSVM, _check_libsvm),
        (BaseGradientBoosting, _check_gradient_boosting),
        (NeighborsBase, _check_neighbors),
        (_BaseKMeans, _check_kmeans),
        (LinearModel, _check_linear_model),
        (LinearClassifierMixin, _check_linear_model),
        (_GeneralizedLinearRegressor, _check_linear_model),
        (BaseSGDRegressor, _check_linear_model),
        (KDTree, _check_binary_tree),
        (BallTree, _check_binary_tree),
        (object, _check_ensemble_features),
    ]
    return found
