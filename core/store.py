"""The model store: save, list, get, load, re-score, predict, alias, tag and delete versions.

Two parts behind one small interface: a metadata index (SQLAlchemy) and an artifact store
(fsspec). A version is written as a temporary file (hashed while written), then, inside one
write transaction, given the next number, moved into place and indexed. So versions are never
lost or doubled under concurrent saves, and a crash never leaves an index row without its file.

    >>> store = Store("models")
    >>> record = store.save(model, name="pima", X_test=X_test, y_test=y_test)
    >>> loaded = store.load("pima:1")        # sha256 checked, environment compared
    >>> store.evaluate("pima@production")    # re-scored on the kept evaluation set
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy.exc import SQLAlchemyError

from core import formats
from core.artifacts import ArtifactStore, settled, stamp_of
from core.datasets import Dataset, load_dataset, to_jsonable
from core.environment import Compatibility, capture_environment, compare_environment, fold_version_warnings
from core.errors import ConflictError, DatasetError, IntegrityError, InvalidParameterError, NotFoundError
from core.index import MetadataIndex, Row, name_taken, stored_bytes
from core.metrics import classification_metrics
from core.text import human_bytes
from core.training import Split, TrainResult, class_path, final_estimator, jsonable_params

if TYPE_CHECKING:
    from core.safe_load import LoadLimits

DEFAULT_STORE = "models"
INDEX_FILE = "index.sqlite"
TARGET_COLUMN = "__target__"
# Matched with fullmatch: ``$`` alone would also accept a trailing newline (a folder "name\n").
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
VERIFY_MODES = ("cached", "full")
_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}")
#: Version numbers: ASCII digits (``str.isdigit`` also takes Arabic-Indic and superscript digits)
#: within a signed 64-bit range.
_VERSION = re.compile(r"[0-9]{1,19}")
MAX_VERSION = 2**63 - 1


def default_store_path() -> str:
    """``$MODEL_STORE`` if set, else ``./models``."""
    return os.environ.get("MODEL_STORE") or DEFAULT_STORE


def check_name(name: str) -> str:
    """A model name is a path segment: letters, digits, ``.``, ``_``, ``-``; no slashes, no ``..``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise InvalidParameterError(
            f"Invalid model name {name!r}: use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def suggest_name(text: str, suffix: str = "") -> str:
    """A valid model name made from a file name or data source (``my model.pkl`` -> ``my-model``)."""
    stem = str(text).rsplit("/", 1)[-1].removeprefix("builtin:")
    for ending in (".csv", ".pkl", ".pickle", ".joblib", ".skops", ".zip", ".json", ".sav"):
        stem = stem.removesuffix(ending)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).replace("..", ".").strip("-._") or "model"
    return check_name(f"{stem[: 99 - len(suffix)]}{'-' + suffix if suffix else ''}")


def check_label(value: str, what: str) -> str:
    """Tags and aliases: a letter first, then letters, digits, ``.``, ``_``, ``-`` (at most 64)."""
    if not isinstance(value, str) or not _LABEL.fullmatch(value):
        raise InvalidParameterError(
            f"Invalid {what} {value!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter"
        )
    return value


def check_note(note: str) -> str:
    """Notes are free text, stored as given (pages render them as plain text); only the size is bounded."""
    if not isinstance(note, str) or len(note) > 10_000:
        raise InvalidParameterError("A note must be text of at most 10,000 characters")
    return note


