"""The version record: what the store keeps about one model version, as a typed, JSON-able dict.

Records stay plain dicts (``record["metrics"]["accuracy"]`` works; ``show --json`` prints them as
they are), typed here so the schema lives in code and not only in the README (whose "What a
version records" section a test checks against ``VersionRecord``). Sections that old records, or
imported versions, may lack are read through the helpers below rather than ``.get(...) or {}``.

A leaf: no numpy, pandas or store import, so index-only commands stay fast to start.
"""

# No ``from __future__ import annotations``: TypedDict reads NotRequired from evaluated annotations.

from collections.abc import Mapping, Sequence
from typing import Any, NotRequired, TypedDict


class ConfusionMatrix(TypedDict):
    labels: list[Any]
    matrix: list[list[int]]


class MetricsRecord(TypedDict, total=False):
    """Held-out metrics (``core.metrics``); empty when a version was never scored."""

    accuracy: float
    balanced_accuracy: float
    precision: float
    recall: float
    f1: float
    average: str
    roc_auc: float | None
    confusion_matrix: ConfusionMatrix | None  # None past core.metrics.MAX_CONFUSION_CLASSES
    n_samples: int
    fit_seconds: float
    primary: str  # the name of the leading score: accuracy (classifiers), r2 (regressors)
    r2: float
    mae: float
    rmse: float
    mape: float | None  # None when a target is 0
    max_error: float


class SplitRecord(TypedDict, total=False):
    """How the data was cut (``core.split.Split.to_dict``): enough to cut it again."""

    test_size: float
    random_state: int | None
    stratify: bool
    n_train: int
    n_test: int


class CVRecord(TypedDict):
    """k-fold cross-validation on the training part (``core.crossval``): the primary score per fold."""

    k: int
    metric: str  # accuracy (classifiers, stratified folds) or r2 (regressors)
    mean: float
    std: float
    scores: list[float]


class DatasetRecord(TypedDict, total=False):
    """The data a version was trained or scored on (``core.datasets.Dataset.describe``)."""

    source: str
    fingerprint: str | None
    n_rows: int | None
    n_features: int
    feature_names: list[str]
    feature_types: dict[str, str]
    target: str
    classes: list[Any] | None


class EnvironmentRecord(TypedDict, total=False):
    """Where the model was saved (``core.environment.capture_environment``); imports know only packages."""

    python_version: str
    implementation: str
    platform: str
    machine: str
    packages: dict[str, str]


class EvaluationSetRecord(TypedDict):
    """The held-out rows kept with a version, as Parquet, with their own sha256."""

    sha256: str
    size_bytes: int
    n_rows: int
    path: str


# The functional form: one key, ``from``, is a Python keyword.
ImportedRecord = TypedDict(
    "ImportedRecord",
    {
        "filename": str | None,  # every import: the file's name as given
        "sklearn_version": str | None,  # a model file or bundle: the version the file says it was made with
        "classes": list[Any] | None,
        "n_features_in": int | None,
        "bundle": dict[str, Any],  # a bundle: its manifest's facts
        "from": str,  # JSON parameters: "json"
        "sha256": str,  # JSON parameters: the document's own hash (the stored file is rebuilt from it)
        "size_bytes": int,
        "schema_version": int,
        "estimator": str,
    },
    total=False,
)
ImportedRecord.__doc__ = (
    "Where an imported version came from: a model file, a bundle (``bundle``) or JSON parameters (``from``)."
)


class ExportRecord(TypedDict, total=False):
    """One derived export (``onnx``, ``json``): made once, recorded, or refused with its reason."""

    status: str
    reason: str
    exported_at: str
    model_sha256: str
    path: str
    sha256: str
    size_bytes: int


