"""Held-out metrics of a classifier or a regressor, as plain JSON-able numbers.

Each set names its ``primary`` score (accuracy, R²): the figure lists sort by and a reload must
reproduce exactly; the others (precision, recall, F1, ROC AUC where defined, the confusion matrix;
MAE, RMSE, MAPE, max error) are there to judge the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.datasets import to_jsonable
from core.tasks import PRIMARY_METRIC, task_of_estimator

#: The scalar metrics of each scored task, in display order (the primary one first).
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc"),
    "regression": ("r2", "mae", "rmse", "mape", "max_error"),
}


def class_scores(model: Any, X: pd.DataFrame) -> np.ndarray | None:
    """Per-class scores (probabilities, else decision values), or None when the model has neither."""
    for method in ("predict_proba", "decision_function"):
        if hasattr(model, method):
            try:
                scores = np.asarray(getattr(model, method)(X), dtype=float)
            except (AttributeError, NotImplementedError, ValueError):
                continue
            if scores.ndim == 1:  # binary decision_function: one column for the positive class
                scores = np.column_stack([-scores, scores])
            return scores
    return None


def roc_points(model: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, list[float]] | None:
    """The ROC curve of a binary classifier (false and true positive rates), else None."""
    from sklearn import metrics as skm  # deferred: reading TASK_METRICS needs no scikit-learn

    classes = list(getattr(model, "classes_", []))
    scores = class_scores(model, X)
    if len(classes) != 2 or scores is None:
        return None
    fpr, tpr, _ = skm.roc_curve(np.asarray(y) == classes[1], scores[:, 1])
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


#: More classes than this: no confusion matrix is recorded (it grows with their square: a
#: 1,000-class target would put a million numbers in the version's record).
MAX_CONFUSION_CLASSES = 100


def classification_metrics(model: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    """accuracy, balanced accuracy, precision, recall, F1, ROC AUC and the confusion matrix
    (``None`` past ``MAX_CONFUSION_CLASSES``)."""
    from sklearn import metrics as skm  # deferred: reading TASK_METRICS needs no scikit-learn

    y_true = np.asarray(y)
    y_pred = np.asarray(model.predict(X))
    classes = list(getattr(model, "classes_", np.unique(np.concatenate([y_true, y_pred]))))
    binary = len(classes) == 2
    average = "binary" if binary else "macro"
    pos = {"pos_label": classes[1]} if binary else {}
    result: dict[str, Any] = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(y_true, y_pred, average=average, zero_division=0, **pos)),
        "recall": float(skm.recall_score(y_true, y_pred, average=average, zero_division=0, **pos)),
        "f1": float(skm.f1_score(y_true, y_pred, average=average, zero_division=0, **pos)),
        "average": average,
        "roc_auc": None,
        "confusion_matrix": None
        if len(classes) > MAX_CONFUSION_CLASSES
        else {
            "labels": [to_jsonable(c) for c in classes],
            "matrix": skm.confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        },
        "n_samples": len(y_true),
        "primary": PRIMARY_METRIC["classification"],
    }
    scores = class_scores(model, X)
    present = set(np.unique(y_true).tolist())
    if scores is not None and present == {to_jsonable(c) for c in classes}:
        try:
            if binary:
                result["roc_auc"] = float(skm.roc_auc_score(y_true == classes[1], scores[:, 1]))
            elif hasattr(model, "predict_proba"):
                result["roc_auc"] = float(
                    skm.roc_auc_score(y_true, scores, multi_class="ovr", average="macro", labels=classes)
                )
        except ValueError:
            result["roc_auc"] = None
    return result


def regression_metrics(model: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    """R², MAE, RMSE, MAPE (None when a target is 0: it would divide by zero) and the largest error."""
    from sklearn import metrics as skm  # deferred: reading TASK_METRICS needs no scikit-learn

    y_true = np.asarray(y, dtype=float)
    y_pred = np.asarray(model.predict(X), dtype=float).ravel()
    return {
        "r2": float(skm.r2_score(y_true, y_pred)),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "mape": None if np.any(y_true == 0) else float(skm.mean_absolute_percentage_error(y_true, y_pred)),
        "max_error": float(skm.max_error(y_true, y_pred)),
        "n_samples": len(y_true),
        "primary": PRIMARY_METRIC["regression"],
    }


def score_metrics(model: Any, X: pd.DataFrame, y: pd.Series, task: str | None = None) -> dict[str, Any]:
    """The metrics that fit the model's task (given, else judged from the model); {} for an unscored task."""
    task = task or task_of_estimator(model) or "classification"
    if task == "regression":
        return regression_metrics(model, X, y)
    if task == "classification":
        return classification_metrics(model, X, y)
    return {}
