"""A model file from outside, loaded in the worker: what its version records (``Store.import_model``, bundles).

``core.importing.import_file`` is the one entry for a file from outside; it tells the kinds
apart, and a model file (or a bundle's) comes here.

The file is loaded in a sandboxed worker process (``core.safety``: ``load_untrusted`` and the
model checks run there, never in this process); only if it loads does anything reach the
store. The version keeps the ORIGINAL bytes (so its sha256 is the upload's), records what the
worker reported as JSON-able facts (format, compression, pickle protocol, estimator,
parameters, the scikit-learn version it was saved with) and, when data is given, is scored by
the worker on a held-out split of this process's own data set, kept with it exactly like a
trained version.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.datasets import Dataset
from core.errors import DatasetError
from core.frames import evaluation_frame, model_input, select_columns
from core.safety import LoadLimits, WorkerModel, load_in_worker, n_features_of, require_strong_sandbox
from core.split import Split
from core.tasks import check_classifier_target


def load_upload(data: bytes, limits: LoadLimits | None = None) -> WorkerModel:
    """Bytes from outside, loaded and checked in a worker (in demo mode, only behind a real sandbox)."""
    require_strong_sandbox()
    return load_in_worker(data, limits or LoadLimits.from_settings())


def model_columns(model: Any, X: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``X`` the model reads, checked against what it was fitted on.

    A model fitted on named columns gets those columns (in its order); one fitted on a bare
    array gets all of ``X``, which must then have exactly as many columns as it expects.
    """
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return select_columns(X, [str(c) for c in names])
    expected = n_features_of(model)
    if expected is not None and X.shape[1] != expected:
        raise DatasetError(f"The model expects {expected} feature columns; the data has {X.shape[1]}")
    return X


def _scored(
    model: WorkerModel, dataset: Dataset, test_size: float, seed: int | None, stratify: bool
) -> tuple[pd.DataFrame, pd.Series, dict[str, Any], dict[str, Any], dict[str, Any]]:
    X_train, X_test, _y_train, y_test = Split(test_size, seed, stratify).apply(dataset)
    X_test = model_columns(model, X_test)
    check_classifier_target(y_test, getattr(model, "classes_", None), dataset.source)
    try:
        metrics = model.score_metrics(model_input(model, X_test), y_test)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise DatasetError(f"Could not score the model on {dataset.source}: {exc}") from exc
    split = Split(test_size, seed, stratify, n_train=len(X_train), n_test=len(X_test)).to_dict()
    described = dataset.describe() | {"feature_names": list(X_test.columns), "n_features": X_test.shape[1]}
    return X_test, y_test, metrics, split, described


def imported_fields(
    loaded: WorkerModel,
    *,
    filename: str | None,
    dataset: Dataset | None,
    test_size: float,
    seed: int | None,
    stratify: bool,
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """What a version records about an outside file loaded in a worker, and its evaluation rows if scored."""
    eval_frame = metrics = split = described_data = None
    if dataset is not None:
        X_test, y_test, metrics, split, described_data = _scored(loaded, dataset, test_size, seed, stratify)
        eval_frame = evaluation_frame(loaded, X_test, y_test)
    facts = loaded.facts  # JSON-able data from the worker: describe_model's fields, the file's format
    version = facts.get("sklearn_version")
    fields = {
        "format": facts["format"],
        "compression": facts["compression"],
        "protocol": facts["protocol"],
        "estimator": facts["estimator"],
        "params": facts["params"],
        "metrics": metrics or {},
        "split": split,
        "dataset": described_data,
        "warnings": list(facts.get("warnings") or []),
        # Only what the file itself says about where it was made: its scikit-learn version.
        "environment": {"packages": {"scikit-learn": version} if version else {}},
        "imported": {
            "filename": filename,  # the bytes are kept as they came: the record's sha256 is theirs
            "sklearn_version": version,
            "classes": facts["classes"],
            "n_features_in": facts["n_features_in"],
        },
    }
    return fields, eval_frame
