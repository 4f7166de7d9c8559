"""The store's own files beside the versions, so it knows itself without its index.

- ``modelshelf-store.json`` at the artifact root, the marker: ``{"store_id", "format",
  "high_water": {name: last number handed out}}``. On a local disk rewritten (atomically) inside
  every write transaction that claims a number, before its commit, so it is never behind the
  index; an object store puts it after the commit and it may lag by the last versions (why that is
  safe: ``core.store.saving``). With it a
  missing or emptied index is reported as such ("run `python -m core index rebuild`"), never
  silently recreated over existing versions, and a rebuilt index hands out no number twice.
- ``NAME/<id>/version.json`` in each version's folder: the full record with its note, tags,
  aliases and owner, written in the transaction that claims its number and rewritten in each
  transaction that changes them (an alias move rewrites both versions'); on an object store
  right after that transaction's commit instead, never under its locks. ``core.store.rebuild``
  makes a lost index again from these files.

A version's folder has a random id (``new_folder``), not its number: no two versions, and no
failed save, ever share one, so a delete or a cleanup only ever removes its own files.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from core.errors import StoreMismatchError
from core.store.artifacts import ArtifactStore
from core.store.engine import after_commit, index_missing, index_where, read_only, sqlite_file
from core.store.index import MetadataIndex, Row
from core.store.migrations import schema_newer
from core.store.schema import SCHEMA_VERSION, info_value, set_info, versions
from core.store.urls import redact_url

log = logging.getLogger(__name__)

MARKER = "modelshelf-store.json"
VERSION_FILE = "version.json"
#: The artifact layout: 3 = version folders by random id, the marker and the metadata files.
FORMAT = 3
#: Files at the artifact root that are the store's own, not versions (``index.sqlite*`` is matched by prefix).
INDEX_PREFIX = "index.sqlite"


def new_folder(name: str) -> str:
    """A folder for one new version: its own random id, shared with no other version, ever."""
    return f"{name}/{uuid.uuid4().hex}"


def folder_of(path: str) -> str:
    """The version folder of one of its files' paths (as the index records them)."""
    return path.rsplit("/", 1)[0]


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def version_doc(row: Row, store_id: str | None) -> dict[str, Any]:
    """What ``version.json`` holds: every column of the version's row, its tags and aliases, its record."""
    columns = {k: v for k, v in dataclasses.asdict(row).items() if k not in ("id", "record_json")}
    return {"store_id": store_id, "updated_at": _utc_now(), **columns, "record": json.loads(row.record_json)}


def has_versions(artifacts: ArtifactStore) -> bool:
    """Whether the artifact root shows a store (a marker, or version folders) without asking the index."""
    if artifacts.exists(MARKER):
        return True
    root = artifacts.root
    return any(artifacts.fs.glob(f"{root}/{pattern}") for pattern in (f"*/*/{VERSION_FILE}", "*/*/model.*"))


def artifact_root(index_url: str, artifacts: ArtifactStore) -> str:
    """Where the files are, as the index records it: a local folder relative to a SQLite index's
    own folder (``.`` for a store folder, so the folder can be moved), else its URL without credentials."""
    if not artifacts.is_local:
        return redact_url(artifacts.fs.unstrip_protocol(artifacts.root))
    root = os.path.realpath(artifacts.root)
    index_file = sqlite_file(index_url)
    if index_file is None:
        return root
    return Path(os.path.relpath(root, os.path.dirname(os.path.realpath(index_file)))).as_posix()


def refuse_lost_index(artifacts: ArtifactStore, index_file: str | None, location: str) -> None:
    """Refuse to open (never recreate) a SQLite index file that is missing over existing versions."""
    if index_file is None:
        return
    # Only a missing file is judged here, before SQLite would create one: an empty one may be another
    # process's brand-new index, and is judged in the write lock (``Layout.open``).
    if not os.path.lexists(index_file) and has_versions(artifacts):
        raise index_missing(index_where(location, f"sqlite:///{index_file}"))


