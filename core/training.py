"""Training: split, build the pipeline, fit, and score on the held-out part.

The saved pipeline carries its own preprocessing (imputation, one-hot encoding, optional
scaling), so the stored model accepts raw rows exactly like the ones it was trained on. Every
warning raised during fit is kept: a ConvergenceWarning is something a user must see.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from core.catalog_tasks import ALL_KEYS, catalog_for, spec_for
from core.crossval import check_folds, cross_validate
from core.datasets import Dataset, feature_types
from core.errors import DatasetError, InvalidParameterError
from core.metrics import roc_points, score_metrics
from core.settings import load_settings
from core.split import Split
from core.tasks import choose_task

#: The most numbers one-hot encoding may fill (rows x encoded columns; dense, as the JSON export
#: needs): 50 million float64 are 400 MB, so a small CSV can never ask for gigabytes.
MAX_ONEHOT_CELLS = 50_000_000


@dataclass
class TrainResult:
    """A fitted pipeline with its held-out evaluation, ready to save."""

    model: Pipeline
    estimator_key: str
    params: dict[str, Any]
    scale: bool
    dataset: Dataset
    split: Split
    X_test: pd.DataFrame
    y_test: pd.Series
    metrics: dict[str, Any]
    fit_seconds: float
    warnings: list[str] = field(default_factory=list)
    task: str = "classification"
    task_reason: str = ""
    cv: dict[str, Any] | None = None  # core.crossval.cross_validate's record, when asked for
    #: ``held_out_outputs`` computed where the model was fitted (a demo's worker), else None.
    outputs: dict[str, Any] | None = None

    def held_out(self) -> dict[str, Any]:
        """What a front end draws of the held-out rows: ``{"roc": ...}`` or ``{"predicted": ...}``."""
        if self.outputs is None:
            self.outputs = held_out_outputs(self.model, self.X_test, self.y_test, self.task)
        return self.outputs


def held_out_outputs(model: Any, X_test: pd.DataFrame, y_test: pd.Series, task: str) -> dict[str, Any]:
    """A classifier's ROC curve (None unless binary), or a regressor's predictions on the held-out rows.

    Computed next to the fit in demo mode, so a slow ``predict`` (k-NN on many rows) runs under its limits.
    """
    if task == "regression":
        return {"predicted": np.asarray(model.predict(X_test), dtype=float).ravel()}
    return {"roc": roc_points(model, X_test, y_test)}


def check_categories(X: pd.DataFrame, categorical: list[str], max_categories: int | None = None) -> None:
    """Refuse text columns whose one-hot encoding would be too wide, naming the column and its count.

    Two text columns of 20,000 distinct values each once took 5.7 GB to encode densely.
    """
    limit = max_categories if max_categories is not None else load_settings().max_categories
    counts = {c: int(X[c].nunique(dropna=True)) for c in categorical}
    for column, count in sorted(counts.items(), key=lambda item: -item[1]):
        if count > limit:
            raise DatasetError(
                f"The text column {column!r} has {count:,} distinct values; one-hot encoding takes at most "
                f"{limit:,} per column (MODELSHELF_MAX_CATEGORIES): drop it or turn it into numbers"
            )
    width = sum(counts.values())
    if len(X) * width > MAX_ONEHOT_CELLS:
        raise DatasetError(
            f"One-hot encoding the text columns {', '.join(map(repr, categorical))} would fill {len(X):,} rows x "
            f"{width:,} columns, over {MAX_ONEHOT_CELLS:,} numbers: drop some of them or use fewer rows"
        )


def build_pipeline(
    estimator: str,
    params: dict[str, Any] | None,
    X: pd.DataFrame,
    scale: bool = False,
    seed: int | None = None,
    max_categories: int | None = None,
    task: str = "classification",
) -> Pipeline:
    """Preprocessing for the columns of ``X`` followed by the catalog estimator ``estimator`` for ``task``.

    ``max_categories``: the most distinct values a text column may have (default: the settings).
    """
    spec = spec_for(estimator, task)
    model = spec.build(params, random_state=seed)
    types = feature_types(X)
    numeric = [c for c, t in types.items() if t == "number"]
    categorical = [c for c, t in types.items() if t == "category"]
    check_categories(X, categorical, max_categories)
    steps: list[tuple[str, Any]] = []
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
        if scale:
            numeric_steps.append(("scale", StandardScaler()))
        transformers.append(("numeric", Pipeline(numeric_steps), numeric))
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            )
        )
    steps.append(("preprocess", ColumnTransformer(transformers, verbose_feature_names_out=False)))
    steps.append(("model", model))
    return Pipeline(steps)


def collect_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """One line per distinct warning, in the order they were first raised."""
    lines: list[str] = []
    for w in caught:
        line = f"{w.category.__name__}: {' '.join(str(w.message).split())}"
        if line not in lines:
            lines.append(line)
    return lines


@dataclass
class Prepared:
    """A data set cut once, with the task it is trained for: what every estimator of a comparison shares."""

    dataset: Dataset
    task: str
    task_reason: str
    task_notes: list[str]
    split: Split
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


def prepare(
    dataset: Dataset,
    test_size: float = 0.33,
    seed: int | None = 7,
    stratify: bool = False,
    task: str | None = None,
    estimators: Sequence[str] = (),
    cv: int | None = None,
) -> Prepared:
    """Choose the task, check the ``estimators`` keys for it, cut the held-out part, check the folds.

    Everything that can be refused is refused here, before any fit.
    """
    chosen, reason, task_notes = choose_task(dataset.y, task)
    for key in estimators:
        if key not in ALL_KEYS:  # name the keys this task allows, not every key there is
            raise InvalidParameterError(
                f"Unknown estimator {key!r} for a {chosen} target; choose one of: " + ", ".join(catalog_for(chosen))
            )
        spec_for(key, chosen)
    if chosen == "regression" and stratify:
        raise DatasetError("Stratifying keeps class proportions in the split; a regression target has no classes")
    split = Split(test_size=float(test_size), random_state=seed, stratify=stratify)
    X_train, X_test, y_train, y_test = split.apply(dataset)
    if chosen == "classification" and pd.unique(y_train).size < 2:
        raise DatasetError("The training part has a single class; use a larger data set or --stratify")
    if cv is not None:
        check_folds(y_train, cv, chosen)
    return Prepared(
        dataset=dataset,
        task=chosen,
        task_reason=reason,
        task_notes=task_notes,
        split=Split(split.test_size, seed, stratify, n_train=len(X_train), n_test=len(X_test)),
        X_train=X_train,
        X_test=X_test.reset_index(drop=True),
        y_train=y_train,
        y_test=y_test.reset_index(drop=True),
    )


def fit_prepared(
    prepared: Prepared,
    estimator: str,
    params: dict[str, Any] | None = None,
    scale: bool = False,
    cv: int | None = None,
) -> TrainResult:
    """Fit the catalog ``estimator`` on the prepared training part, score the held-out part, cross-validate.

    The split's seed also seeds the estimator and the folds.
    """
    p = prepared
    spec = spec_for(estimator, p.task)
    resolved = spec.resolve(params)
    seed = p.split.random_state
    pipeline = build_pipeline(estimator, resolved, p.dataset.X, scale=scale, seed=seed, task=p.task)
    cv_record: dict[str, Any] | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if cv is not None:
                cv_record = cross_validate(pipeline, p.X_train, p.y_train, p.task, cv, seed)
            started = time.perf_counter()
            pipeline.fit(p.X_train, p.y_train)
            fit_seconds = time.perf_counter() - started
            metrics = score_metrics(pipeline, p.X_test, p.y_test, p.task)
        except (ValueError, TypeError) as exc:
            raise DatasetError(f"{spec.label} could not be trained on {p.dataset.source}: {exc}") from exc
    metrics["fit_seconds"] = round(fit_seconds, 6)
    return TrainResult(
        model=pipeline,
        estimator_key=estimator,
        params=resolved,
        scale=scale,
        dataset=p.dataset,
        split=p.split,
        X_test=p.X_test,
        y_test=p.y_test,
        metrics=metrics,
        fit_seconds=fit_seconds,
        warnings=p.task_notes + collect_warnings(caught),
        task=p.task,
        task_reason=p.task_reason,
        cv=cv_record,
    )


def train(
    dataset: Dataset,
    estimator: str,
    params: dict[str, Any] | None = None,
    test_size: float = 0.33,
    seed: int | None = 7,
    stratify: bool = False,
    scale: bool = False,
    task: str | None = None,
    cv: int | None = None,
    fit: Fitter | None = None,
) -> TrainResult:
    """Split ``dataset``, fit the catalog ``estimator`` on the training part, score the rest.

    The defaults (a third held out, seed 7, no stratification) are the tutorial's, so its
    figures reproduce; ``seed`` also seeds estimators that take a ``random_state``. ``task``
    (classification or regression; None or "auto": inferred from the target, see ``core.tasks``)
    picks which estimator a shared key such as ``random_forest`` means. ``cv``: k-fold
    cross-validation on the training part too (``core.crossval``), recorded beside the metrics.
    ``fit``: how the model is fitted (default ``fit_prepared``; ``core.demo_training``: in a worker).
    """
    prepared = prepare(dataset, test_size, seed, stratify, task, estimators=[estimator], cv=cv)
    return (fit or fit_prepared)(prepared, estimator, params, scale, cv)


#: ``fit(prepared, key, params, scale, cv)``: how an estimator is fitted (``fit_prepared``, or in a worker).
Fitter = Callable[[Prepared, str, "dict[str, Any] | None", bool, "int | None"], TrainResult]
