"""Held-out metrics of a classifier, as plain JSON-able numbers.

Accuracy is the figure a reload must reproduce exactly; the others (precision, recall, F1,
ROC AUC where defined, the confusion matrix) are there to judge the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from core.datasets import to_jsonable


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
    classes = list(getattr(model, "classes_", []))
    scores = class_scores(model, X)
    if len(classes) != 2 or scores is None:
        return None
    fpr, tpr, _ = skm.roc_curve(np.asarray(y) == classes[1], scores[:, 1])
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


def classification_metrics(model: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    """accuracy, balanced accuracy, precision, recall, F1, ROC AUC and the confusion matrix."""
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
        "confusion_matrix": {
            "labels": [to_jsonable(c) for c in classes],
            "matrix": skm.confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        },
        "n_samples": len(y_true),
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
