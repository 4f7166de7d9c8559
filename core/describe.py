"""What a version's record says about an estimator: class path, parameters, classes, feature count.

Shared by the store (when it saves a model) and the model worker (when it describes a stranger's
model, through ``core.worker_ops``): a leaf that imports neither.
"""

from __future__ import annotations

from typing import Any

from core.datasets import to_jsonable
from core.training import class_path, final_estimator, jsonable_params


def describe_model(model: Any) -> dict[str, Any]:
    """What the record says about an estimator: class path, parameters, classes, feature count."""
    final = final_estimator(model)
    classes = getattr(model, "classes_", getattr(final, "classes_", None))
    return {
        "estimator": class_path(model),
        "params": jsonable_params(model),
        "classes": [to_jsonable(c) for c in classes] if classes is not None else None,
        "n_features_in": to_jsonable(getattr(model, "n_features_in_", None)),
        "feature_names_in": [str(c) for c in getattr(model, "feature_names_in_", [])] or None,
    }
