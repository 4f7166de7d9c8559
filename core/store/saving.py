"""The save transaction: how a version's files and index row come into being, all or nothing.

The files are written under temporary names (hashed while written); then, inside one write
transaction, the name is claimed, the next number taken, the quota checked, the files moved into
place and the row inserted. A crash leaves at worst an orphaned temporary file, never an index row
without its file, and concurrent savers never share a number.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import IO, Any, cast

import pandas as pd

from core import formats
from core.datasets import to_jsonable
from core.describe import describe_model
from core.environment import capture_environment
from core.frames import TARGET_COLUMN, evaluation_frame, model_input, split_evaluation_frame, write_evaluation_set
from core.metrics import classification_metrics
from core.record import VersionRecord, recorded_accuracy, ref_of, stored_bytes
from core.store.artifacts import ArtifactStore
from core.store.index import MetadataIndex
from core.store.visitors import Quota, check_room
from core.text import human_bytes

log = logging.getLogger(__name__)


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, default=to_jsonable, allow_nan=True)


def public(artifacts: ArtifactStore, record: VersionRecord) -> VersionRecord:
    """A record as callers get it: with the ``uri`` of its model file."""
    record["uri"] = artifacts.uri(record["path"])
    return record


def model_fields(
    model: Any,
    X_test: Any,
    y_test: Any,
    *,
    format: str,
    compress: int,
    metrics: dict[str, Any] | None,
    dataset: dict[str, Any] | None,
    split: dict[str, Any] | None,
    fit_warnings: Iterable[str],
    extra: dict[str, Any] | None,
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """The descriptive parts of a fitted model's record, and its evaluation rows (if given)."""
    eval_frame = evaluation_frame(model, X_test, y_test)
    if metrics is None and eval_frame is not None:
        X, y = split_evaluation_frame(eval_frame)
        metrics = classification_metrics(model, model_input(model, X), y)
    described = describe_model(model)
    if dataset is None and eval_frame is not None:
        features = [c for c in eval_frame.columns if c != TARGET_COLUMN]
        dataset = {
            "source": "python",
            "fingerprint": None,
            "n_rows": None,
            "n_features": len(features),
            "feature_names": features,
            "target": str(getattr(y_test, "name", None) or "target"),
            "classes": described["classes"],
        }
    fields = {
        "format": format,
        "compression": compress if format == "joblib" else None,
        **{k: described[k] for k in ("estimator", "params")},
        "metrics": metrics or {},
        "split": split,
        "dataset": dataset,
        "warnings": list(fit_warnings),
        **(extra or {}),
    }
    return fields, eval_frame


def add_version(
    index: MetadataIndex,
    artifacts: ArtifactStore,
    quota: Quota | None,
    name: str,
    write: Callable[[IO[bytes]], object],
    fields: dict[str, Any],
    *,
    eval_frame: pd.DataFrame | None,
    tags: list[str],
    note: str,
    origin: str,
    owner: str | None,
) -> VersionRecord:
    """Write the files under temporary names, then number, move and index them in one transaction."""
    fmt = fields["format"]
    temps: list[str] = []
    committed: list[str] = []
    try:
        temp_model, size, sha = artifacts.write_temp(write)
        temps.append(temp_model)
        evaluation_set: dict[str, Any] | None = None
        if eval_frame is not None:
            temp_eval, eval_size, eval_sha = artifacts.write_temp(
                lambda handle: write_evaluation_set(eval_frame, handle)
            )
            temps.append(temp_eval)
            evaluation_set = {"sha256": eval_sha, "size_bytes": eval_size, "n_rows": len(eval_frame)}
        with index.writing() as conn:
            created_at = _utc_now()
            index.claim_name(conn, name, owner, created_at)  # before any file moves into place
            version = index.next_version(conn, name)
            folder = f"{name}/v{version}"
            model_path = f"{folder}/model.{formats.EXTENSIONS[fmt]}"
            record: dict[str, Any] = {
                "name": name,
                "version": version,
                "created_at": created_at,
                "format": fmt,
                "compression": fields.get("compression"),
                "path": model_path,
                "size_bytes": size,
                "sha256": sha,
                "origin": origin,
                "environment": fields.get("environment") or capture_environment(),
            }
            record.update({k: v for k, v in fields.items() if k not in record})
            if evaluation_set is not None:
                evaluation_set["path"] = f"{folder}/evaluation.parquet"
            record["evaluation_set"] = evaluation_set
            record_json = _dumps(record)
            total = stored_bytes(record, record_json, note, list(dict.fromkeys(tags)))
            check_room(index, quota, conn, owner, 1, total)
            artifacts.commit(temp_model, model_path)
            committed.append(model_path)
            if evaluation_set is not None:
                artifacts.commit(temps[1], evaluation_set["path"])
                committed.append(evaluation_set["path"])
            index.insert_version(
                conn,
                {
                    "name": name,
                    "version": version,
                    "created_at": record["created_at"],
                    "format": fmt,
                    "path": model_path,
                    "size_bytes": size,
                    "sha256": sha,
                    "estimator": record.get("estimator"),
                    "accuracy": recorded_accuracy(record),
                    "sklearn_version": record["environment"]["packages"].get("scikit-learn"),
                    "origin": origin,
                    "owner": owner,
                    "note": note,
                    "record": record_json,
                    "stored_bytes": total,
                },
                tags,
            )
    except BaseException:
        for path in committed:
            artifacts.discard(artifacts.full_path(path))
        for temp in temps:
            artifacts.discard(temp)
        raise
    done = "imported" if origin == "imported" else "saved"
    log.info("%s %s (%s, %s)", done, ref_of(record), fmt, human_bytes(size))
    full = record | {"note": note, "tags": list(dict.fromkeys(tags)), "aliases": []}
    return public(artifacts, cast(VersionRecord, full))
