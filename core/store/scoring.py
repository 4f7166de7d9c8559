"""Scoring a stored version again: on its kept evaluation set, or on data split the recorded way.

``reproduced`` says whether every recorded score of the version's task (accuracy, precision...;
R², MAE...) came out exactly as recorded, to the last bit: the check that a reload (perhaps under
other package versions) still behaves like the model that was saved. ``differences`` says by how
much each one moved when it did not.
"""

from __future__ import annotations

import math
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
from core.metrics import TASK_METRICS, score_metrics
from core.record import dataset_of, recorded_accuracy, recorded_score
from core.split import held_out
from core.store.loading import LoadedModel
from core.tasks import check_classifier_target, task_of_record


def _same(a: Any, b: Any) -> bool:
    """Equal to 12 significant digits (two undefined scores, None or NaN, are the same too).

    Not to the last bit: a score computed in a worker (one BLAS thread, as every model in a public
    demo is) can differ there from the one its saver computed on several threads (an r2 of
    ...9311 against ...931 on an AMD EPYC), and that is the same model, reproduced.
    """
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)


def differences(recorded: dict[str, Any], measured: dict[str, Any], task: str | None) -> dict[str, float | None]:
    """``metric -> measured - recorded`` for every recorded score of ``task`` that moved (None: one is undefined)."""
    moved: dict[str, float | None] = {}
    for key in TASK_METRICS.get(task or "", ()):
        if key in recorded and not _same(recorded[key], measured.get(key)):
            before, after = recorded[key], measured.get(key)
            moved[key] = None if before is None or after is None else float(after) - float(before)
    return moved


@dataclass
class Evaluation:
    """A stored version scored again: recorded vs reproduced scores (``primary``: accuracy, r2)."""

    name: str
    version: int
    accuracy: float | None
    recorded_accuracy: float | None
    reproduced: bool | None
    compatibility: Compatibility
    warnings: list[str]
    metrics: dict[str, Any]
    data: str
    fingerprint_match: bool | None = None
    task: str | None = None
    primary: str | None = None
    score: float | None = None
    recorded_score: float | None = None
    differences: dict[str, float | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "primary": self.primary,
            "score": self.score,
            "recorded_score": self.recorded_score,
            "accuracy": self.accuracy,
            "recorded_accuracy": self.recorded_accuracy,
            "reproduced": self.reproduced,
            "differences": self.differences,
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
    task = task_of_record(record)
    if task not in TASK_METRICS:
        kind = f"a {task} model" if task else "a model of unknown kind"
        raise DatasetError(f"{loaded.ref} is {kind}: it is stored and listed, not scored")
    fingerprint_match = None
    if data is None:
        X, y = kept_set()
        source = "kept evaluation set"
    else:
        recorded_target = dataset_of(record).get("target")
        dataset = load_dataset(data, names=names, target=target or recorded_target, header=header)
        X, y = held_out(dataset, record.get("split"))
        source = dataset.source
        if task == "classification":  # other data than its own: it may be a regression target
            check_classifier_target(y, getattr(loaded.model, "classes_", None), source)
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
                metrics = score_metrics(loaded.model, features, y, task)
        except (ValueError, TypeError, KeyError) as exc:
            raise DatasetError(f"Could not score {loaded.ref} on {source}: {exc}") from exc
    primary, recorded = recorded_score(record)
    primary = primary or metrics.get("primary")
    moved = None if recorded is None else differences(dict(record.get("metrics") or {}), metrics, task)
    return Evaluation(
        name=record["name"],
        version=record["version"],
        accuracy=metrics.get("accuracy"),
        recorded_accuracy=recorded_accuracy(record),
        reproduced=None if moved is None else not moved,
        task=task,
        primary=primary,
        score=metrics.get(primary) if primary else None,
        recorded_score=recorded,
        differences=moved,
        compatibility=loaded.compatibility,
        warnings=loaded.warnings + [w for w in fold_version_warnings(caught) if w not in loaded.warnings],
        metrics=metrics,
        data=source,
        fingerprint_match=fingerprint_match,
    )
