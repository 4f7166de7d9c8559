"""Adding a model file from outside (an upload, ``python -m core import``) as a new version.

The file goes through ``core.safe_load.load_untrusted`` first; only if it loads does anything
reach the store. The version keeps the ORIGINAL bytes (so its sha256 is the upload's), records
what the file told us (format, compression, pickle protocol, estimator, the scikit-learn version
it was saved with) and, when data is given, is scored on a held-out split that is kept with it,
exactly like a trained version.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.datasets import Dataset
from core.errors import DatasetError
from core.metrics import classification_metrics
from core.model_checks import n_features_of
from core.safe_load import UntrustedModel
from core.training import Split


def model_columns(model: Any, X: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``X`` the model reads, checked against what it was fitted on.

    A model fitted on named columns gets those columns (in its order); one fitted on a bare
    array gets all of ``X``, which must then have exactly as many columns as it expects.
    """
    from core.store import select_columns

    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return select_columns(X, [str(c) for c in names])
    expected = n_features_of(model)
    if expected is not None and X.shape[1] != expected:
        raise DatasetError(f"The model expects {expected} feature columns; the data has {X.shape[1]}")
    return X


def _scored(
    loaded: UntrustedModel, dataset: Dataset, test_size: float, seed: int | None, stratify: bool
) -> tuple[pd.DataFrame, pd.Series, dict[str, Any], dict[str, Any], dict[str, Any]]:
    from core.store import model_input

    model = loaded.model
    X_train, X_test, _y_train, y_test = Split(test_size, seed, stratify).apply(dataset)
    X_test = model_columns(model, X_test)
    try:
        metrics = classification_metrics(model, model_input(model, X_test), y_test)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise DatasetError(f"Could not score the model on {dataset.source}: {exc}") from None
    split = Split(test_size, seed, stratify, n_train=len(X_train), n_test=len(X_test)).to_dict()
    described = dataset.describe() | {"feature_names": list(X_test.columns), "n_features": X_test.shape[1]}
    return X_test, y_test, metrics, split, described


def imported_fields(
    loaded: UntrustedModel,
    *,
    filename: str | None,
    dataset: Dataset | None,
    test_size: float,
    seed: int | None,
    stratify: bool,
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """What a version records about a safely loaded outside file, and its evaluation rows if scored."""
    from core.store import describe_model, evaluation_frame

    eval_frame = metrics = split = described_data = None
    if dataset is not None:
        X_test, y_test, metrics, split, described_data = _scored(loaded, dataset, test_size, seed, stratify)
        eval_frame = evaluation_frame(loaded.model, X_test, y_test)
    described = describe_model(loaded.model)
    detected = loaded.detected
    fields = {
        "format": detected.format,
        "compression": detected.compression,
        "protocol": detected.protocol,
        "estimator": described["estimator"],
        "params": described["params"],
        "metrics": metrics or {},
        "split": split,
        "dataset": described_data,
        "warnings": loaded.warnings,
        # Only what the file itself says about where it was made: its scikit-learn version.
        "environment": {"packages": {"scikit-learn": loaded.sklearn_version} if loaded.sklearn_version else {}},
        "imported": {
            "filename": filename,  # the bytes are kept as they came: the record's sha256 is theirs
            "sklearn_version": loaded.sklearn_version,
            "classes": described["classes"],
            "n_features_in": described["n_features_in"],
        },
    }
    return fields, eval_frame
