"""k-NN prediction from the plain-parameter JSON: scikit-learn's neighbour search, reproduced.

Part of the numpy-only reference predictor (``params_predict``), and shipped inside it: like it,
this module imports nothing but numpy and the standard library, and ``predict_params.py`` holds
its code written in where ``params_predict`` imports it. Which of several training rows at the
same distance are kept depends on the order scikit-learn's own search visits them, so the search
is reproduced step by step: brute force (with its Euclidean shortcut) and the KD-tree walk, and
the fixed-size heap both use.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _minkowski_rdist(fit_X: np.ndarray, x: np.ndarray, p: float) -> np.ndarray:
    """scikit-learn's reduced distance from ``x`` to every row, summed feature by feature in order
    (as its DistanceMetric does): squared for p=2, plain for p=1, ``|d|**p`` otherwise."""
    total = np.zeros(fit_X.shape[0], dtype=np.float64)
    for j in range(fit_X.shape[1]):
        d = fit_X[:, j] - x[j]
        if p == 2:
            total = total + d * d
        elif p == 1:
            total = total + np.abs(d)
        else:
            total = total + np.power(np.abs(d), p)
    return total


def _rdist_to_dist(rdist: np.ndarray, p: float) -> np.ndarray:
    if p == 2:
        return np.sqrt(rdist)
    if p == 1:
        return rdist
    return rdist ** (1.0 / p)


class _Heap:
    """scikit-learn's fixed-size max-heap of the k nearest so far (``utils/_heap.pyx``): a
    candidate enters only when strictly nearer than the current farthest, which decides which of
    several rows at the same distance are kept."""

    def __init__(self, k: int) -> None:
        self.values = [math.inf] * k
        self.indices = [0] * k

    def push(self, value: float, index: int) -> None:
        values, indices, size = self.values, self.indices, len(self.values)
        if value >= values[0]:
            return
        current = 0
        while True:
            left = 2 * current + 1
            right = left + 1
            if left >= size:
                break
            if right >= size:
                if values[left] > value:
                    swap = left
                else:
                    break
            elif values[left] >= values[right]:
                if value < values[left]:
                    swap = left
                else:
                    break
            elif value < values[right]:
                swap = right
            else:
                break
            values[current] = values[swap]
            indices[current] = indices[swap]
            current = swap
        values[current] = value
        indices[current] = index


def _kd_tree_query(tree: dict[str, Any], fit_X: np.ndarray, x: np.ndarray, k: int, p: float) -> _Heap:
    """``KDTree.query`` (depth first): the nearer child first, a node skipped when its lower bound
    exceeds the current k-th distance, leaf rows pushed in the tree's index order."""
    idx_array = tree["idx_array"]
    starts, ends, leaves = tree["idx_start"], tree["idx_end"], tree["is_leaf"]
    lower = np.asarray(tree["lower"], dtype=np.float64)
    upper = np.asarray(tree["upper"], dtype=np.float64)
    heap = _Heap(k)

    def min_rdist(node: int) -> float:
        d_lo = lower[node] - x
        d_hi = x - upper[node]
        d = (d_lo + np.abs(d_lo)) + (d_hi + np.abs(d_hi))
        total = 0.0
        for term in np.power(0.5 * d, p).tolist():
            total += term
        return total

    def visit(node: int, bound: float) -> None:
        if bound > heap.values[0]:
            return
        if leaves[node]:
            rows = idx_array[starts[node] : ends[node]]
            for row, value in zip(rows, _minkowski_rdist(fit_X[rows], x, p).tolist(), strict=True):
                heap.push(value, int(row))
            return
        first, second = 2 * node + 1, 2 * node + 2
        bound_1, bound_2 = min_rdist(first), min_rdist(second)
        if bound_1 <= bound_2:
            visit(first, bound_1)
            visit(second, bound_2)
        else:
            visit(second, bound_2)
            visit(first, bound_1)

    visit(0, min_rdist(0))
    return heap


def _knn_neighbours(model: dict[str, Any], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest training rows of each row and their distances, found the way scikit-learn's
    own search finds them (brute force, or its KD-tree), so that rows at equal distance are
    kept or dropped as scikit-learn keeps or drops them."""
    fit_X = np.asarray(model["fit_X"], dtype=np.float64)
    k = int(model["n_neighbors"])
    p = float(model["p"])
    algorithm = model.get("algorithm", "brute")
    indices = np.zeros((X.shape[0], k), dtype=np.int64)
    dist = np.zeros((X.shape[0], k), dtype=np.float64)
    gemm = algorithm == "brute" and p == 2
    if gemm:
        # scikit-learn's Euclidean specialisation (kneighbors on brute force): ||x||^2 - 2 x.y + ||y||^2.
        x_norms = np.array([np.dot(row, row) for row in X])
        y_norms = np.array([np.dot(row, row) for row in fit_X])
        middle = -2.0 * (X @ fit_X.T) if len(X) else np.zeros((0, len(fit_X)))
    tree = None
    if algorithm == "kd_tree":
        tree = {key: model["kd_tree"][key] for key in ("idx_start", "idx_end", "is_leaf", "lower", "upper")}
        tree["idx_array"] = np.asarray(model["kd_tree"]["idx_array"], dtype=np.int64)
    n_train = fit_X.shape[0]
    for r in range(X.shape[0]):
        # (||x||^2 + middle) + ||y||^2, clipped at 0, in scikit-learn's order of additions.
        rdist = np.maximum(0.0, (x_norms[r] + middle[r]) + y_norms) if gemm else _minkowski_rdist(fit_X, X[r], p)
        kth = np.partition(rdist, k - 1)[k - 1] if k < n_train else math.inf
        nearest = np.nonzero(rdist <= kth)[0]
        if len(nearest) == k:
            # No tie at the k-th place: every exact search keeps these k rows; the heap and the
            # tree walk only decide between rows at the same distance.
            heap_values, heap_indices = rdist[nearest], nearest
        else:
            if tree is not None:
                heap = _kd_tree_query(tree, fit_X, X[r], k, p)
            else:
                heap = _Heap(k)
                for j, value in enumerate(rdist.tolist()):
                    heap.push(value, j)
            heap_values = np.asarray(heap.values, dtype=np.float64)
            heap_indices = np.asarray(heap.indices, dtype=np.int64)
        order = np.argsort(heap_values, kind="stable")
        indices[r] = heap_indices[order]
        dist[r] = _rdist_to_dist(heap_values[order], p)
    return indices, dist


def knn_scores(model: dict[str, Any], X: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class vote totals over the ``n_neighbors`` nearest training rows: one each
    (``uniform``) or ``1 / distance`` (``distance``; a row at distance zero from some training
    rows gets its votes from those rows only, weight 1); the argmax, lowest class on a tie."""
    y = np.asarray(model["y"], dtype=np.int64)
    indices, dist = _knn_neighbours(model, X)
    labels = y[indices]
    if model["weights"] != "distance":
        weights = np.ones(labels.shape, dtype=np.float64)
    else:
        with np.errstate(divide="ignore"):
            weights = 1.0 / dist
        inf_mask = np.isinf(weights)
        inf_row = np.any(inf_mask, axis=1)
        weights[inf_row] = inf_mask[inf_row]
    scores = np.zeros((X.shape[0], n_classes), dtype=np.float64)
    for c in range(n_classes):
        # weighted_mode's sum: a template holding the weights of class c, summed along the row.
        template = np.zeros(labels.shape, dtype=np.float64)
        template[labels == c] = weights[labels == c]
        scores[:, c] = np.sum(template, axis=1)
    return scores
