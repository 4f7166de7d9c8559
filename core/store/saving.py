"""The save transaction: how a version's files and index row come into being, all or nothing.

The files are written first, hashed while written and fsynced, straight into a folder of the
version's own (``NAME/<random id>/``, see ``core.store.layout``). Then ONE write transaction
claims the name, takes the name's next number (never handed out before: a delete does not lower
it), checks the quota and inserts the row. If anything fails before the commit the save removes
its own folder; a crash before the commit leaves a folder without a row (``python -m core doctor``
reports it, ``--repair`` removes it once it is an hour old), never a row without its files, and
concurrent savers never share a number or a folder.

Where ``version.json`` and the marker are written differs by back end:

- **A local folder** writes both inside the transaction, before its commit (each a synced rename,
  the two side by side), so the marker is never behind the index: a local write costs a fraction
  of a millisecond per file, and the SQLite writer lock is held anyway.
- **An object store** does no object-store I/O while the transaction is open: on a shared index
  (PostgreSQL) that would make every saver of the store wait behind S3 latency. The model file and
  the evaluation set upload concurrently (one put each, no existence check: the folder is a new
  random id); after the commit ``version.json`` and the marker are put, concurrently, from what
  the transaction read. Four requests in all. This is safe because the index is the truth for
  numbers and the marker only guards a LOST index: a marker put by a slower saver may lag by the
  last versions, and ``index rebuild`` takes each name's ``max(high_water, highest version found
  in version.json files)``, so it never hands out a number that a surviving version holds. What a
  late marker can lose is a number whose version is deleted before the next save rewrites the
  marker, and only if the index is lost too: that number may be handed out again after a rebuild
  (no version holds it any more). A crash between the commit and the ``version.json`` put leaves a
  committed version without its metadata file, reported by ``doctor`` and rewritten from the index
  by ``doctor --repair``; the save was never acknowledged (it returns only after both puts). If
  the index is lost in that very window, ``index rebuild`` cannot recover the version (its record
  lived only in the index; its number may be handed out again) and lists the folder as skipped;
  ``doctor --repair`` removes it later. A failed put after the commit does not undo the save: the
  version is committed and loadable, so it is logged, never reported as "nothing was changed".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Future, wait
from datetime import UTC, datetime
from typing import IO, Any, Protocol, cast

import pandas as pd

from core import formats
from core.datasets import Dataset, to_jsonable
from core.describe import describe_model
from core.environment import capture_environment
from core.errors import InvalidParameterError, NotFoundError
from core.frames import TARGET_COLUMN, evaluation_frame, model_input, split_evaluation_frame, write_evaluation_set
from core.metrics import score_metrics
from core.record import VersionRecord, recorded_accuracy, ref_of, stored_bytes
from core.split import Split
from core.store.artifacts import ArtifactStore, io_threads
from core.store.engine import read_only
from core.store.index import MetadataIndex, Row, gone
from core.store.layout import Layout, folder_of, new_folder
from core.store.schema_tasks import index_columns
from core.store.verified import record_saved, saved_stamp
from core.store.visitors import Quota, check_room
from core.tasks import task_of_estimator
from core.text import human_bytes

log = logging.getLogger(__name__)

#: What a save does with bytes identical to a version of the same name: store them anyway, or not.
ON_DUPLICATE = ("keep", "refuse")


class _Refused(Exception):
    """Raised inside the save transaction to roll it back: the bytes are already version ``version``."""

    def __init__(self, version: int) -> None:
        super().__init__(version)
        self.version = version


class Trained(Protocol):
    """What ``Store.save_trained`` reads of ``core.training.TrainResult`` (the store imports no training)."""

    model: Any
    estimator_key: str
    scale: bool
    dataset: Dataset
    split: Split
    X_test: pd.DataFrame
    y_test: pd.Series
    metrics: dict[str, Any]
    warnings: list[str]
    task: str
    cv: dict[str, Any] | None


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, default=to_jsonable, allow_nan=True)


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
        metrics = score_metrics(model, model_input(model, X), y)
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
    task = (extra or {}).get("task") or task_of_estimator(model)
    fields = {
        **({"task": task} if task else {}),
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


#: What a save describes of its model: the record's descriptive fields and the evaluation rows (if any).
Describe = Callable[[], tuple[dict[str, Any], pd.DataFrame | None]]


def _write_files(
    artifacts: ArtifactStore,
    folder: str,
    model_path: str,
    write: Callable[[IO[bytes]], object],
    describe: Describe,
) -> tuple[int, str, dict[str, Any], dict[str, Any] | None]:
    """The model file; beside it, once its bytes are handed over (while it is fsynced or
    uploaded), the model's description and the evaluation set, written and fsynced too, and the
    name's folder synced. Done beside the pickling, they slowed the pickler by the GIL they took;
    done before or after it, they added to the save what the disk's wait can hide."""

    def beside() -> tuple[dict[str, Any], dict[str, Any] | None]:
        fields, eval_frame = describe()
        evaluation_set = None
        if eval_frame is not None:
            path = f"{folder}/evaluation.parquet"
            size, sha = artifacts.write_new(path, lambda handle: write_evaluation_set(eval_frame, handle))
            evaluation_set = {"sha256": sha, "size_bytes": size, "n_rows": len(eval_frame), "path": path}
        artifacts.sync_folder(folder.rsplit("/", 1)[0])  # the version folder's entry in the name's
        return fields, evaluation_set

    started: list[Future[tuple[dict[str, Any], dict[str, Any] | None]]] = []
    try:
        size, sha = artifacts.write_new(model_path, write, written=lambda: started.append(io_threads().submit(beside)))
    except BaseException:
        wait(started)  # never leaves a write running; the model's error is the one to report
        raise
    return size, sha, *started[0].result()  # started once the model's bytes were written, as they were