@dataclass(frozen=True)
class Ref:
    """``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


def parse_ref(ref: str | Ref) -> Ref:
    """Read a reference; a bare name means the latest version."""
    if isinstance(ref, Ref):
        return ref
    text = str(ref).strip(" ")  # spaces typed around a reference; never a newline
    if "@" in text:
        name, _, alias = text.partition("@")
        return Ref(check_name(name), alias=check_label(alias, "alias"))
    if ":" in text:
        name, _, version = text.rpartition(":")
        if not _VERSION.fullmatch(version) or not 1 <= int(version) <= MAX_VERSION:
            raise InvalidParameterError(
                f"Invalid reference {text!r}: the version must be a whole number from 1 to {MAX_VERSION} "
                "in ASCII digits"
            )
        return Ref(check_name(name), version=int(version))
    return Ref(check_name(text))


@dataclass(frozen=True)
class Quota:
    """Public-demo limits on what owned saves may add: per visitor, and for the whole store.

    Checked in the write transaction that would exceed them, which then stores nothing; nothing is
    ever evicted to make room. Saves without an owner (the operator) are not limited.
    """

    max_versions: int
    max_bytes: int
    visitor_max_versions: int
    visitor_max_bytes: int

    def __post_init__(self) -> None:
        for label, value in dataclasses.asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidParameterError(f"Invalid value {value!r} for {label}: expected an integer >= 0")


@dataclass
class LoadedModel:
    """A model read back from the store, with what the reload found out."""

    model: Any
    record: dict[str, Any]
    compatibility: Compatibility
    warnings: list[str] = field(default_factory=list)
    load_seconds: float = 0.0

    @property
    def ref(self) -> str:
        return f"{self.record['name']}:{self.record['version']}"


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


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def as_frame(X: Any, feature_names: Iterable[str] | None = None) -> pd.DataFrame:
    """Features as a DataFrame with string column names (``x0, x1, ...`` for bare arrays)."""
    if isinstance(X, pd.DataFrame):
        frame = X.copy()
        frame.columns = [str(c) for c in frame.columns]
        return frame.reset_index(drop=True)
    array = np.asarray(X)
    if array.ndim != 2:
        raise DatasetError(f"Features must be a 2-D table, got an array of shape {array.shape}")
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(array.shape[1])]
    return pd.DataFrame(array, columns=names)


def model_input(model: Any, X: pd.DataFrame) -> Any:
    """A frame for models fitted on named columns, the bare array for models fitted on arrays."""
    return X if hasattr(model, "feature_names_in_") else X.to_numpy()


def describe_model(model: Any) -> dict[str, Any]:
    """What the record says about an estimator: class path, parameters, classes, feature count."""
    final = final_estimator(model)
    classes = getattr(model, "classes_", getattr(final, "classes_", None))
    return {
        "estimator": class_path(model),
        "params": jsonable_params(model),
        "classes": [to_jsonable(c) for c in classes] if classes is not None else None,
        "n_features_in": to_jsonable(getattr(model, "n_features_in_", None)),
        "feature_names_in": [str(c) for c in getattr(model, "feature_names_in_", [])] or None,
    }


class Store:
    """A folder (or URLs) holding model versions and their metadata index."""

    def __init__(
        self,
        path: str | Path | None = None,
        index_url: str | None = None,
        artifacts_url: str | None = None,
        quota: Quota | None = None,
    ):
        location = str(path) if path is not None else default_store_path()
        self.quota = quota
        self.location = location
        self.artifacts = ArtifactStore(artifacts_url or location)
        if index_url is None:
            if not self.artifacts.is_local:
                raise InvalidParameterError("A remote artifact store needs an index_url (a SQLAlchemy URL)")
            index_url = f"sqlite:///{Path(self.artifacts.full_path(INDEX_FILE)).resolve()}"
        self.index = MetadataIndex(index_url)

    def __repr__(self) -> str:
        return f"Store({self.location!r})"

    def close(self) -> None:
        self.index.dispose()

    # -- saving -------------------------------------------------------------------------------

    def save(
        self,
        model: Any,
        name: str,
        *,
        X_test: Any = None,
        y_test: Any = None,
        format: str = "joblib",
        compress: int = 0,
        tags: Iterable[str] = (),
        note: str = "",
        metrics: dict[str, Any] | None = None,
        dataset: dict[str, Any] | None = None,
        split: dict[str, Any] | None = None,
        fit_warnings: Iterable[str] = (),
        extra: dict[str, Any] | None = None,
        owner: str | None = None,
    ) -> dict[str, Any]:
        """Save a fitted model as the next version of ``name``; returns its metadata record.

        Give ``X_test``/``y_test`` (the held-out rows) and the version keeps them, so it can be
        re-scored later without the original data; its metrics are computed from them when
        ``metrics`` is not given.
        """
        check_name(name)
        formats.check_format(format, compress)
        tag_list = [check_label(t, "tag") for t in tags]
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
        return self._add_version(
            name,
            lambda handle: formats.write_model(model, handle, format, compress),
            fields,
            eval_frame=eval_frame,
            tags=tag_list,
            note=note,
            origin=fields.pop("origin", "trained"),
            owner=owner,
        )

    def save_trained(
        self,
        result: TrainResult,
        name: str,
        *,
        format: str = "joblib",
        compress: int = 0,
        tags: Iterable[str] = (),
        note: str = "",
        owner: str | None = None,
    ) -> dict[str, Any]:
        """Save the output of ``core.training.train`` with everything it knows about itself."""
        return self.save(
            result.model,
            name,
            X_test=result.X_test,
            y_test=result.y_test,
            format=format,
            compress=compress,
            tags=tags,
            note=note,
            metrics=result.metrics,
            dataset=result.dataset.describe(),
            split=result.split.to_dict(),
            fit_warnings=result.warnings,
            extra={"estimator_key": result.estimator_key, "scale": result.scale},
            owner=owner,
        )

    def import_model(
        self,
        data: bytes,
        name: str,
        *,
        filename: str | None = None,
        dataset: Dataset | None = None,
        test_size: float = 0.33,
        seed: int | None = 7,
        stratify: bool = False,
        tags: Iterable[str] = (),
        note: str = "",
        owner: str | None = None,
        limits: LoadLimits | None = None,
    ) -> dict[str, Any]:
        """Add a model file from outside as the next version of ``name`` (see ``core.importing``).

        The bytes are loaded in a sandboxed worker process (``core.worker``, running
        ``core.safe_load.load_untrusted`` there; ``limits``: a LoadLimits), scored there on a
        held-out split of ``dataset`` when given, and kept as they are (origin "imported").
        This process never unpickles them. Nothing is stored if any step fails.
        """
        from core.imported_model import imported_fields, load_upload

        check_name(name)
        check_note(note)
        tag_list = [check_label(t, "tag") for t in tags]
        loaded = load_upload(data, limits)
        fields, eval_frame = imported_fields(
            loaded, filename=filename, dataset=dataset, test_size=test_size, seed=seed, stratify=stratify
        )
        return self.add_imported(name, data, fields, eval_frame=eval_frame, tags=tag_list, note=note, owner=owner)

    def add_imported(
        self,
        name: str,
        data: bytes,
        fields: dict[str, Any],
        *,
        eval_frame: pd.DataFrame | None,
        tags: list[str],
        note: str,
        owner: str | None,
    ) -> dict[str, Any]:
        """Keep model bytes from elsewhere exactly as they came (their sha256 stays the sender's).

        For callers that have already loaded the bytes through ``core.safe_load`` (file and
        bundle imports); ``fields`` are the record's descriptive parts.
        """
        return self._add_version(
            name,
            lambda handle: handle.write(bytes(data)),
            fields,
            eval_frame=eval_frame,
            tags=tags,
            note=note,
            origin="imported",
            owner=owner,
        )

    def _add_version(
        self,
        name: str,
        write: Callable[[IO[bytes]], None],
        fields: dict[str, Any],
        *,
        eval_frame: pd.DataFrame | None,
        tags: list[str],
        note: str,
        origin: str,
        owner: str | None,
    ) -> dict[str, Any]:
        """Write the files under temporary names, then number, move and index them in one transaction."""
        fmt = fields["format"]
        temps: list[str] = []
        committed: list[str] = []
        try:
            temp_model, size, sha = self.artifacts.write_temp(write)
            temps.append(temp_model)
            evaluation_set = None
            if eval_frame is not None:
                temp_eval, eval_size, eval_sha = self.artifacts.write_temp(
                    lambda handle: write_evaluation_set(eval_frame, handle)
                )
                temps.append(temp_eval)
                evaluation_set = {"sha256": eval_sha, "size_bytes": eval_size, "n_rows": len(eval_frame)}
            with self.index.writing() as conn:
                created_at = _utc_now()
                self.index.claim_name(conn, name, owner, created_at)  # before any file moves into place
                version = self.index.next_version(conn, name)
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
                self._check_room(conn, owner, 1, total)
                self.artifacts.commit(temp_model, model_path)
                committed.append(model_path)
                if evaluation_set is not None:
                    self.artifacts.commit(temps[1], evaluation_set["path"])
                    committed.append(evaluation_set["path"])
                self.index.insert_version(
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
                        "accuracy": (record.get("metrics") or {}).get("accuracy"),
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
                self.artifacts.discard(self.artifacts.full_path(path))
            for temp in temps:
                self.artifacts.discard(temp)
            raise
        return self._public(record | {"note": note, "tags": list(dict.fromkeys(tags)), "aliases": []})

    def _public(self, record: dict[str, Any]) -> dict[str, Any]:
        record["uri"] = self.artifacts.uri(record["path"])
        return record

    # -- reading ------------------------------------------------------------------------------

    def row(self, ref: str | Ref) -> Row:
        """The index row behind a reference, or a NotFoundError that says what is there."""
        parsed = parse_ref(ref)
        found = self.index.find(parsed.name, version=parsed.version, alias=parsed.alias)
        if found is None:
            if parsed.version is None and parsed.alias is None:
                raise NotFoundError(f"No model named {parsed.name!r} in the store")
            what = f"version {parsed.version}" if parsed.version is not None else f"alias @{parsed.alias}"
            raise NotFoundError(f"{parsed.name!r} has no {what}")
        return found

    def get(self, ref: str | Ref) -> dict[str, Any]:
        """The metadata record of one version (no model file is opened)."""
        return self._public(self.row(ref).record())

    def list(
        self,
        name: str | None = None,
        tag: str | None = None,
        sort: str = "created",
        limit: int | None = None,
        offset: int = 0,
        owner: str | None = None,
    ) -> list[dict[str, Any]]:
        """Metadata records, newest first (or by accuracy, or by name); never opens a model file."""
        return [self._public(r.record()) for r in self.index.rows(name, tag, sort, limit, offset, owner)]

    def count(self, name: str | None = None, tag: str | None = None, owner: str | None = None) -> int:
        return self.index.count(name, tag, owner)

    def table(
        self,
        name: str | None = None,
        tag: str | None = None,
        sort: str = "created",
        limit: int | None = 50,
        offset: int = 0,
        owner: str | None = None,
        descending: bool | None = None,
    ) -> pd.DataFrame:
        """One summary row per version (from index columns only): what a registry table shows."""
        rows = self.index.rows(name, tag, sort, limit, offset, owner, descending)
        return pd.DataFrame(
            [
                {
                    "ref": f"{r.name}:{r.version}",
                    "name": r.name,
                    "version": r.version,
                    "aliases": ", ".join("@" + a for a in r.aliases),
                    "estimator": (r.estimator or "").rsplit(".", 1)[-1],
                    "accuracy": r.accuracy,
                    "format": r.format,
                    "size_bytes": r.size_bytes,
                    "sklearn": r.sklearn_version,
                    "created": r.created_at,
                    "tags": ", ".join(r.tags),
                    "origin": r.origin,
                }
                for r in rows
            ],
            columns=[
                "ref",
                "name",
                "version",
                "aliases",
                "estimator",
                "accuracy",
                "format",
                "size_bytes",
                "sklearn",
                "created",
                "tags",
                "origin",
            ],
        )

    def summary(self) -> dict[str, Any]:
        """How many versions, names and bytes the store holds."""
        n, names, size = self.index.totals()
        return {"versions": n, "names": names, "size_bytes": size, "location": self.location}

    def names(self) -> list[str]:
        return self.index.names()

    @staticmethod
    def _missing(row: Row, path: str, what: str) -> IntegrityError:
        return IntegrityError(f"{row.name}:{row.version}: the {what} file {path} is missing from the store")

    @staticmethod
    def _check_digest(row: Row, actual: str, expected: str, what: str) -> None:
        if actual != expected:
            raise IntegrityError(
                f"{row.name}:{row.version} failed its integrity check: the {what} file's sha256 is "
                f"{actual[:16]}..., the index recorded {expected[:16]}...; it was changed or damaged "
                "after saving, so nothing was loaded"
            )

    def _verified_bytes(self, row: Row, path: str, expected: str, what: str) -> bytes:
        try:
            data = self.artifacts.read_bytes(path)
        except FileNotFoundError:
            raise self._missing(row, path, what) from None
        self._check_digest(row, formats.sha256_bytes(data), expected, what)
        return data

    def read_artifact(self, ref: str | Ref) -> bytes:
        """The model file's bytes, checked against the recorded sha256 (for downloads)."""
        row = self.row(ref)
        return self._verified_bytes(row, row.path, row.sha256, "model")

    def load(self, ref: str | Ref, mmap: bool = False, verify: str = "cached", trust: bool = False) -> LoadedModel:
        """Read a version back: integrity first (nothing is unpickled on a mismatch), then the model.

        An imported version (origin "imported": a stranger's bytes) is never unpickled in this
        process: it is loaded in a sandboxed worker (``core.worker``) and ``.model`` is a
        ``WorkerModel`` proxy with the calls of a fitted classifier (``predict``,
        ``predict_proba``, ``decision_function``, ``classes_``, ``get_params``,
        ``n_features_in_``, ``feature_names_in_``), run in the warm worker. ``trust=True``
        returns the real object, loaded HERE by the restricted loader, for callers that need it
        (exports to other formats): a crafted file can then crash or stall this process, so it
        is refused in demo mode.

        ``mmap=True`` memory-maps the arrays of an uncompressed joblib file on a local store.
        ``verify="full"`` hashes the whole file every time; the default ``"cached"`` skips the hash
        when the file's stat (size, mtime, ctime, inode) is unchanged since it last hashed to the
        recorded sha256 (see docs/benchmarks.md): hashing a 300 MB file costs more than mapping it.
        """
        if verify not in VERIFY_MODES:
            choices = ", ".join(VERIFY_MODES)
            raise InvalidParameterError(f"Invalid value {verify!r} for verify: choose one of: {choices}")
        row = self.row(ref)
        record = self._public(row.record())
        started = time.perf_counter()
        local = self.artifacts.local_path(row.path)
        use_mmap = mmap and row.format == "joblib" and not record.get("compression") and local is not None
        try:
            stat = self.artifacts.local_stat(row.path)
        except FileNotFoundError:
            raise self._missing(row, row.path, "model") from None
        source: bytes | str
        if verify == "cached" and stat is not None and self.index.verified_stamp(row) == stamp_of(stat):
            source = local  # type: ignore[assignment]  # unchanged since it hashed to row.sha256
        else:
            if use_mmap:  # stream the hash; the arrays are mapped afterwards, never read into memory
                try:
                    self._check_digest(row, self.artifacts.sha256(row.path), row.sha256, "model")
                except FileNotFoundError:
                    raise self._missing(row, row.path, "model") from None
                source = local  # type: ignore[assignment]
            else:
                source = self._verified_bytes(row, row.path, row.sha256, "model")
            self._remember_verified(row, stat)
        if row.origin == "imported":  # a stranger's bytes: the worker (or the restricted loader), every time
            from core.safe_load import LoadLimits, load_untrusted
            from core.settings import load_settings
            from core.worker import load_in_worker

            data = source if isinstance(source, bytes) else self.artifacts.read_bytes(row.path)
            settings = load_settings()
            # The upload size limit applied when it came in; lowering it later must not lock it out.
            limits = dataclasses.replace(LoadLimits.from_settings(settings), max_bytes=max(len(data), 1))
            if trust:
                if settings.demo:
                    raise InvalidParameterError(
                        f"{row.name}:{row.version} was imported; in demo mode it is only used through its worker"
                    )
                untrusted = load_untrusted(data, limits=limits)
                model, folded = untrusted.model, untrusted.warnings
            else:
                model = load_in_worker(
                    data, limits, fetch=lambda: self._verified_bytes(row, row.path, row.sha256, "model")
                )
                folded = list(model.facts.get("warnings") or [])
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model = formats.load_trusted(source, row.format, mmap=use_mmap)
            folded = fold_version_warnings(caught)
        return LoadedModel(
            model=model,
            record=record,
            compatibility=compare_environment(record.get("environment")),
            warnings=folded,
            load_seconds=time.perf_counter() - started,
        )

    def _remember_verified(self, row: Row, before: os.stat_result | None) -> None:
        """Record the stat of a file that just hashed right, if it was not changed meanwhile or lately."""
        if before is None or not settled(before):
            return
        try:
            after = self.artifacts.local_stat(row.path)
        except FileNotFoundError:
            return
        if after is not None and stamp_of(after) == stamp_of(before):
            with contextlib.suppress(SQLAlchemyError):  # a read-only store still loads, only slower
                self.index.record_verified(row, stamp_of(before))

    def evaluation_set(self, ref: str | Ref) -> tuple[pd.DataFrame, pd.Series]:
        """The held-out rows kept with a version, integrity-checked."""
        row = self.row(ref)
        kept = row.record().get("evaluation_set")
        if not kept:
            raise NotFoundError(
                f"{row.name}:{row.version} was saved without an evaluation set; give data to score it on"
            )
        data = self._verified_bytes(row, kept["path"], kept["sha256"], "evaluation set")
        return split_evaluation_frame(pd.read_parquet(io.BytesIO(data)))

    def evaluate(
        self,
        ref: str | Ref,
        data: str | Path | bytes | None = None,
        names: Any = None,
        target: str | None = None,
        loaded: LoadedModel | None = None,
    ) -> Evaluation:
        """Score a version again: on its kept evaluation set, or on ``data`` split the recorded way."""
        loaded = loaded or self.load(ref)
        record = loaded.record
        fingerprint_match = None
        if data is None:
            X, y = self.evaluation_set(f"{record['name']}:{record['version']}")
            source = "kept evaluation set"
        else:
            recorded_target = (record.get("dataset") or {}).get("target")
            dataset = load_dataset(data, names=names, target=target or recorded_target)
            X, y = _held_out(dataset, record.get("split"))
            source = dataset.source
            recorded_fp = (record.get("dataset") or {}).get("fingerprint")
            fingerprint_match = None if not recorded_fp else recorded_fp == dataset.fingerprint
        X = align_features(X, record)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from core.worker import WorkerModel

            features = model_input(loaded.model, X)
            try:
                if isinstance(loaded.model, WorkerModel):  # scored by the worker that holds it
                    metrics = loaded.model.score_metrics(features, y)
                else:
                    metrics = classification_metrics(loaded.model, features, y)
            except (ValueError, TypeError, KeyError) as exc:
                raise DatasetError(f"Could not score {loaded.ref} on {source}: {exc}") from None
        recorded = (record.get("metrics") or {}).get("accuracy")
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

    def predict(self, ref: str | Ref, data: pd.DataFrame, loaded: LoadedModel | None = None) -> pd.DataFrame:
        """Predictions (and class probabilities where the model has them) for raw rows."""
        loaded = loaded or self.load(ref)
        return predict_table(loaded.model, data, loaded.record)

    # -- changing -----------------------------------------------------------------------------

    def attach_file(self, ref: str | Ref, filename: str, data: bytes) -> dict[str, Any]:
        """Write a file derived from a version (an ONNX or JSON export) into its folder, atomically.

        Returns ``{path, sha256, size_bytes}``; the file goes when the version is deleted.
        """
        kept = {f"model.{ext}" for ext in formats.EXTENSIONS.values()} | {"evaluation.parquet"}
        if "/" in filename or "\\" in filename or filename.startswith(".") or filename in kept:
            raise InvalidParameterError(f"Invalid file name {filename!r} for a version's folder")
        row = self.row(ref)
        path = f"{row.path.rsplit('/', 1)[0]}/{filename}"
        temp, size, sha = self.artifacts.write_temp(lambda handle: handle.write(data))
        try:
            with self.index.writing() as conn:  # counted against the version's owner, or refused
                replaced = self.artifacts.fs.size(self.artifacts.full_path(path)) if self.artifacts.exists(path) else 0
                self._check_room(conn, row.owner, 0, size - int(replaced or 0))
                self.artifacts.commit(temp, path)
                self.index.add_stored_bytes(conn, row.id, size - int(replaced or 0))
        except BaseException:
            self.artifacts.discard(temp)
            raise
        return {"path": path, "sha256": sha, "size_bytes": size}

    def read_attached(self, ref: str | Ref, path: str, sha256: str, what: str) -> bytes:
        """The bytes of a file attached to a version, checked against the sha256 recorded for it."""
        return self._verified_bytes(self.row(ref), path, sha256, what)

    def merge_exports(self, ref: str | Ref, exports: dict[str, Any]) -> dict[str, Any]:
        """Record export results in the version's ``exports`` section (merged, one transaction)."""
        return self.index.merge_record_section(self.row(ref), "exports", exports)

    def _check_room(self, conn: Any, owner: str | None, versions: int, size: int) -> None:
        """Refuse (ConflictError) what would take an owner or the store past the quota; never evict."""
        quota = self.quota
        if quota is None or owner is None or (versions <= 0 and size <= 0):
            return
        n, used = self.index.usage(conn, owner)
        if n + versions > quota.visitor_max_versions or used + size > quota.visitor_max_bytes:
            raise ConflictError(
                f"Your demo quota is full: you keep {n} of {quota.visitor_max_versions} versions and "
                f"{human_bytes(used)} of {human_bytes(quota.visitor_max_bytes)}, and this needs "
                f"{human_bytes(size)} more; delete one of your versions to make room"
            )
        n, used = self.index.usage(conn)
        if n + versions > quota.max_versions or used + size > quota.max_bytes:
            raise ConflictError(
                f"The demo store is full ({n} of {quota.max_versions} versions, {human_bytes(used)} of "
                f"{human_bytes(quota.max_bytes)}); nothing was saved"
            )

    def _room_to_grow(self, row: Row, size: int) -> None:
        if self.quota is not None and row.owner is not None and size > 0:
            with self.index.reading() as conn:
                self._check_room(conn, row.owner, 0, size)

    def usage(self, owner: str | None = None) -> dict[str, int]:
        """``{"versions", "stored_bytes"}`` of one owner (None: the whole store), every byte counted."""
        with self.index.reading() as conn:
            n, size = self.index.usage(conn, owner)
        return {"versions": n, "stored_bytes": size}

    def _refusal(self, row: Row, owner: str | None) -> ConflictError | None:
        """Why ``owner`` may not change ``row`` (None: it may). No owner (the operator): anything."""
        if owner is None:
            return None
        claimed, holder = self.index.name_owner(row.name)
        if claimed and holder != owner:
            return name_taken(row.name)
        if row.owner != owner:
            return ConflictError(
                f"{row.name}:{row.version} was not made in this session; here you may change only your own versions"
            )
        return None

    def may_change(self, ref: str | Ref, owner: str | None) -> bool:
        """Whether ``owner`` may alias, tag, annotate or delete this version (what pages offer)."""
        return self._refusal(self.row(ref), owner) is None

    def _owned_row(self, ref: str | Ref, owner: str | None) -> Row:
        """The row behind ``ref``; with ``owner`` given, only if that owner holds its name and made it."""
        row = self.row(ref)
        refusal = self._refusal(row, owner)
        if refusal is not None:
            raise refusal
        return row

    def set_alias(self, ref: str | Ref, alias: str, owner: str | None = None) -> dict[str, Any]:
        """Point ``NAME@ALIAS`` at this version (moving it if it pointed elsewhere)."""
        check_label(alias, "alias")
        row = self._owned_row(ref, owner)
        if owner is not None:
            current = self.index.find(row.name, alias=alias)
            if current is not None and current.owner != owner:
                raise ConflictError(f"{row.name}@{alias} points at a version that was not made in this session")
        self.index.set_alias(row, alias)
        return self.get(f"{row.name}:{row.version}")

    def remove_alias(self, name: str, alias: str, owner: str | None = None) -> bool:
        check_name(name)
        check_label(alias, "alias")
        if owner is not None:
            claimed, holder = self.index.name_owner(name)
            if claimed and holder != owner:
                raise name_taken(name)
            current = self.index.find(name, alias=alias)
            if current is None:
                return False
            self._owned_row(f"{current.name}:{current.version}", owner)
        return self.index.remove_alias(name, alias)

    def update_tags(
        self, ref: str | Ref, add: Iterable[str] = (), remove: Iterable[str] = (), owner: str | None = None
    ) -> dict[str, Any]:
        """Add and remove tags at once: every tag is checked first, so bad input changes nothing."""
        add_list = [check_label(t, "tag") for t in add]
        remove_list = [check_label(t, "tag") for t in remove]
        row = self._owned_row(ref, owner)
        self._room_to_grow(row, sum(len(t.encode()) for t in dict.fromkeys(add_list) if t not in row.tags))
        self.index.update_tags(row, add_list, remove_list)
        return self.get(f"{row.name}:{row.version}")

    def add_tag(self, ref: str | Ref, tag: str, owner: str | None = None) -> dict[str, Any]:
        return self.update_tags(ref, add=[tag], owner=owner)

    def remove_tag(self, ref: str | Ref, tag: str, owner: str | None = None) -> bool:
        """Remove one tag; False when the version did not have it."""
        check_label(tag, "tag")
        return bool(self.index.update_tags(self._owned_row(ref, owner), remove=[tag]))

    def versions(self, name: str) -> list[int]:
        """The version numbers of one name that exist now, newest first (from the index only)."""
        return self.index.versions(check_name(name))

    def set_note(self, ref: str | Ref, note: str, owner: str | None = None) -> dict[str, Any]:
        check_note(note)
        row = self._owned_row(ref, owner)
        self._room_to_grow(row, len(note.encode()) - len(row.note.encode()))
        self.index.set_note(row, note)
        return self.get(f"{row.name}:{row.version}")

    def delete(self, ref: str | Ref, force: bool = False, owner: str | None = None) -> int:
        """Remove a version's row, then its files; returns the bytes freed.

        An aliased version needs ``force`` (which drops its aliases too).
        """
        row = self._owned_row(ref, owner)
        self.index.delete_version(row, force)
        return self.artifacts.delete_folder(row.path.rsplit("/", 1)[0])


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, default=to_jsonable, allow_nan=True)


