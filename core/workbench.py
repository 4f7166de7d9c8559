"""The exploration workbench: several catalog estimators on the same split, ranked by their score.

The CLI's ``compare-estimators`` and the Train page's "Compare estimators" both call
``compare_estimators``; each row keeps its ``TrainResult``, so any one of them can be saved
exactly as ``train`` would have saved it. Keys, the task and the folds are checked before the
first fit; an estimator that fails to fit is kept as a row with its error, and the rest go on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, cast

import pandas as pd

from core.catalog_tasks import catalog_for
from core.datasets import Dataset
from core.errors import InvalidParameterError, ModelShelfError
from core.formats import DEFAULT_FORMAT, CountingWriter, write_model
from core.metrics import TASK_METRICS
from core.training import Fitter, TrainResult, fit_prepared, prepare

#: ``progress(done, total, key)``: called before each estimator is fitted (``key``) and once at the end ("").
Progress = Callable[[int, int, str], None]


@dataclass
class Entry:
    """One leaderboard row: an estimator's scores on the shared split, or why it could not be fitted."""

    key: str
    label: str
    result: TrainResult | None = None
    size_bytes: int | None = None
    error: str | None = None

    @property
    def score(self) -> float | None:
        """The primary score (accuracy, R²); None when it failed or the score is undefined."""
        if self.result is None:
            return None
        value = self.result.metrics.get(self.result.metrics["primary"])
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)

    def to_dict(self) -> dict[str, Any]:
        """The JSON row: ``{key, primary, score, metrics, cv_mean, cv_std, fit_seconds, size_bytes}``
        (plus ``label``, ``warnings`` and ``error``, null unless the fit failed)."""
        r = self.result
        cv = r.cv if r is not None else None
        return {
            "key": self.key,
            "label": self.label,
            "primary": r.metrics["primary"] if r is not None else None,
            "score": self.score,
            "metrics": dict(r.metrics) if r is not None else {},
            "cv_mean": cv["mean"] if cv else None,
            "cv_std": cv["std"] if cv else None,
            "fit_seconds": round(r.fit_seconds, 6) if r is not None else None,
            "size_bytes": self.size_bytes,
            "warnings": list(r.warnings) if r is not None else [],
            "error": self.error,
        }


@dataclass
class Leaderboard:
    """Every compared estimator, best primary score first (failures last), and what they shared."""

    task: str
    task_reason: str
    primary: str
    n_train: int
    n_test: int
    cv: int | None
    entries: list[Entry] = field(default_factory=list)

    def entry(self, key: str) -> Entry:
        """The row of ``key``, or one line naming the keys compared."""
        for entry in self.entries:
            if entry.key == key:
                return entry
        raise InvalidParameterError(f"{key!r} was not compared; choose one of: " + ", ".join(self.keys))

    @property
    def keys(self) -> list[str]:
        return [e.key for e in self.entries]

    def to_dict(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.entries]

    def table(self) -> pd.DataFrame:
        """What a front end draws: ``rank, estimator, key``, the task's metrics (the primary first),
        ``cv_mean, cv_std, fit_seconds, size_bytes, warnings`` (a count) and ``error``, best first."""
        metrics = list(TASK_METRICS[self.task])
        rows = []
        for rank, entry in enumerate(self.entries, 1):
            row = entry.to_dict()
            rows.append(
                {
                    "rank": rank,
                    "estimator": entry.label,
                    "key": entry.key,
                    **{m: row["metrics"].get(m) for m in metrics},
                    "cv_mean": row["cv_mean"],
                    "cv_std": row["cv_std"],
                    "fit_seconds": row["fit_seconds"],
                    "size_bytes": row["size_bytes"],
                    "warnings": len(row["warnings"]),
                    "error": row["error"],
                }
            )
        columns = ["rank", "estimator", "key", *metrics, "cv_mean", "cv_std", "fit_seconds", "size_bytes"]
        return pd.DataFrame(rows, columns=[*columns, "warnings", "error"])


def model_size(model: Any) -> int:
    """The bytes the model takes in the default format (what ``train`` and ``--save`` write by default)."""
    counter = CountingWriter()  # counted on the way, never held: a forest can take megabytes
    # A binary file at runtime; typeshed's RawIOBase just is not declared an IO[bytes].
    write_model(model, cast("IO[bytes]", counter), DEFAULT_FORMAT, 0)
    return counter.size


def parse_keys(text: str | Sequence[str] | None) -> list[str] | None:
    """``"ridge, lasso"`` or a list -> keys, duplicates dropped; None (every key of the task) when empty."""
    items = text.split(",") if isinstance(text, str) else list(text or [])
    keys = list(dict.fromkeys(k.strip() for k in items if k.strip()))
    return keys or None


def compare_estimators(
    dataset: Dataset,
    estimators: Sequence[str] | None = None,
    *,
    task: str | None = None,
    cv: int | None = None,
    test_size: float = 0.33,
    seed: int | None = 7,
    stratify: bool = False,
    scale: bool = False,
    progress: Progress | None = None,
    fit: Fitter | None = None,
) -> Leaderboard:
    """Fit each of ``estimators`` (default: every catalog key of the task) with its default
    hyperparameters on one split of ``dataset``; rank them by the task's primary score.

    ``cv``: k-fold cross-validation on the training part for each. Unknown keys, a key of the
    other task and too few rows for the folds are refused before the first fit. ``fit``: how
    each is fitted (default ``fit_prepared``; ``core.demo_training`` fits them in a worker, under limits).
    """
    prepared = prepare(dataset, test_size, seed, stratify, task, estimators=estimators or (), cv=cv)
    fit = fit or fit_prepared
    catalog = catalog_for(prepared.task)
    keys = list(estimators) if estimators else list(catalog)
    board = Leaderboard(
        task=prepared.task,
        task_reason=prepared.task_reason,
        primary=TASK_METRICS[prepared.task][0],
        n_train=prepared.split.n_train,
        n_test=prepared.split.n_test,
        cv=cv,
    )
    for done, key in enumerate(keys):
        if progress is not None:
            progress(done, len(keys), key)
        entry = Entry(key=key, label=catalog[key].label)
        try:
            entry.result = fit(prepared, key, None, scale, cv)
            entry.size_bytes = model_size(entry.result.model)
        except ModelShelfError as exc:
            entry.error = str(exc)
        board.entries.append(entry)
    if progress is not None:
        progress(len(keys), len(keys), "")
    board.entries.sort(key=lambda e: (e.score is None, -(e.score or 0.0)))
    return board
