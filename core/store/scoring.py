"""Scoring a stored version again: on its kept evaluation set, or on data split the recorded way.

``reproduced`` says whether the accuracy came out exactly as recorded: the check that a reload
(perhaps under other package versions) still behaves like the model that was saved.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from core.csvheader import HeaderMode
from core.datasets import load_dataset
from core.environment import Compatibility, fold_version_warnings
from core.errors import DatasetError
from core.frames import align_features, model_input
from core.metrics import classification_metrics
from core.record import dataset_of, recorded_accuracy
from core.split import held_out
from core.store.loading import LoadedModel


@dataclass
class Evaluation:
    """A stored version scored again: recorded vs reproduced accuracy."""

    name: str
    version: int
    accuracy: float
    recorded_accuracy: float | None
    reproduced: bool | None
    compatibility: Compatibility
    warnings: list[str]
    metrics: dict[str, Any]
    data: str
    fingerprint_match: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "accuracy": self.accuracy,
            "recorded_accuracy": self.recorded_accuracy,
            "reproduced": self.reproduced,
            "data": self.data,
            "fingerprint_match": self.fingerprint_match,
            "compatibility": self.compatibility.to_dict(),
            "warnings": self.warnings,
            "metrics": self.metrics,
        }


def evaluate(
    loaded: LoadedModel,
    kept_set: Callable[[], tuple[pd.DataFrame, pd.Series]],
    data: str | Path | bytes | None,
    names: Any,
    target: str | None,
    header: HeaderMode = "auto",
) -> Evaluation:
    """Score ``loaded`` on its kept evaluation set (``kept_set()``), or on ``data`` cut the recorded way."""
    record = loaded.record
    fingerprint_match = None
    if data is None:
        X, y = kept_set()
        source = "kept evaluation set"
    else:
        recorded_target = dataset_of(record).get("target")
        dataset = load_dataset(data, names=names, target=target or recorded_target, header=header)
        X, y = held_out(dataset, record.get("split"))
        source = dataset.source
        recorded_fp = dataset_of(record).get("fingerprint")
        fingerprint_match = None if not recorded_fp else recorded_fp == dataset.fingerprint
    X = align_features(X, record)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Deferred: the worker (and its sandbox) load only when an imported version is scored.
        from core.safety import WorkerModel

        features = model_input(loaded.model, X)
        try:
            if isinstance(loaded.model, WorkerModel):  # scored by the worker that holds it
                metrics = loaded.model.score_metrics(features, y)
            else:
                metrics = classification_metrics(loaded.model, features, y)
        except (ValueError, TypeError, KeyError) as exc:
            raise DatasetError(f"Could not score {loaded.ref} on {source}: {exc}") from exc
    recorded = recorded_accuracy(record)
    return Evaluation(
        name=record["name"],
        version=record["version"],
        accuracy=metrics["accuracy"],
        recorded_accuracy=recorded,
        reproduced=None if recorded is None else metrics["accuracy"] == recorded,
        compatibility=loaded.compatibility,
        warnings=loaded.warnings + [w for w in fold_version_warnings(caught) if w not in loaded.warnings],
        metrics=metrics,
        data=source,
        fingerprint_match=fingerprint_match,
    )