class VersionRecord(TypedDict):
    """One version's metadata record, as ``Store.get`` / ``Store.list`` / ``show --json`` give it."""

    name: str
    version: int
    created_at: str
    origin: str
    format: str
    compression: int | str | None  # joblib's level for a trained version; an imported file's codec name
    path: str
    uri: str
    size_bytes: int
    sha256: str
    estimator: str | None
    params: dict[str, Any]
    metrics: MetricsRecord
    split: SplitRecord | None
    dataset: DatasetRecord | None
    environment: EnvironmentRecord
    warnings: list[str]
    evaluation_set: EvaluationSetRecord | None
    note: str
    tags: list[str]
    aliases: list[str]
    estimator_key: NotRequired[str | None]
    task: NotRequired[str]  # classification, regression, clustering or transformer (core.tasks)
    scale: NotRequired[bool | None]
    protocol: NotRequired[int | None]
    claimed_metrics: NotRequired[MetricsRecord]
    cv: NotRequired[CVRecord]  # only when trained with cross-validation (``train --cv K``)
    imported: NotRequired[ImportedRecord]
    exports: NotRequired[dict[str, ExportRecord]]
    duplicate_of: NotRequired[str]  # a save's answer only: an earlier version of the name with the same bytes
    stored: NotRequired[bool]  # a save's answer only: False when a duplicate was refused (the record is that one)


#: Every top-level key a record may have (what the README's section documents).
RECORD_KEYS = frozenset(VersionRecord.__required_keys__ | VersionRecord.__optional_keys__)


def ref_of(record: Mapping[str, Any]) -> str:
    """``NAME:VERSION`` of a record (or of anything with a name and a version, such as a manifest)."""
    return f"{record['name']}:{record['version']}"


def dataset_of(record: Mapping[str, Any]) -> DatasetRecord:
    """The record's ``dataset`` section, empty when none was recorded."""
    return record.get("dataset") or DatasetRecord()


def metrics_of(record: Mapping[str, Any], section: str = "metrics") -> MetricsRecord:
    """The record's metrics (``section="claimed_metrics"``: what a bundle claimed), empty when none."""
    return record.get(section) or MetricsRecord()


def environment_of(record: Mapping[str, Any]) -> EnvironmentRecord:
    """The record's ``environment`` section, empty when none was recorded."""
    return record.get("environment") or EnvironmentRecord()


def export_of(record: Mapping[str, Any], key: str) -> ExportRecord:
    """One recorded export (``"onnx"``, ``"json"``), empty when it was never made."""
    return (record.get("exports") or {}).get(key) or ExportRecord()


def recorded_features(record: Mapping[str, Any]) -> list[str] | None:
    """The recorded feature columns, in order (None when none were recorded)."""
    return dataset_of(record).get("feature_names")


def recorded_accuracy(record: Mapping[str, Any], section: str = "metrics") -> float | None:
    """The accuracy a version recorded (or, ``section="claimed_metrics"``, a bundle claimed)."""
    return metrics_of(record, section).get("accuracy")


def recorded_score(record: Mapping[str, Any], section: str = "metrics") -> tuple[str | None, float | None]:
    """``(name, value)`` of a version's primary score (``metrics.primary``); records made before it lead
    with their accuracy (or R²). ``(None, None)``: never scored (a clustering model, an import without data)."""
    metrics: Mapping[str, Any] = metrics_of(record, section)
    name = metrics.get("primary") or next((k for k in ("accuracy", "r2") if metrics.get(k) is not None), None)
    value = metrics.get(name) if name else None
    return name, (float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None)


def score_text(record: Mapping[str, Any]) -> str:
    """A version's primary score as one cell, ``r2 0.4526`` or ``accuracy 0.7559``; ``-`` when unscored."""
    name, value = recorded_score(record)
    return "-" if name is None or value is None else f"{name} {value:.4f}"


def cv_text(cv: Mapping[str, Any] | None) -> str:
    """A cross-validation as one cell, ``5-fold accuracy 0.7612 ± 0.0290``; ``-`` when none was run."""
    if not cv:
        return "-"
    return f"{cv['k']}-fold {cv['metric']} {cv['mean']:.4f} ± {cv['std']:.4f}"


def stored_bytes(record: Mapping[str, Any], record_json: str, note: str, tag_list: Sequence[str]) -> int:
    """Every byte a version keeps: its files (model, evaluation set, exports) and its index row's text."""
    total = int(record.get("size_bytes") or 0) + int((record.get("evaluation_set") or {}).get("size_bytes") or 0)
    for export in (record.get("exports") or {}).values():
        if isinstance(export, dict) and export.get("path"):
            total += int(export.get("size_bytes") or 0)
    return total + len(record_json.encode()) + len(note.encode()) + sum(len(t.encode()) for t in tag_list)
