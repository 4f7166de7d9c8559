"""What ``python -m core doctor`` finds in a store, and what ``--repair`` may safely fix.

Each problem has a kind, the version it concerns (if any), the file's path relative to the store
and a one-line detail:

- ``index_missing``: versions (or a marker) but no usable index: run ``python -m core index rebuild``.
- ``marker_mismatch``: the marker names another store than the index.
- ``missing_marker`` / ``marker_behind``: no marker, or one whose high-water marks are below the
  index's (repaired: rewritten from the index).
- ``row_without_file``: a version whose model, evaluation set or export file is gone.
- ``size_mismatch`` (sizes compared) / ``hash_mismatch`` (``verify``: every file re-hashed).
- ``metadata_missing``: a version without its ``version.json`` (repaired: rewritten from the index).
- ``metadata_stale``: a ``version.json`` that says other than the index (e.g. a tag change a crash
  cut short after the file was rewritten, before the commit; on an object store, which rewrites
  it after the commit, one cut short in between; repaired: rewritten from the index, so a later
  ``index rebuild`` brings back only what was committed). Compared on a local store always, on
  an object store with ``verify`` (one read per version).
- ``files_without_row``: a version folder no row points at, e.g. a save killed before its commit
  (repaired when older than ``stale_after_s``).
- ``stale_temp``: a ``.part`` file or a file in the old ``.tmp/`` folder (repaired when older).
- ``unreachable``: the index or the artifact store cannot be reached (nothing else is checked).
- ``schema_newer``: the index was made by a newer ModelShelf (nothing else is checked: this
  release cannot know what its rows mean).
- ``schema_older``: the index has an older schema: a SQLite index's first write upgrades it in
  place, one on a database server waits for ``python -m core index upgrade`` (no repair before).
- ``root_mismatch``: the index records its files at another artifact root than the one configured
  (two stores sharing one database, or a wrong ``--artifacts-url``). Nothing else is checked: the
  files here are not the index's. Repaired (this root recorded) only when the marker here carries
  the index's store id, i.e. the files were moved or copied here; otherwise point at the right root.

Leftovers younger than ``stale_after_s`` (default an hour) may belong to a save still running:
they are listed as ``pending``, not as problems. Nothing here prints: the CLI does.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from core.errors import IndexMissingError, SchemaNewerError, StoreMismatchError, StoreUnreachableError
from core.store.artifacts import TMP_FOLDER
from core.store.facade import INDEX_FILE, Store
from core.store.index import Row
from core.store.layout import MARKER, VERSION_FILE, folder_of, version_doc
from core.store.migrations import schema_older
from core.store.schema import SCHEMA_VERSION, info_value

STALE_AFTER_S = 3600.0
REPAIRABLE = (
    "stale_temp",
    "files_without_row",
    "missing_marker",
    "marker_behind",
    "metadata_missing",
    "metadata_stale",
)


@dataclass
class Problem:
    kind: str
    ref: str | None
    path: str | None
    detail: str


@dataclass
class Checkup:
    """What one check of a store found (``ok``: no problem left after any repair)."""

    store: str
    exists: bool = True
    read_only: bool = False
    snapshot: bool = False
    versions: int = 0
    problems: list[Problem] = field(default_factory=list)
    repaired: list[Problem] = field(default_factory=list)
    pending: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "store": self.store,
            "exists": self.exists,
            "read_only": self.read_only,
            "snapshot": self.snapshot,
            "versions": self.versions,
            "problems": [asdict(p) for p in self.problems],
            "repaired": [asdict(p) for p in self.repaired],
            "pending": [asdict(p) for p in self.pending],
        }


def _mtime(info: dict[str, Any]) -> float:
    for key in ("mtime", "LastModified", "last_modified", "created"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
    return time.time()  # unknown: treated as young, so never removed


def _is_temp(relpath: str) -> bool:
    base = relpath.rsplit("/", 1)[-1]
    return relpath.startswith(f"{TMP_FOLDER}/") or (base.startswith(".") and base.endswith((".part", ".tmp")))


def _expected_files(record: Mapping[str, Any]) -> list[tuple[str, str, int | None, str | None]]:
    """``(what, path, size, sha256)`` of every file a version's record says it keeps."""
    files: list[tuple[str, str, int | None, str | None]] = [
        ("model", record["path"], record.get("size_bytes"), record.get("sha256"))
    ]
    kept = record.get("evaluation_set") or {}
    if kept.get("path"):
        files.append(("evaluation set", kept["path"], kept.get("size_bytes"), kept.get("sha256")))
    for key, export in sorted((record.get("exports") or {}).items()):
        if isinstance(export, dict) and export.get("path") and export.get("status", "ok") == "ok":
            files.append((f"{key} export", export["path"], export.get("size_bytes"), export.get("sha256")))
    return files


