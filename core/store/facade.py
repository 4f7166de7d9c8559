"""The ``Store`` facade: one small interface over the index, the artifacts and the steps between.

It checks inputs and delegates: the save transaction is ``core.store.saving``, hash-verified reads
and the verified-stamp cache ``core.store.verified``, loading ``core.store.loading``, re-scoring
``core.store.scoring``, owners and the demo quota ``core.store.visitors``. Records: ``core.record``.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import formats
from core.errors import ConflictError, InvalidParameterError, NotFoundError
from core.lazy import lazy_module
from core.record import VersionRecord
from core.refs import Ref, check_label, check_name, check_note, parse_ref
from core.settings import load_settings
from core.store import urls
from core.store.artifacts import ArtifactStore
from core.store.engine import sqlite_file
from core.store.failures import guarded, leftovers, require_fitted
from core.store.index import MetadataIndex, Row, name_taken
from core.store.layout import VERSION_FILE, Layout, folder_of, refuse_lost_index
from core.store.listing import summary_frame
from core.store.paths import INDEX_FILE, default_store_path
from core.store.verified import VERIFY_MODES, verified_bytes
from core.store.visitors import Quota, refusal, room_to_grow
from core.text import human_bytes

_DEFERRED = ("frames", "store.loading", "store.saving", "store.scoring")
if TYPE_CHECKING:
    import pandas as pd

    from core import frames
    from core.csvheader import HeaderMode
    from core.datasets import Dataset
    from core.safety import LoadLimits
    from core.store import loading, saving, scoring
else:  # pandas and scikit-learn (saving, loading, scoring) load when first used
    frames, loading, saving, scoring, pd = map(lazy_module, [f"core.{m}" for m in _DEFERRED] + ["pandas"])

log = logging.getLogger(__name__)


@guarded  # every public method: library failures leave as one-line ModelShelf errors
class Store:
    """A folder (or URLs) holding model versions and their metadata index."""

    def __init__(
        self,
        path: str | Path | None = None,
        index_url: str | None = None,
        artifacts_url: str | None = None,
        quota: Quota | None = None,
        storage_options: dict[str, Any] | None = None,
    ):
        """A folder (``path``), or an index URL and an artifacts URL with fsspec's ``storage_options``."""
        location = str(path) if path is not None else default_store_path()
        self.quota = quota
        remote = index_url is not None or artifacts_url is not None
        # A remote store is named by its URLs, redacted: never "models", never a password.
        self.location = urls.describe(index_url, artifacts_url or location) if remote else location
        with urls.reaching(self.location, index_url if remote else None, storage_options, remote):
            self.artifacts = ArtifactStore(artifacts_url or location, storage_options)
            if index_url is None:
                if not self.artifacts.is_local:
                    raise InvalidParameterError("A remote artifact store needs an index_url (a SQLAlchemy URL)")
                index_url = f"sqlite:///{Path(self.artifacts.full_path(INDEX_FILE)).resolve()}"
            refuse_lost_index(self.artifacts, sqlite_file(index_url), self.location)
            busy = load_settings().busy_timeout_s
            self.index = MetadataIndex(urls.bounded_index_url(index_url), busy_timeout_s=busy, location=self.location)
            self.layout = Layout(self.index, self.artifacts)
            try:
                self.layout.open()
            except BaseException:
                self.index.dispose()
                raise

    @property
    def read_only(self) -> bool:
        """Whether this process may only read the store (a read-only mount, another user's folder)."""
        return self.index.read_only

    @property
    def snapshot(self) -> bool:
        """Read-only, and read as an immutable snapshot: another process's later writes are not seen."""
        return self.index.snapshot

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
        format: str | None = None,
        compress: int = 0,
        tags: Iterable[str] = (),
        note: str = "",
        metrics: dict[str, Any] | None = None,
        dataset: dict[str, Any] | None = None,
        split: dict[str, Any] | None = None,
        fit_warnings: Iterable[str] = (),
        extra: dict[str, Any] | None = None,
        owner: str | None = None,
        on_duplicate: str = "keep",
    ) -> VersionRecord:
        """Save a fitted model as the next version of ``name``; returns its metadata record.

        Give ``X_test``/``y_test`` (the held-out rows) and the version keeps them, so it can be
        re-scored later without the original data; its metrics are computed from them when
        ``metrics`` is not given. ``format`` None: ``formats.default_format`` (a protocol-5 pickle,
        joblib when ``compress`` is set). Bytes identical to a version of ``name``: see ``saving.add_version``.
        """
        format = format or formats.default_format(compress)
        check_name(name)
        check_note(note)
        require_fitted(model)
        formats.check_format(format, compress)
        if self.quota is not None and owner is not None and format not in formats.VISITOR_FORMATS:
            raise InvalidParameterError(
                f"A demo visitor's version is saved as pickle or joblib, not {format}: download it as {format} "
                "from Model detail"
            )
        tag_list = [check_label(t, "tag") for t in tags]
        frames.check_evaluation_rows(X_test, y_test)  # before anything is written; the rows are kept beside the write
        return saving.add_version(
            self.index,
            self.layout,
            self.quota,
            name,
            lambda handle: formats.write_model(model, handle, format, compress),
            format,
            lambda: saving.model_fields(
                model,
                X_test,
                y_test,
                format=format,
                compress=compress,
                metrics=metrics,
                dataset=dataset,
                split=split,
                fit_warnings=fit_warnings,
                extra=extra,
            ),
            tags=tag_list,
            note=note,
            origin="trained",
            owner=owner,
            on_duplicate=on_duplicate,
        )

    def save_trained(
        self,
        result: saving.Trained,
        name: str,
        *,
        format: str | None = None,
        compress: int = 0,
        tags: Iterable[str] = (),
        note: str = "",
        owner: str | None = None,
        on_duplicate: str = "keep",
    ) -> VersionRecord:
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
            extra={"estimator_key": result.estimator_key, "scale": result.scale, "task": result.task}
            | ({"cv": result.cv} if result.cv else {}),
            owner=owner,
            on_duplicate=on_duplicate,
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
        on_duplicate: str = "keep",
        fields: dict[str, Any] | None = None,
    ) -> VersionRecord:
        """Add a model file from outside as the next version of ``name`` (see ``core.importing``).

        The bytes are loaded in a sandboxed worker process (``core.safety``, running
        its restricted loader there; ``limits``: a LoadLimits), scored there on a
        held-out split of ``dataset`` when given, and kept as they are (origin "imported").
        This process never unpickles them. Nothing is stored if any step fails. ``fields``
        replace the record's parts the worker's description gives (a JSON rebuild's environment,
        data set and origin: ``core.portable.params_json``).
        """
        # Deferred: core.importing needs the worker, and calls back into the store's helpers.
        from core.imported_model import imported_fields, load_upload

        check_name(name)
        check_note(note)
        tag_list = [check_label(t, "tag") for t in tags]
        loaded = load_upload(data, limits)
        described, eval_frame = imported_fields(
            loaded, filename=filename, dataset=dataset, test_size=test_size, seed=seed, stratify=stratify
        )
        record = described | (fields or {})
        return self.add_imported(
            name, data, record, eval_frame=eval_frame, tags=tag_list, note=note, owner=owner, on_duplicate=on_duplicate
        )

    def add_imported(
        self,
        name: str,
        data: bytes,
        fields: dict[str, Any],
        *,
        eval_frame: pd.DataFrame | None,
        tags: builtins.list[str],
        note: str,
        owner: str | None,
        on_duplicate: str = "keep",
    ) -> VersionRecord:
        """Keep model bytes from elsewhere exactly as they came (their sha256 stays the sender's).

        For callers that loaded them through ``core.safety`` (file and bundle imports); ``fields``: the record's parts.
        """
        return saving.add_version(
            self.index,
            self.layout,
            self.quota,
            name,
            lambda handle: handle.write(bytes(data)),
            fields["format"],
            lambda: (fields, eval_frame),
            tags=tags,
            note=note,
            origin="imported",
            owner=owner,
            on_duplicate=on_duplicate,
        )

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

    def get(self, ref: str | Ref) -> VersionRecord:
        """The metadata record of one version (no model file is opened)."""
        return self.artifacts.public(self.row(ref).record())

    def list(
        self,
        name: str | None = None,
        tag: str | None = None,
        sort: str = "created",
        limit: int | None = None,
        offset: int = 0,
        owner: str | None = None,
        task: str | None = None,
    ) -> builtins.list[VersionRecord]:
        """Metadata records, newest first (or by score, accuracy or name; of one task); never opens a model file."""
        rows = self.index.rows(name, tag, sort, limit, offset, owner, task=task)
        return [self.artifacts.public(r.record()) for r in rows]

    def count(
        self, name: str | None = None, tag: str | None = None, owner: str | None = None, task: str | None = None
    ) -> int:
        return self.index.count(name, tag, owner, task)

    def table(
        self,
        name: str | None = None,
        tag: str | None = None,
        sort: str = "created",
        limit: int | None = 50,
        offset: int = 0,
        owner: str | None = None,
        descending: bool | None = None,
        task: str | None = None,
    ) -> pd.DataFrame:
        """One summary row per version (from index columns only): what a registry table shows."""
        rows = self.index.rows(name, tag, sort, limit, offset, owner, descending, task)
        return summary_frame(rows)

    def summary(self) -> dict[str, Any]:
        """How many versions, names and bytes the store holds, and whether this process may change it."""
        n, names, size = self.index.totals()
        return {
            "versions": n,
            "names": names,
            "size_bytes": size,
            "location": self.location,
            "read_only": self.read_only,
            "snapshot": self.snapshot,
        }

    def names(self) -> builtins.list[str]:
        return self.index.names()

    def read_artifact(self, ref: str | Ref) -> bytes:
        """The model file's bytes, checked against the recorded sha256 (for downloads)."""
        row = self.row(ref)
        return verified_bytes(self.artifacts, row, row.path, row.sha256, "model")

    def load(
        self, ref: str | Ref, mmap: bool = False, verify: str = "cached", trust: bool = False
    ) -> loading.LoadedModel:
        """Read a version back: integrity first (nothing is unpickled on a mismatch), then the model.

        An imported version (origin "imported": a stranger's bytes), and in demo mode every
        version, is never unpickled in this process: it is loaded in a sandboxed worker
        (``core.safety``) and ``.model`` is a ``WorkerModel`` proxy with the calls of a fitted
        model (``predict``, ``predict_proba``, ``decision_function``, ``classes_``,
        ``get_params``, ``n_features_in_``, ``feature_names_in_``), run in the warm worker. ``trust=True``
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
        record = self.artifacts.public(row.record())
        return loading.load_version(self.index, self.artifacts, row, record, mmap=mmap, verify=verify, trust=trust)

    def evaluation_set(self, ref: str | Ref) -> tuple[pd.DataFrame, pd.Series]:
        """The held-out rows kept with a version, integrity-checked."""
        row = self.row(ref)
        kept = row.record().get("evaluation_set")
        if not kept:
            raise NotFoundError(f"{row.ref} was saved without an evaluation set; give data to score it on")
        data = verified_bytes(self.artifacts, row, kept["path"], kept["sha256"], "evaluation set")
        return frames.read_evaluation_set(data)

    def evaluate(
        self,
        ref: str | Ref,
        data: str | Path | bytes | None = None,
        names: Any = None,
        target: str | None = None,
        loaded: loading.LoadedModel | None = None,
        header: HeaderMode = "auto",
    ) -> scoring.Evaluation:
        """Score a version again: on its kept evaluation set, or on ``data`` split the recorded way."""
        loaded = loaded or self.load(ref)
        return scoring.evaluate(loaded, lambda: self.evaluation_set(loaded.ref), data, names, target, header)

    def predict(self, ref: str | Ref, data: pd.DataFrame, loaded: loading.LoadedModel | None = None) -> pd.DataFrame:
        """Predictions (and class probabilities where the model has them) for raw rows."""
        loaded = loaded or self.load(ref)
        return frames.predict_table(loaded.model, data, loaded.record)

    # -- changing -----------------------------------------------------------------------------

    def attach_file(self, ref: str | Ref, filename: str, data: bytes) -> dict[str, Any]:
        """Write a file derived from a version (an ONNX or JSON export) into its folder, atomically.

        Returns ``{path, sha256, size_bytes}``; the file goes when the version is deleted.
        """
        kept = {f"model.{ext}" for ext in formats.EXTENSIONS.values()} | {"evaluation.parquet", VERSION_FILE}
        if "/" in filename or "\\" in filename or filename.startswith(".") or filename in kept:
            raise InvalidParameterError(f"Invalid file name {filename!r} for a version's folder")
        return saving.attach(self.index, self.artifacts, self.quota, self.row(ref), filename, data)

    def read_attached(self, ref: str | Ref, path: str, sha256: str, what: str) -> bytes:
        """The bytes of a file attached to a version, checked against the sha256 recorded for it."""
        return verified_bytes(self.artifacts, self.row(ref), path, sha256, what)

    def merge_exports(self, ref: str | Ref, exports: dict[str, Any]) -> dict[str, Any]:
        """Record export results in the version's ``exports`` section (merged, one transaction)."""
        return self.index.merge_record_section(self.row(ref), "exports", exports)

    def usage(self, owner: str | None = None) -> dict[str, int]:
        """``{"versions", "stored_bytes"}`` of one owner (None: the whole store), every byte counted."""
        with self.index.reading() as conn:
            n, size = self.index.usage(conn, owner)
        return {"versions": n, "stored_bytes": size}

    def may_change(self, ref: str | Ref, owner: str | None) -> bool:
        """Whether ``owner`` may alias, tag, annotate or delete this version (what pages offer)."""
        return refusal(self.index, self.row(ref), owner) is None

    def _owned_row(self, ref: str | Ref, owner: str | None) -> Row:
        """The row behind ``ref``; with ``owner`` given, only if that owner holds its name and made it."""
        row = self.row(ref)
        refused = refusal(self.index, row, owner)
        if refused is not None:
            raise refused
        return row

    def set_alias(self, ref: str | Ref, alias: str, owner: str | None = None) -> VersionRecord:
        """Point ``NAME@ALIAS`` at this version (moving it if it pointed elsewhere)."""
        check_label(alias, "alias")
        row = self._owned_row(ref, owner)
        if owner is not None:
            current = self.index.find(row.name, alias=alias)
            if current is not None and current.owner != owner:
                raise ConflictError(f"{row.name}@{alias} points at a version that was not made in this session")
        self.index.set_alias(row, alias)
        return self.get(row.ref)

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
            self._owned_row(current.ref, owner)
        return self.index.remove_alias(name, alias)

    def update_tags(
        self, ref: str | Ref, add: Iterable[str] = (), remove: Iterable[str] = (), owner: str | None = None
    ) -> VersionRecord:
        """Add and remove tags at once: every tag is checked first, so bad input changes nothing."""
        add_list = [check_label(t, "tag") for t in add]
        remove_list = [check_label(t, "tag") for t in remove]
        row = self._owned_row(ref, owner)
        room_to_grow(
            self.index, self.quota, row, sum(len(t.encode()) for t in dict.fromkeys(add_list) if t not in row.tags)
        )
        self.index.update_tags(row, add_list, remove_list)
        return self.get(row.ref)

    def add_tag(self, ref: str | Ref, tag: str, owner: str | None = None) -> VersionRecord:
        return self.update_tags(ref, add=[tag], owner=owner)

    def remove_tag(self, ref: str | Ref, tag: str, owner: str | None = None) -> bool:
        """Remove one tag; False when the version did not have it."""
        check_label(tag, "tag")
        return bool(self.index.update_tags(self._owned_row(ref, owner), remove=[tag]))

    def versions(self, name: str) -> builtins.list[int]:
        """The version numbers of one name that exist now, newest first (from the index only)."""
        return self.index.versions(check_name(name))

    def set_note(self, ref: str | Ref, note: str, owner: str | None = None) -> VersionRecord:
        check_note(note)
        row = self._owned_row(ref, owner)
        room_to_grow(self.index, self.quota, row, len(note.encode()) - len(row.note.encode()))
        self.index.set_note(row, note)
        return self.get(row.ref)

    def delete(self, ref: str | Ref, force: bool = False, owner: str | None = None) -> int:
        """Remove a version's row, then its files (an aliased one needs ``force``); returns the bytes freed."""
        row = self._owned_row(ref, owner)
        self.index.delete_version(row, force)
        try:
            freed = self.artifacts.delete_folder(folder_of(row.path))
        except OSError as exc:  # the row is gone; its own folder only: no other version or save writes there
            raise leftovers(row.ref, exc) from exc
        log.info("deleted %s (%s freed)", row.ref, human_bytes(freed))
        return freed
