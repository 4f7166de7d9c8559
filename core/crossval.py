"""k-fold cross-validation on a training part: how steady a score is, not just one held-out figure.

Folds are stratified for classification (each fold keeps the class proportions) and shuffled
with the training seed, so a recorded ``cv`` section reproduces. Too few rows for the folds asked
is refused before anything is fitted, in one line that names the rows, the classes and the k.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

from core.errors import InvalidParameterError
from core.tasks import PRIMARY_METRIC


def check_folds(y: pd.Series, k: int, task: str) -> None:
    """Refuse a ``k`` the training part ``y`` cannot fill: every fold needs a row (of every class)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise InvalidParameterError(f"Cross-validation needs at least 2 folds; got {k!r}")
    rows = len(y)
    if rows < k:
        raise InvalidParameterError(
            f"Too few rows for {k}-fold cross-validation: the training part has {rows} rows; "
            f"ask for {rows} folds or fewer"
        )
    if task == "classification":
        counts = y.value_counts()
        smallest = int(counts.min())
        plural = "" if smallest == 1 else "s"
        rarest = counts.index[int(np.argmin(counts.to_numpy()))]
        if smallest < k:
            hint = f"ask for {smallest} folds or fewer" if smallest >= 2 else "use more data or fewer classes"
            raise InvalidParameterError(
                f"Too few rows for {k}-fold stratified cross-validation: the training part has {rows} rows in "
                f"{len(counts)} classes, the smallest (class {rarest}) {smallest} row{plural}; every fold "
                f"needs one of each class: {hint}"
            )


def cross_validate(model: Any, X: pd.DataFrame, y: pd.Series, task: str, k: int, seed: int | None) -> dict[str, Any]:
    """``{k, metric, mean, std, scores}`` of an unfitted ``model`` (cloned per fold) on ``X, y``.

    The metric is the task's primary score (accuracy, R²). A failing fold raises (scikit-learn's
    default would record NaN and carry on, hiding it).
    """
    check_folds(y, k, task)
    splitter = (
        StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        if task == "classification"
        else KFold(n_splits=k, shuffle=True, random_state=seed)
    )
    metric = PRIMARY_METRIC[task]
    scores = cross_val_score(clone(model), X, y, cv=splitter, scoring=metric, error_score="raise")
    values = [float(s) for s in np.asarray(scores, dtype=float)]
    return {
        "k": k,
        "metric": metric,
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "scores": values,
    }