class Layout:
    """The marker and the metadata files of one store, kept in step with its index's transactions."""

    def __init__(self, index: MetadataIndex, artifacts: ArtifactStore) -> None:
        self.index = index
        self.artifacts = artifacts
        self.root = artifact_root(index.url, artifacts)
        #: Set by ``record_root`` (``doctor --repair``): the next write records ``root`` instead of refusing it.
        self.moved_here = False
        index.on_change = self.rewrite
        index.on_upgrade = self.upgrade
        index.artifact_root = self.root
        index.before_first_write = self.check_root

    # -- opening ------------------------------------------------------------------------------

    def read_marker(self) -> dict[str, Any] | None:
        """The marker's content (None: no marker, or one that is not a JSON object)."""
        try:
            found = self.artifacts.read_json(MARKER)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning("the store marker %s could not be read", self.artifacts.uri(MARKER))
            return None
        return found if isinstance(found, dict) else None

    def has_versions(self) -> bool:
        return has_versions(self.artifacts)

    def open(self) -> None:
        """Check the index against the artifact root; make the tables of a brand-new store."""
        index = self.index
        if index.schema is None:
            if index.read_only:
                raise index_missing(index.where, "empty") if self.has_versions() else read_only(index.location)

            def refuse(conn: Connection) -> None:
                # In the write lock: a marker seen outside it may be another process's new store.
                if self.has_versions():
                    raise index_missing(index.where, "empty")

            index.create(uuid.uuid4().hex, before=refuse, after=lambda conn: self.write_marker(conn))
            return
        if index.schema > SCHEMA_VERSION:  # refused before anything is read: its rows may mean other things
            raise schema_newer(index.location, index.schema)
        if index.schema < 2 and not index.read_only and index.engine.dialect.name == "sqlite":
            index.upgrade()  # schema 1 cannot be read as it is (a server's waits for `index upgrade`)
        marker = self.read_marker()
        store_id = index.store_id()
        if marker is not None and store_id is not None and marker.get("store_id") != store_id:
            raise StoreMismatchError(
                f"the index of {index.location} belongs to another store (store id {store_id[:8]}..., "
                f"the folder's marker says {str(marker.get('store_id'))[:8]}...); point --store at the right "
                "pair, or run `python -m core index rebuild --force`"
            )

    # -- the artifact root -------------------------------------------------------------------

    def recorded_root(self) -> str | None:
        """Where the index says its files are (None: not recorded, an index older than schema 4)."""
        with self.index.reading() as conn:
            return info_value(conn, "artifact_root") if self.index.schema == SCHEMA_VERSION else None

    def root_mismatch(self, recorded: str) -> StoreMismatchError:
        return StoreMismatchError(
            f"the index at {self.index.where} keeps the files of its store at {recorded}, not at {self.root}: "
            "point --artifacts-url at them (if they were moved here, `python -m core doctor --repair` says so)"
        )

    def check_root(self, conn: Connection) -> None:
        """Before this process's first write, in its transaction: refuse files of another root than the
        index's (two stores sharing one database would mix); record it where none is recorded yet."""
        recorded = info_value(conn, "artifact_root")
        if recorded is not None and recorded != self.root and not self.moved_here:
            raise self.root_mismatch(recorded)
        if recorded != self.root:
            set_info(conn, "artifact_root", self.root)

    def record_root(self) -> None:
        """Record this artifact root as the index's (``doctor --repair``, once the marker here proved the
        files are this store's: they were moved or copied here)."""
        self.moved_here, self.index.root_checked = True, False
        try:
            with self.index.writing():
                pass
        finally:
            self.moved_here = False

    # -- writing (inside the index's write transactions) --------------------------------------

    def write_marker(self, conn: Connection, name: str | None = None, number: int | None = None) -> None:
        """Rewrite the marker before the transaction commits (never behind the index).

        The store-id row is locked first, so on a server database two savers of different names
        do not interleave their read-modify-write of the marker (on SQLite the write lock does that).
        """
        self.artifacts.write_json(MARKER, self.marker_doc(conn, name, number))

    def marker_doc(
        self, conn: Connection, name: str | None = None, number: int | None = None, *, locked: str | None = None
    ) -> dict[str, Any]:
        """The marker as ``write_marker`` writes it. ``locked``: the store id, as this transaction
        already read it with the store-id row locked."""
        store_id = locked if locked is not None else info_value(conn, "store_id", lock=True)
        marker = self.read_marker()
        kept = marker.get("high_water") if marker is not None and marker.get("store_id") == store_id else None
        high_water = {str(k): int(v) for k, v in kept.items()} if isinstance(kept, dict) else {}
        if name is None or not isinstance(kept, dict):  # a whole rewrite: never below the index, nor below itself
            for each, last in self.index.high_water(conn).items():
                high_water[each] = max(high_water.get(each, 0), last)
        if name is not None and number is not None:
            high_water[name] = max(high_water.get(name, 0), number)
        return {"store_id": store_id, "format": FORMAT, "high_water": high_water}

    def rewrite(self, conn: Connection, ids: Sequence[int]) -> None:
        """Rewrite the metadata files of these versions, as the transaction on ``conn`` leaves them.

        On a local disk before the commit (a synced rename each). On an object store after it
        (``after_commit``), so no request waits under the transaction's row locks: a crash in
        between leaves the files saying what was there before, which ``doctor --verify`` reports
        (``metadata_stale``) and ``--repair`` rewrites from the index.
        """
        store_id = info_value(conn, "store_id")
        docs = {
            f"{folder_of(row.path)}/{VERSION_FILE}": version_doc(row, store_id)
            for row in self.index.rows_by_id(conn, ids)
        }
        if not self.artifacts.is_local:
            after_commit(lambda: self._put_late(docs))
            return
        for path, doc in docs.items():
            try:
                self.artifacts.write_json(path, doc)
            except FileNotFoundError:  # its folder is gone (``doctor`` reports it): nothing to keep it in
                log.warning("%s: no folder to write it in", path)

    def _put_late(self, docs: dict[str, Any]) -> None:
        """An object store's metadata files, after the commit: a failure is logged, the change stands."""
        try:
            self.artifacts.write_jsons(docs)
        except Exception as exc:  # noqa: BLE001  # committed: never reported as "nothing was changed"
            paths = ", ".join(self.artifacts.uri(p) for p in docs)
            log.warning("%s could not be written (%s); `python -m core doctor --repair` rewrites it", paths, exc)

    def publish(self, conn: Connection, row: Row) -> None:
        """A new version's metadata file (from the row just inserted, not read back) and the marker's
        new high-water mark, before the commit."""
        store_id = info_value(conn, "store_id", lock=True)  # locked for the marker (see write_marker)
        marker = self.marker_doc(conn, row.name, row.version, locked=store_id)
        self.artifacts.write_jsons(
            {f"{folder_of(row.path)}/{VERSION_FILE}": version_doc(row, store_id), MARKER: marker}
        )

    def marks(self, conn: Connection) -> tuple[str | None, dict[str, int]]:
        """The store id and every name's high-water mark, read by an object store's save in its
        transaction BEFORE it locks its name: nothing the marker needs is read under that lock."""
        return info_value(conn, "store_id"), self.index.high_water(conn)

    @staticmethod
    def to_publish(row: Row, store_id: str | None, high_water: dict[str, int]) -> dict[str, Any]:
        """What an object store's save writes after its commit: ``{relpath: doc}`` for version.json
        and the marker, built from the row the transaction inserted (no object-store request, no query).

        The marker carries the high-water marks read before the name was locked, with this save's
        number: one request fewer than reading the old marker, and a marker written late by a
        slower saver may lag by the last versions, which ``index rebuild`` makes up from their
        ``version.json``.
        """
        marks = high_water | {row.name: max(high_water.get(row.name, 0), row.version)}
        marker = {"store_id": store_id, "format": FORMAT, "high_water": marks}
        return {f"{folder_of(row.path)}/{VERSION_FILE}": version_doc(row, store_id), MARKER: marker}

    def upgrade(self, conn: Connection) -> None:
        """An index being upgraded in place: every version gets its metadata file, the store its marker."""
        ids: Sequence[int] = conn.scalars(select(versions.c.id).order_by(versions.c.id)).all()
        for start in range(0, len(ids), 500):
            self.rewrite(conn, ids[start : start + 500])
        self.write_marker(conn)