def write_evaluation_set(frame: pd.DataFrame, handle: IO[bytes]) -> None:
    """Parquet, built in memory and written in one piece (pyarrow would write a Python file in
    many small pieces). Dictionary encoding only for text columns: numbers seldom repeat, and
    trying costs most of the write; one conversion thread, which is faster for a few columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = [str(c) for c, dtype in frame.dtypes.items() if not pd.api.types.is_numeric_dtype(dtype)]
    table = pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, use_dictionary=text or False)
    handle.write(sink.getvalue())


def evaluation_frame(model: Any, X_test: Any, y_test: Any) -> pd.DataFrame | None:
    """The held-out rows as one table (features + ``__target__``), as a version keeps them."""
    if X_test is None and y_test is None:
        return None
    if X_test is None or y_test is None:
        raise InvalidParameterError("Give both X_test and y_test, or neither")
    names = getattr(model, "feature_names_in_", None)
    frame = as_frame(X_test, names if names is not None and not isinstance(X_test, pd.DataFrame) else None)
    target = np.asarray(y_test)
    if len(target) != len(frame):
        raise InvalidParameterError(f"X_test has {len(frame)} rows but y_test has {len(target)}")
    if TARGET_COLUMN in frame.columns:
        raise InvalidParameterError(f"A feature may not be called {TARGET_COLUMN!r}")
    frame[TARGET_COLUMN] = target
    return frame


def split_evaluation_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    y = frame[TARGET_COLUMN].rename("target")
    return frame.drop(columns=[TARGET_COLUMN]), y


def _held_out(dataset: Dataset, split: dict[str, Any] | None) -> tuple[pd.DataFrame, pd.Series]:
    """The held-out part of ``dataset`` cut the way the version's training cut it (all rows if unknown)."""
    if not split:
        return dataset.X, dataset.y
    cut = Split(float(split["test_size"]), split.get("random_state"), bool(split.get("stratify")))
    _, X_test, _, y_test = cut.apply(dataset)
    return X_test, y_test


