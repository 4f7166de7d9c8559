"""Tables a front end shows about models: feature weights, metrics, parameters, environments.

The dashboard only draws these; building them here keeps its pages free of logic and lets the
same tables be tested without a browser (and reused by any other front end).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.datasets import to_jsonable
from core.describe import final_estimator
from core.environment import Compatibility
from core.errors import DatasetError
from core.metrics import TASK_METRICS
from core.record import (
    VersionRecord,
    cv_text,
    dataset_of,
    environment_of,
    metrics_of,
    recorded_features,
    ref_of,
    score_text,
)
from core.tasks import task_of_record
from core.text import metric_text, param_literal, split_words

#: The scalar metrics a comparison shows, in display order (a classifier's, then a regressor's).
METRIC_NAMES = (*TASK_METRICS["classification"], *TASK_METRICS["regression"])


def _model_feature_names(model: Any, n: int) -> list[str]:
    """Names of the columns the final estimator sees (after one-hot encoding), else ``x0..``."""
    from sklearn.pipeline import Pipeline  # deferred: a version's page draws its record without scikit-learn

    if isinstance(model, Pipeline) and len(model.steps) > 1:
        try:
            names = [str(c) for c in model[:-1].get_feature_names_out()]
            if len(names) == n:
                return names
        except (AttributeError, ValueError, TypeError):
            pass
    names_in = getattr(final_estimator(model), "feature_names_in_", None)
    if names_in is not None and len(names_in) == n:
        return [str(c) for c in names_in]
    return [f"x{i}" for i in range(n)]


def feature_weights(model: Any) -> pd.DataFrame | None:
    """What each input column weighs in the model: tree importances or linear coefficients.

    Columns ``feature, class, weight, kind`` (``kind`` is ``importance`` or ``coefficient``;
    ``class`` is set for per-class coefficients of a multi-class linear model), sorted by
    absolute weight; None when the estimator exposes neither (k-NN, SVC with an RBF kernel...).
    """
    estimator = final_estimator(model)
    importances = getattr(estimator, "feature_importances_", None)
    if importances is not None:
        values = np.asarray(importances, dtype=float).ravel()
        frame = pd.DataFrame(
            {
                "feature": _model_feature_names(model, len(values)),
                "class": None,
                "weight": values,
                "kind": "importance",
            }
        )
    else:
        try:
            coef = getattr(estimator, "coef_", None)
        except AttributeError:  # SVC with a non-linear kernel raises on coef_
            coef = None
        if coef is None:
            return None
        coef = np.atleast_2d(np.asarray(coef, dtype=float))
        names = _model_feature_names(model, coef.shape[1])
        classes = list(getattr(estimator, "classes_", range(coef.shape[0])))
        if coef.shape[0] == 1:  # binary: one row, for the positive class
            labels = [str(to_jsonable(classes[-1]))]
        else:
            labels = [str(to_jsonable(c)) for c in classes[: coef.shape[0]]]
        frame = pd.DataFrame(  # a row per (class, feature), classes in order: built at once, not row by row
            {
                "feature": list(names) * len(labels),
                "class": [label for label in labels for _ in names],
                "weight": coef.reshape(-1),
                "kind": "coefficient",
            }
        )
    order = frame["weight"].abs().sort_values(ascending=False, kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def metrics_table(records: Sequence[VersionRecord]) -> pd.DataFrame:
    """One row per version: its reference, estimator, task, primary score, format, size and scalar metrics.

    A metric of the other task is left empty (a regressor has no accuracy, a classifier no R²).
    """
    rows = []
    for record in records:
        metrics = metrics_of(record)
        rows.append(
            {
                "ref": ref_of(record),
                "estimator": str(record.get("estimator") or "").rsplit(".", 1)[-1],
                "task": task_of_record(record),
                "score": score_text(record),
                "format": record.get("format"),
                "size_bytes": record.get("size_bytes"),
                "sklearn": (environment_of(record).get("packages") or {}).get("scikit-learn"),
                **{m: metrics.get(m) for m in METRIC_NAMES},
            }
        )
    columns = ["ref", "estimator", "task", "score", "format", "size_bytes", "sklearn", *METRIC_NAMES]
    return pd.DataFrame(rows, columns=columns)


def metrics_long(records: Sequence[VersionRecord]) -> pd.DataFrame:
    """``ref, metric, value`` rows (metrics that are undefined are left out): what a bar chart draws."""
    wide = metrics_table(records)
    long = wide.melt(id_vars=["ref"], value_vars=list(METRIC_NAMES), var_name="metric", value_name="value")
    return long.dropna(subset=["value"]).reset_index(drop=True)


def _param_text(params: Mapping[str, Any], name: str) -> str:
    if name not in params:
        return "(absent)"
    value = params[name]
    return "None" if value is None else json.dumps(value, default=str)


def params_diff(records: Sequence[VersionRecord]) -> pd.DataFrame:
    """``parameter`` and one column per version, for the hyperparameters that differ between them only.

    Equal values are left out (two random forests differing in ``max_depth`` show one row); a
    parameter one version lacks (another estimator) reads ``(absent)``.
    """
    refs = [ref_of(r) for r in records]
    params = [r.get("params") or {} for r in records]
    names = sorted(set().union(*params)) if params else []
    rows = []
    for name in names:
        cells = [_param_text(p, name) for p in params]
        if len(set(cells)) > 1:
            rows.append({"parameter": name, **dict(zip(refs, cells, strict=True))})
    return pd.DataFrame(rows, columns=["parameter", *refs])


def compare_details(records: Sequence[VersionRecord]) -> pd.DataFrame:
    """One row per version: the data it was trained on (source, fingerprint, rows), its CV and its warnings.

    Two scores are only comparable on the same data: the fingerprint says whether it was.
    """
    rows = []
    for record in records:
        dataset = dataset_of(record)
        rows.append(
            {
                "ref": ref_of(record),
                "data": dataset.get("source"),
                "fingerprint": dataset.get("fingerprint"),
                "rows": dataset.get("n_rows"),
                "target": dataset.get("target"),
                "cv": cv_text(record.get("cv")),
                "warnings": "\n".join(record.get("warnings") or []) or "-",
            }
        )
    return pd.DataFrame(rows, columns=["ref", "data", "fingerprint", "rows", "target", "cv", "warnings"])


def params_table(record: VersionRecord) -> pd.DataFrame:
    """The saved hyperparameters as ``parameter, value`` rows, each value as Python writes it (``1.0``, ``'lbfgs'``)."""
    params = record.get("params") or {}
    return pd.DataFrame(
        [{"parameter": k, "value": param_literal(v)} for k, v in sorted(params.items())],
        columns=["parameter", "value"],
    )


def scalar_metrics(record: Mapping[str, Any]) -> pd.DataFrame:
    """The record's numeric metrics as ``metric, value`` rows (the confusion matrix is drawn apart)."""
    metrics = metrics_of(record)
    rows = [
        {"metric": k, "value": float(v)}
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    return pd.DataFrame(rows, columns=["metric", "value"])


def claimed_metrics(record: VersionRecord) -> pd.DataFrame:
    """Metrics a bundle's sender claims (kept apart from measured ones) as ``metric, value`` rows."""
    return scalar_metrics({"metrics": metrics_of(record, "claimed_metrics")})


def metrics_shown(frame: pd.DataFrame) -> pd.DataFrame:
    """``scalar_metrics``' rows with each value as text written one way (``core.text.metric_text``)."""
    return frame.assign(value=[metric_text(m, v) for m, v in zip(frame["metric"], frame["value"], strict=True)])


def environment_table(compatibility: Compatibility) -> pd.DataFrame:
    """Saved vs current version of each recorded package, with its severity (ok/warning/error)."""
    return pd.DataFrame(
        [
            {"package": r.package, "saved": r.saved or "absent", "current": r.current or "absent", "status": r.severity}
            for r in compatibility.rows
        ],
        columns=["package", "saved", "current", "status"],
    )


#: How a package's status reads in the environment table: a mark the eye finds without colour.
STATUS_MARKS = {"ok": "✓ ok", "warning": "⚠ warning", "error": "✗ error"}


def dataset_table(record: VersionRecord) -> pd.DataFrame:
    """Where the training data came from and how it was split, as ``field, value`` rows."""
    dataset = dataset_of(record)
    rows = [
        ("source", str(dataset.get("source"))),
        ("fingerprint (sha256)", str(dataset.get("fingerprint"))),
        ("rows", str(dataset.get("n_rows"))),
        ("features", str(dataset.get("n_features"))),
        ("target", str(dataset.get("target"))),
        ("classes", ", ".join(map(str, dataset.get("classes") or []))),
        ("split", split_words(record.get("split"))),
    ]
    return pd.DataFrame(rows, columns=["field", "value"])


def overview_tables(record: VersionRecord, compatibility: Compatibility) -> dict[str, pd.DataFrame]:
    """Every table of a version's Overview, built once: ``environment`` (status marked), ``params``,
    ``metrics``, ``claimed`` (empty when nothing is claimed) and ``dataset``."""
    environment = environment_table(compatibility)
    return {
        "environment": environment.assign(status=environment["status"].map(lambda s: STATUS_MARKS.get(s, s))),
        "params": params_table(record),
        "metrics": metrics_shown(scalar_metrics(record)),
        "claimed": metrics_shown(claimed_metrics(record)),
        "dataset": dataset_table(record),
    }


#: The most classes a confusion-matrix chart shows (a cell per pair, a row and a column per class).
CHART_CLASSES = 30


def confusion_frame(metrics: Mapping[str, Any]) -> pd.DataFrame | None:
    """The confusion matrix as a labelled table (rows: true class, columns: predicted class), for a
    chart: None when none was recorded or it has more than ``CHART_CLASSES`` classes."""
    cm = metrics.get("confusion_matrix")
    if not cm or len(cm["labels"]) > CHART_CLASSES:
        return None
    labels = [str(label) for label in cm["labels"]]
    return pd.DataFrame(cm["matrix"], index=pd.Index(labels, name="true"), columns=pd.Index(labels, name="predicted"))


def feature_row(values: dict[str, Any], record: VersionRecord) -> pd.DataFrame:
    """One raw input row in the recorded feature order, from a form's ``{feature: value}``."""
    names = recorded_features(record) or list(values)
    missing = [n for n in names if n not in values]
    if missing:
        raise DatasetError("Missing a value for: " + ", ".join(missing))
    return pd.DataFrame([{n: values[n] for n in names}])


def record_json(record: VersionRecord, drop: tuple[str, ...] = ()) -> str:
    """The metadata record as indented JSON (what the metadata download holds), minus ``drop`` keys.

    A public demo drops ``uri``, so server paths never leave the server.
    """
    kept = {k: v for k, v in record.items() if k not in drop}
    return json.dumps(kept, indent=2, default=to_jsonable, sort_keys=True)


def diagram_html(model: Any) -> str:
    """scikit-learn's HTML diagram of a model; one held by a worker is drawn there, under its time limit."""
    from core.safety import WorkerModel  # deferred with scikit-learn: only the diagram toggle needs them

    if isinstance(model, WorkerModel):
        return model.diagram()
    from sklearn.utils import estimator_html_repr  # deferred: see above

    return estimator_html_repr(model)
