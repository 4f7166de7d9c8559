"""``python -m core index rebuild``: make a lost or damaged index again from the store's own files.

Every version folder keeps ``version.json`` (its row, record, note, tags, aliases and owner) and
the artifact root keeps the marker (store id, the last number each name handed out), so nothing
is lost: not the tags, notes, aliases or owners, and no number is handed out twice afterwards. A
damaged SQLite index is moved aside (``index.sqlite.damaged-<time>``), never deleted; a healthy
one is left alone unless ``force``. Run it while nothing else writes to the store.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from core.errors import ConflictError, IndexMissingError
from core.store.artifacts import ArtifactStore
from core.store.engine import sqlite_file
from core.store.facade import INDEX_FILE, Store
from core.store.index import MetadataIndex
from core.store.layout import VERSION_FILE, Layout, folder_of
from core.store.schema import aliases, metadata_obj, names, tags, versions
from core.store.schema_tasks import TASK_COLUMNS, index_columns

log = logging.getLogger(__name__)

#: The row's columns a ``version.json`` must hold; the schema-4 ones are made again from its record.
COLUMNS = [c.name for c in versions.columns if c.name not in ("id", "record", *TASK_COLUMNS)]


def _healthy(location: str, index_url: str | None, artifacts_url: str | None) -> bool:
    """Whether the index opens and reads through (SQLite: its pages pass ``quick_check``)."""
    try:
        store = Store(location, index_url=index_url, artifacts_url=artifacts_url)
    except IndexMissingError:
        return False
    try:
        with store.index.reading() as conn:
            if conn.dialect.name == "sqlite":
                return (
                    bool(conn.execute(text("PRAGMA quick_check")).scalar() == "ok") and store.index.schema is not None
                )
            store.index.count()
            return store.index.schema is not None
    except IndexMissingError:
        return False
    finally:
        store.close()


def _move_aside(path: str) -> str | None:
    """Move a SQLite index (and its -wal/-shm) aside; returns where it went (None: nothing there)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = f"{path}.damaged-{stamp}"
    moved = None
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.lexists(path + suffix):
            os.rename(path + suffix, target + suffix)
            moved = target
    return moved


def _read_docs(artifacts: ArtifactStore, store_id: str | None, skipped: list[str]) -> list[dict[str, Any]]:
    prefix = artifacts.root + "/"
    docs: list[dict[str, Any]] = []
    folders_with_docs = set()
    for path in sorted(artifacts.fs.glob(f"{artifacts.root}/*/*/{VERSION_FILE}")):
        rel = path[len(prefix) :]
        folders_with_docs.add(folder_of(rel))
        try:
            doc = artifacts.read_json(rel)
            if not isinstance(doc, dict) or not all(k in doc for k in (*COLUMNS, "record")):
                raise ValueError("not a version's metadata")
        except (OSError, ValueError) as exc:
            skipped.append(f"{rel}: unreadable ({exc})")
            continue
        if store_id is not None and doc.get("store_id") not in (None, store_id):
            skipped.append(f"{rel}: belongs to another store")
            continue
        docs.append(doc)
    for path in sorted(artifacts.fs.glob(f"{artifacts.root}/*/*/model.*")):
        folder = folder_of(path[len(prefix) :])
        if folder not in folders_with_docs:
            skipped.append(f"{folder}: a model file without {VERSION_FILE} (its record cannot be recovered)")
    return docs


def _pick(docs: list[dict[str, Any]], skipped: list[str]) -> list[dict[str, Any]]:
    """One version per NAME:N: of two (a save killed after writing its metadata, then the number
    taken again by the next save), the later one is the one whose commit went through."""
    chosen: dict[tuple[str, int], dict[str, Any]] = {}
    for doc in sorted(docs, key=lambda d: (d["created_at"], d["updated_at"] or "")):
        key = (doc["name"], int(doc["version"]))
        if key in chosen:
            skipped.append(f"{folder_of(chosen[key]['path'])}: {key[0]}:{key[1]} again, an older save's leftover")
        chosen[key] = doc
    return sorted(chosen.values(), key=lambda d: (d["created_at"], d["name"], int(d["version"])))


def rebuild_index(
    location: str, *, index_url: str | None = None, artifacts_url: str | None = None, force: bool = False
) -> dict[str, Any]:
    """Rebuild the index of the store at ``location`` from its files; returns what was done."""
    artifacts = ArtifactStore(artifacts_url or location)
    if index_url is None:
        index_url = f"sqlite:///{Path(artifacts.full_path(INDEX_FILE)).resolve()}"
    if _healthy(location, index_url, artifacts_url) and not force:
        raise ConflictError(
            f"the index of {location} is healthy: nothing to rebuild (--force rebuilds it from the files anyway)"
        )
    index_file = sqlite_file(index_url)
    moved = _move_aside(index_file) if index_file is not None else None
    probe = MetadataIndex(index_url, location=location)
    if index_file is None and probe.schema is not None:  # a server database: its tables are made again
        with probe.engine.begin() as conn:
            metadata_obj.drop_all(conn)
        probe.schema = None
    layout = Layout(probe, artifacts)
    marker = layout.read_marker() or {}
    store_id = str(marker.get("store_id") or uuid.uuid4().hex)
    skipped: list[str] = []
    docs = _pick(_read_docs(artifacts, marker.get("store_id"), skipped), skipped)

    def fill(conn: Any) -> None:  # in the transaction that makes the tables: a killed rebuild leaves none
        _insert(conn, docs, marker.get("high_water") or {})
        layout.write_marker(conn)

    try:
        probe.create(store_id, before=lambda conn: None, after=fill)
    finally:
        probe.dispose()
    log.info("rebuilt the index of %s: %d versions", location, len(docs))
    return {
        "store": location,
        "store_id": store_id,
        "versions": len(docs),
        "names": len({d["name"] for d in docs}),
        "moved_aside": moved,
        "skipped": skipped,
    }


def _insert(conn: Any, docs: list[dict[str, Any]], high_water: dict[str, Any]) -> None:
    holders: dict[tuple[str, str], tuple[str, int]] = {}
    firsts: dict[str, dict[str, Any]] = {}
    tops: dict[str, int] = {}
    for doc in docs:
        values = {c: doc[c] for c in COLUMNS} | index_columns(doc["record"]) | {"record": json.dumps(doc["record"])}
        key = conn.execute(insert(versions).values(**values)).inserted_primary_key[0]
        if doc["tags"]:
            conn.execute(insert(tags), [{"version_id": key, "tag": t} for t in dict.fromkeys(doc["tags"])])
        for alias in doc["aliases"]:  # an alias in two files (a move cut short): the later file wins
            held = holders.get((doc["name"], alias))
            if held is None or held[0] <= (doc["updated_at"] or ""):
                holders[(doc["name"], alias)] = (doc["updated_at"] or "", int(key))
        firsts.setdefault(doc["name"], doc)
        tops[doc["name"]] = max(tops.get(doc["name"], 0), int(doc["version"]))
    if holders:
        rows = [{"name": n, "alias": a, "version_id": v} for (n, a), (_, v) in holders.items()]
        conn.execute(insert(aliases), rows)
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    claimed = []
    for name in sorted(set(tops) | {str(n) for n in high_water}):
        first = firsts.get(name)
        last = max(tops.get(name, 0), int(high_water.get(name) or 0))
        claimed.append(
            {
                "name": name,
                "owner": first["owner"] if first else None,
                "created_at": first["created_at"] if first else now,
                "next_version": last + 1,
            }
        )
    if claimed:
        conn.execute(insert(names), claimed)