def _put_after_commit(artifacts: ArtifactStore, docs: dict[str, Any], ref: str) -> None:
    """Put an object store's version.json and marker at once; a failure is logged, the save stands."""
    try:
        artifacts.write_jsons(docs)
    except Exception as exc:  # noqa: BLE001  # committed and loadable: never "nothing was changed"
        log.warning(
            "%s is saved, but %s could not be written (%s); `python -m core doctor --repair` rewrites them",
            ref,
            " and ".join(artifacts.uri(path) for path in docs),
            exc,
        )


def add_version(
    index: MetadataIndex,
    layout: Layout,
    quota: Quota | None,
    name: str,
    write: Callable[[IO[bytes]], object],
    fmt: str,
    describe: Describe,
    *,
    tags: list[str],
    note: str,
    origin: str,
    owner: str | None,
    on_duplicate: str = "keep",
) -> VersionRecord:
    """Write the files into a folder of their own, then number and index them in one transaction.

    Everything that does not need the number is done before the name's row is locked (the
    files, the environment, the marker's inputs), so concurrent savers of one name queue for
    the number, the insert and the commit only.

    ``describe`` gives the record's descriptive fields (``origin`` among them overrides the
    argument) and the evaluation rows; it runs while the model file is made durable.

    The same transaction looks for a version of ``name`` with the same sha256 (under the name's
    lock, so two savers of one file cannot both miss it): ``on_duplicate="keep"`` stores a new
    version anyway and says so (``duplicate_of``); ``"refuse"`` stores nothing and returns that
    version's record with ``stored: False``.
    """
    if index.read_only:
        raise read_only(index.location)
    if on_duplicate not in ON_DUPLICATE:
        raise InvalidParameterError(f"Invalid value {on_duplicate!r} for on_duplicate: choose one of: keep, refuse")
    artifacts = layout.artifacts
    folder = new_folder(name)
    model_path = f"{folder}/model.{formats.EXTENSIONS[fmt]}"
    remote = not artifacts.is_local
    tag_list = list(dict.fromkeys(tags))
    posted: dict[str, Any] = {}
    try:
        size, sha, fields, evaluation_set = _write_files(artifacts, folder, model_path, write, describe)
        origin = fields.pop("origin", origin)
        environment = fields.get("environment") or capture_environment()
        described = {k: v for k, v in fields.items() if k != "environment"}
        with index.writing(durable=True) as conn:
            if remote:
                store_id, high_water = layout.marks(conn)  # before the name's lock
            created_at = _utc_now()
            index.claim_name(conn, name, owner, created_at)
            duplicate = index.same_bytes(conn, name, sha)
            if duplicate is not None and on_duplicate == "refuse":
                raise _Refused(duplicate)  # rolls the name's claim back: nothing changes
            version = index.claim_number(conn, name)
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
                "environment": environment,
            }
            record.update({k: v for k, v in described.items() if k not in record})
            record["evaluation_set"] = evaluation_set
            task_columns = index_columns(record)  # an import's task comes from its estimator class
            if task_columns["task"]:
                record.setdefault("task", task_columns["task"])
            record_json = _dumps(record)
            total = stored_bytes(record, record_json, note, tag_list)
            check_room(index, quota, conn, owner, 1, total)
            columns = {
                "name": name,
                "version": version,
                "created_at": created_at,
                "format": fmt,
                "path": model_path,
                "size_bytes": size,
                "sha256": sha,
                "estimator": record.get("estimator"),
                "accuracy": recorded_accuracy(record),
                "sklearn_version": environment["packages"].get("scikit-learn"),
                "origin": origin,
                "owner": owner,
                "note": note,
                **task_columns,
            }
            row_id = index.insert_version(conn, {**columns, "record": record_json, "stored_bytes": total}, tag_list)
            stamp = saved_stamp(artifacts, model_path, size)  # as late as can be: the clock moves on
            if stamp is not None:  # the first load need not hash the file this save just hashed
                record_saved(conn, row_id, sha, stamp)
            row = Row(row_id, **columns, record_json=record_json, tags=sorted(tag_list), aliases=[])
            row.stored_bytes = total  # the row as inserted: version.json is written from it, not re-read
            if remote:  # put after the commit (see the module docstring)
                posted = layout.to_publish(row, store_id, high_water)
            else:
                layout.publish(conn, row)
    except BaseException as exc:
        try:  # its own folder only: no other version ever uses it
            artifacts.delete_folder(folder)
            artifacts.remove_if_empty(name)
        except OSError:
            log.warning("could not remove %s after a failed save; `python -m core doctor --repair` will", folder)
        if not isinstance(exc, _Refused):
            raise
        existing = index.find(name, exc.version)
        if existing is None:  # deleted since the transaction ended: nothing to point at any more
            raise NotFoundError(f"{name!r} has no version {exc.version}") from exc
        log.info("not stored: identical to %s", existing.ref)
        same = existing.record() | {"duplicate_of": existing.ref, "stored": False}
        return artifacts.public(cast(VersionRecord, same))
    if posted:
        _put_after_commit(artifacts, posted, ref_of(record))
    done = "imported" if origin == "imported" else "saved"
    log.info("%s %s (%s, %s)", done, ref_of(record), fmt, human_bytes(size))
    full = record | {"note": note, "tags": tag_list, "aliases": []}
    if duplicate is not None:
        full["duplicate_of"] = f"{name}:{duplicate}"
    return artifacts.public(cast(VersionRecord, full))


def attach(
    index: MetadataIndex, artifacts: ArtifactStore, quota: Quota | None, row: Row, filename: str, data: bytes
) -> dict[str, Any]:
    """Put a file derived from a version in its folder (replacing an older one), counted against its owner."""
    if index.read_only:
        raise read_only(index.location)
    path = f"{folder_of(row.path)}/{filename}"
    try:  # into the version's folder, which must still be there: nothing is written for a version gone
        part, size, sha = artifacts.write_part(path, lambda handle: handle.write(data))
    except FileNotFoundError as exc:
        raise gone(row) from exc
    try:
        with index.writing() as conn:  # counted against the version's owner, or refused
            index.check_exists(conn, row)
            replaced = int(artifacts.fs.size(artifacts.full_path(path)) or 0) if artifacts.exists(path) else 0
            check_room(index, quota, conn, row.owner, 0, size - replaced)
            artifacts.replace(part, path)
            index.add_stored_bytes(conn, row.id, size - replaced)
    except BaseException:
        artifacts.discard(part)
        raise
    return {"path": path, "sha256": sha, "size_bytes": size}