def select_columns(X: pd.DataFrame, wanted: list[str]) -> pd.DataFrame:
    """``wanted`` columns of ``X``, in that order; one clear error naming any that are missing."""
    missing = [c for c in wanted if c not in X.columns]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise DatasetError(f"The data lacks {len(missing)} feature column(s) the model needs: {shown}")
    return X if list(X.columns) == wanted else X[wanted]


def align_features(X: pd.DataFrame, record: dict[str, Any]) -> pd.DataFrame:
    """The recorded feature columns, in order (the data as it is when none were recorded)."""
    wanted = (record.get("dataset") or {}).get("feature_names")
    return select_columns(as_frame(X), list(wanted)) if wanted else X


def predict_table(model: Any, data: pd.DataFrame, record: dict[str, Any]) -> pd.DataFrame:
    """The input rows with ``prediction`` and ``proba_<class>`` columns appended."""
    X = align_features(as_frame(data), record)
    if X.empty:
        raise DatasetError("There are no rows to predict")
    features = model_input(model, X)
    try:
        predicted = model.predict(features)
    except (ValueError, TypeError) as exc:
        raise DatasetError(f"Could not predict on these rows: {exc}") from None
    out = as_frame(data).copy()
    out["prediction"] = predicted
    if hasattr(model, "predict_proba"):
        try:
            proba = model.predict_proba(features)
        except (AttributeError, ValueError):
            proba = None
        if proba is not None:
            for i, label in enumerate(getattr(model, "classes_", range(proba.shape[1]))):
                out[f"proba_{label}"] = proba[:, i]
    return out