def _open(
    location: str, checkup: Checkup, index_url: str | None, artifacts_url: str | None, options: dict[str, Any] | None
) -> Store | None:
    try:
        return Store(location, index_url=index_url, artifacts_url=artifacts_url, storage_options=options)
    except IndexMissingError as exc:
        checkup.problems.append(Problem("index_missing", None, INDEX_FILE, str(exc)))
    except StoreMismatchError as exc:
        checkup.problems.append(Problem("marker_mismatch", None, MARKER, str(exc)))
    except StoreUnreachableError as exc:
        checkup.problems.append(Problem("unreachable", None, None, str(exc)))
    except SchemaNewerError as exc:
        checkup.problems.append(Problem("schema_newer", None, None, str(exc)))
    return None


def _schema_older(store: Store, checkup: Checkup) -> bool:
    """Report an index with an older schema (a newer one is refused on opening: see ``_open``);
    True when it may not be written before ``index upgrade`` (a server's)."""
    found = store.index.schema
    if found is None or found >= SCHEMA_VERSION:
        return False
    if store.index.engine.dialect.name == "sqlite":
        detail = f"the index has schema {found}, older than {SCHEMA_VERSION}: the store's first write upgrades it"
        checkup.problems.append(Problem("schema_older", None, None, detail))
        return False
    checkup.problems.append(Problem("schema_older", None, None, str(schema_older(store.index.where, found))))
    return True


def _root_mismatch(store: Store, checkup: Checkup, repair: bool) -> bool:
    """Report an artifact root other than the one the index records; True: stop, the files are not its."""
    recorded = store.layout.recorded_root()
    if recorded is None or recorded == store.layout.root:
        return False
    marker = store.layout.read_marker()
    moved = marker is not None and marker.get("store_id") == store.index.store_id()
    if moved and repair and not store.read_only:
        detail = f"the files were moved from {recorded} to {store.layout.root} (the marker here is this store's)"
        store.layout.record_root()
        checkup.repaired.append(Problem("root_mismatch", None, None, detail))
        return False
    why = "--repair records this root: the marker here is this store's" if moved else "no marker of this store here"
    detail = f"{store.layout.root_mismatch(recorded)} [{why}]"
    checkup.problems.append(Problem("root_mismatch", None, None, detail))
    return True


def check_store(
    location: str,
    *,
    index_url: str | None = None,
    artifacts_url: str | None = None,
    storage_options: dict[str, Any] | None = None,
    verify: bool = False,
    repair: bool = False,
    stale_after_s: float = STALE_AFTER_S,
) -> Checkup:
    """Check one store; with ``repair``, also fix what is safe (see the module's docstring)."""
    checkup = Checkup(store=location)
    if artifacts_url is None and index_url is None and not os.path.isdir(location):
        checkup.exists = False  # nothing to check, and nothing is created by checking
        return checkup
    store = _open(location, checkup, index_url, artifacts_url, storage_options)
    if store is None:
        return checkup
    try:
        checkup.read_only, checkup.snapshot = store.read_only, store.snapshot
        waits = _schema_older(store, checkup)
        if _root_mismatch(store, checkup, repair):
            return checkup
        _check(store, checkup, verify, stale_after_s)
        if repair and not store.read_only and not waits:
            _repair(store, checkup)
    finally:
        store.close()
    return checkup


