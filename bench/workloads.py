"""The models the benchmark saves and loads, at three scales (full, quick, tiny).

Full: the tutorial's LogisticRegression on Pima; a 200-tree RandomForest on 20,000 x 20
(about 44 MB as joblib); a forest of 300 MB or more; a HistGradientBoosting model. Quick and
tiny shrink every workload so the whole run takes under a minute (quick) or a few seconds
(tiny, for the tests), and the report says so.
"""

from __future__ import annotations

import copy
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from core.datasets import load_dataset
from core.metrics import classification_metrics
from core.training import TrainResult, train

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Scale:
    """How big each workload is and how often each figure is repeated."""

    name: str
    repeats: int
    forest_trees: int
    forest_rows: int
    big_bytes: int
    big_rows: int
    hgb_iter: int
    list_sizes: tuple[int, int, int]
    page_versions: int
    mlflow_repeats: int
    mlflow_models: tuple[str, ...]
    memory_repeats: int


SCALES = {
    "full": Scale(
        "full",
        7,
        200,
        20_000,
        310_000_000,
        60_000,
        100,
        (1_000, 10_000, 100_000),
        10_000,
        3,
        ("pima", "forest", "hgb"),
        2,
    ),
    "quick": Scale("quick", 3, 40, 5_000, 40_000_000, 20_000, 30, (1_000, 10_000, 50_000), 10_000, 1, ("pima",), 1),
    "tiny": Scale("tiny", 2, 5, 1_000, 2_000_000, 4_000, 5, (100, 1_000, 2_000), 300, 1, ("pima",), 1),
}


@dataclass
class Workload:
    """A fitted model with its held-out rows and the metrics computed on them at training time."""

    key: str
    label: str
    model: Any
    X_test: Any
    y_test: Any
    metrics: dict[str, Any]
    result: TrainResult | None = None
    joblib_bytes: int = 0

    @classmethod
    def scored(cls, key: str, label: str, model: Any, X_test: Any, y_test: Any) -> Workload:
        """A workload for a model fitted here: its held-out metrics computed, its joblib size measured."""
        work = cls(key, label, model, X_test, y_test, classification_metrics(model, X_test, y_test))
        work.measure_size()
        return work

    def measure_size(self) -> int:
        buffer = io.BytesIO()
        joblib.dump(self.model, buffer)
        self.joblib_bytes = len(buffer.getvalue())
        return self.joblib_bytes


def pima_logistic() -> Workload:
    """The tutorial's model: LogisticRegression (liblinear) on Pima (``builtin:pima``), 33% held out, seed 7."""
    dataset, label = load_dataset("builtin:pima"), "LogisticRegression on Pima (tutorial)"
    result = train(dataset, "logistic_regression", {"solver": "liblinear"}, test_size=0.33, seed=7)
    work = Workload("pima", label, result.model, result.X_test, result.y_test, result.metrics, result=result)
    work.measure_size()
    return work


def _synthetic(train_rows: int, flip: float = 0.01) -> tuple[np.ndarray, ...]:
    """``train_rows`` x 20 rows to fit on, plus a third as many held out (scikit-learn's defaults)."""
    total = math.ceil(train_rows / 0.67)
    X, y = make_classification(total, 20, flip_y=flip, random_state=0)
    return tuple(train_test_split(X, y, train_size=train_rows, random_state=7))


def forest(scale: Scale) -> Workload:
    """A RandomForest of ``forest_trees`` trees on ``forest_rows`` x 20 (full scale: 200 x 20,000, ~44 MB).

    7% of the labels are flipped (label noise) so the fully grown trees come to the issue's 44 MB.
    """
    X_train, X_test, y_train, y_test = _synthetic(scale.forest_rows, flip=0.07)
    model = RandomForestClassifier(scale.forest_trees, random_state=0, n_jobs=2).fit(X_train, y_train)
    model.n_jobs = None  # fitted on both cores; saved, loaded and predicting with the default
    return Workload.scored(
        "forest", f"RandomForest {scale.forest_trees} trees, {scale.forest_rows:,} x 20", model, X_test, y_test
    )


def big_forest(scale: Scale) -> Workload:
    """A forest of at least ``big_bytes`` as uncompressed joblib.

    40 trees are fitted on noisy data and deep-copied until the file is big enough: a minute of
    fitting saved, and the file holds as many separate tree arrays as a forest that size.
    """
    X_train, X_test, y_train, y_test = _synthetic(scale.big_rows, flip=0.1)
    fitted = 40 if scale.name != "tiny" else 4
    model = RandomForestClassifier(fitted, random_state=0, n_jobs=2, max_features=2).fit(X_train, y_train)
    model.n_jobs = None
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    per_tree = len(buffer.getvalue()) / fitted
    n_trees = max(fitted, math.ceil(scale.big_bytes * 1.01 / per_tree))
    model.estimators_ = [copy.deepcopy(model.estimators_[i % fitted]) for i in range(n_trees)]
    model.n_estimators = n_trees
    work = Workload.scored("big", "", model, X_test, y_test)
    size = work.joblib_bytes
    work.label = f"RandomForest {n_trees} trees, {size / 1e6:.0f} MB"
    return work


def nearest_neighbours(scale: Scale) -> Workload:
    """A brute-force KNeighborsClassifier holding ``big_bytes`` of training rows (float64, 20 columns).

    Its weight is plain numpy arrays (the training rows), which a memory-mapped load maps
    without copying; a forest's trees are copied into scikit-learn's own buffers when loaded.
    """
    rows = math.ceil(scale.big_bytes * 1.01 / (20 * 8))
    X, y = make_classification(rows, 20, flip_y=0.05, random_state=1)
    model = KNeighborsClassifier(algorithm="brute").fit(X, y)
    X_test, y_test = X[:200].copy(), y[:200].copy()
    work = Workload.scored("knn", "", model, X_test, y_test)
    size = work.joblib_bytes
    work.label = f"KNeighbors (brute) on {rows:,} x 20, {size / 1e6:.0f} MB"
    return work


def hist_gradient_boosting(scale: Scale) -> Workload:
    """A HistGradientBoostingClassifier on the forest's data."""
    X_train, X_test, y_train, y_test = _synthetic(scale.forest_rows)
    model = HistGradientBoostingClassifier(max_iter=scale.hgb_iter, early_stopping=False, random_state=0)
    model.fit(X_train, y_train)
    return Workload.scored(
        "hgb", f"HistGradientBoosting {scale.hgb_iter} iterations, {scale.forest_rows:,} x 20", model, X_test, y_test
    )