def _check(store: Store, checkup: Checkup, verify: bool, stale_after_s: float) -> None:
    artifacts = store.artifacts
    prefix = artifacts.root + "/"
    listing = {
        path[len(prefix) :]: info
        for path, info in artifacts.fs.find(artifacts.root, detail=True).items()
        if path.startswith(prefix)
    }  # files first, rows second: a save that commits in between is a young folder, not a lost row
    rows = store.index.rows()
    checkup.versions = len(rows)
    with store.index.reading() as conn:
        store_id = info_value(conn, "store_id")
    now = time.time()
    known_folders = {folder_of(row.path) for row in rows}
    for row in rows:
        for what, path, size, sha in _expected_files(row.record()):
            info = listing.get(path)
            if info is None:
                checkup.problems.append(Problem("row_without_file", row.ref, path, f"the {what} file is missing"))
            elif size is not None and int(info.get("size") or 0) != int(size):
                detail = f"the {what} file has {info.get('size')} bytes, the index recorded {size}"
                checkup.problems.append(Problem("size_mismatch", row.ref, path, detail))
            elif verify and sha is not None and artifacts.sha256(path) != sha:
                detail = f"the {what} file's sha256 is not the one the index recorded"
                checkup.problems.append(Problem("hash_mismatch", row.ref, path, detail))
        metadata = f"{folder_of(row.path)}/{VERSION_FILE}"
        if store.index.schema == SCHEMA_VERSION and metadata not in listing and row.path in listing:
            detail = "the version's metadata file is missing"
            checkup.problems.append(Problem("metadata_missing", row.ref, metadata, detail))
        elif metadata in listing and (verify or artifacts.is_local) and _stale(store, row, metadata, store_id):
            detail = "the version's metadata file says other than the index"
            checkup.problems.append(Problem("metadata_stale", row.ref, metadata, detail))
    strays: dict[str, list[float]] = {}
    for path, info in listing.items():
        folder = "/".join(path.split("/")[:2]) if path.count("/") >= 2 and not path.startswith(".") else None
        if folder is not None and folder not in known_folders:  # temporary files in it included
            strays.setdefault(folder, []).append(_mtime(info))
        elif _is_temp(path):
            age = now - _mtime(info)
            found = Problem("stale_temp", None, path, f"a temporary file, {age / 60:.0f} min old")
            (checkup.problems if age > stale_after_s else checkup.pending).append(found)
    for folder, mtimes in sorted(strays.items()):
        age = now - max(mtimes)
        detail = f"{len(mtimes)} file(s) no version points at, last written {age / 60:.0f} min ago"
        found = Problem("files_without_row", None, folder, detail)
        (checkup.problems if age > stale_after_s else checkup.pending).append(found)
    _check_marker(store, checkup)


def _stale(store: Store, row: Row, metadata: str, store_id: str | None) -> bool:
    """Whether ``version.json`` differs from what the index would write there now (its time aside)."""
    try:
        found = store.artifacts.read_json(metadata)
    except (OSError, ValueError):
        return True
    if not isinstance(found, dict):
        return True

    def text(doc: dict[str, Any]) -> str:  # as JSON text: a NaN metric equals itself there
        return json.dumps({k: v for k, v in doc.items() if k != "updated_at"}, sort_keys=True, default=str)

    return text(found) != text(version_doc(row, store_id))


def _check_marker(store: Store, checkup: Checkup) -> None:
    marker = store.layout.read_marker()
    if marker is None:
        checkup.problems.append(Problem("missing_marker", None, MARKER, "the store has no marker file"))
        return
    with store.index.reading() as conn:
        needed = store.index.high_water(conn) if store.index.schema == SCHEMA_VERSION else {}
    found = marker.get("high_water")
    kept: dict[str, Any] = found if isinstance(found, dict) else {}
    behind = sorted(name for name, number in needed.items() if int(kept.get(name, 0)) < number)
    if behind:
        detail = "its high-water marks are below the index's for " + ", ".join(behind[:5])
        checkup.problems.append(Problem("marker_behind", None, MARKER, detail))


def _repair(store: Store, checkup: Checkup) -> None:
    left: list[Problem] = []
    for problem in checkup.problems:
        if problem.kind not in REPAIRABLE or problem.path is None:
            left.append(problem)
            continue
        if problem.kind == "stale_temp":
            store.artifacts.discard(store.artifacts.full_path(problem.path))
        elif problem.kind == "files_without_row":
            store.artifacts.delete_folder(problem.path)
        elif problem.kind in ("missing_marker", "marker_behind"):
            with store.index.writing() as conn:  # an old store is upgraded by this write, as by any
                store.layout.write_marker(conn)
        elif problem.kind in ("metadata_missing", "metadata_stale"):
            row = store.row(problem.ref or "")
            with store.index.writing() as conn:
                store.layout.rewrite(conn, [row.id])
        checkup.repaired.append(problem)
    checkup.problems = left
