"""Hash-verified reads: every byte the store hands out is checked against its recorded sha256.

A model file that hashed right is remembered by its stat (size, mtime, ctime, inode, device: the
verified-stamp cache in the index), so a later ``verify="cached"`` load of an unchanged file skips
the hash; hashing a 300 MB file costs more than mapping it (see docs/benchmarks.md). A save
records the stamp of the file it just wrote and hashed when it can prove it unchanged
(``saved_stamp``), so the first load after a save does not hash it again either.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

from sqlalchemy import Connection, insert
from sqlalchemy.exc import SQLAlchemyError

from core.errors import IntegrityError
from core.store.artifacts import SETTLE_NS, ArtifactStore, settled, stamp_of
from core.store.index import MetadataIndex, Row
from core.store.schema import verified_files

_SAVED = insert(verified_files)  # built once, as the index's hot statements are

VERIFY_MODES = ("cached", "full")
_CLOCK_REALTIME_COARSE = 5  # Linux's clock id; the time module names only the fine clocks


def _file_clock_tick_ns() -> int:
    """How far the clock a file's times are taken from may lag ``time.time_ns``.

    Linux stamps files from its coarse clock (a few ms); elsewhere the settle window is assumed,
    so a save there records nothing and the first load hashes, as it always did.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            return max(1, int(time.clock_getres(_CLOCK_REALTIME_COARSE) * 1e9))
    return SETTLE_NS


FILE_CLOCK_TICK_NS = _file_clock_tick_ns()


def missing(row: Row, path: str, what: str) -> IntegrityError:
    return IntegrityError(f"{row.ref}: the {what} file {path} is missing from the store")


def check_digest(row: Row, actual: str, expected: str, what: str, path: str) -> None:
    """``path`` is relative to the store (as the index records it), so the message says which file."""
    if actual != expected:
        raise IntegrityError(
            f"{row.ref} failed its integrity check: the {what} file {path} has sha256 "
            f"{actual[:16]}..., the index recorded {expected[:16]}...; it was changed or damaged "
            "after saving, so nothing was loaded"
        )


def verified_bytes(artifacts: ArtifactStore, row: Row, path: str, expected: str, what: str) -> bytes:
    """The bytes of one of a version's files, or an IntegrityError when missing or changed."""
    try:  # hashed while it downloads: a remote file is read once, not read then hashed
        data, actual = artifacts.read_hashed(path)
    except FileNotFoundError as exc:
        raise missing(row, path, what) from exc
    check_digest(row, actual, expected, what, path)
    return data


def verified_model(
    index: MetadataIndex, artifacts: ArtifactStore, row: Row, *, verify: str, use_mmap: bool
) -> bytes | str:
    """The model file, checked: its bytes, or its local path when mapped or unchanged since it hashed right."""
    local = artifacts.local_path(row.path)
    try:
        stat = artifacts.local_stat(row.path)
    except FileNotFoundError as exc:
        raise missing(row, row.path, "model") from exc
    source: bytes | str
    if verify == "cached" and local is not None and stat is not None and index.verified_stamp(row) == stamp_of(stat):
        source = local  # unchanged since it hashed to row.sha256
    else:
        if use_mmap:  # stream the hash; the arrays are mapped afterwards, never read into memory
            assert local is not None  # the loader maps only files of a local store
            try:
                check_digest(row, artifacts.sha256(row.path), row.sha256, "model", row.path)
            except FileNotFoundError as exc:
                raise missing(row, row.path, "model") from exc
            source = local
        else:
            source = verified_bytes(artifacts, row, row.path, row.sha256, "model")
        remember_verified(index, artifacts, row, stat)
    return source


def remember_verified(index: MetadataIndex, artifacts: ArtifactStore, row: Row, before: os.stat_result | None) -> None:
    """Record the stat of a file that just hashed right, if it was not changed meanwhile or lately."""
    if before is None or not settled(before):
        return
    try:
        after = artifacts.local_stat(row.path)
    except FileNotFoundError:
        return
    if after is not None and stamp_of(after) == stamp_of(before):
        with contextlib.suppress(SQLAlchemyError):  # a read-only store still loads, only slower
            index.record_verified(row, stamp_of(before))


def saved_stamp(artifacts: ArtifactStore, relpath: str, size: int) -> str | None:
    """The stamp a save may record for the model file it has just written, hashed and published.

    Why it is safe: the sha256 is of the file's bytes, read back through the save's own descriptor, of a
    file it created exclusively (``.NAME.part``) in a new folder of a random name, fsynced, then
    published; the version is not in the index yet, so nothing of ModelShelf reads or writes it.
    The clock is read before the stat: when it is already a full tick of the file clock past the
    file's newest time (mtime, ctime), any later write, truncation or ``utime`` gives the file a
    ctime after the one recorded, so the stamp no longer matches and the load hashes the file (and
    refuses it when changed). When the file changed too recently to tell (a write in the same
    tick would keep the stamp), or its size is not what was written, nothing is recorded and the
    first load hashes the file, as before. A remote store has no stat: nothing is recorded.
    """
    now = time.time_ns()  # before the stat: a write after it is stamped at least a tick later
    try:
        stat = artifacts.local_stat(relpath)
    except FileNotFoundError:
        return None
    if stat is None or stat.st_size != size:
        return None
    if now - max(stat.st_mtime_ns, stat.st_ctime_ns) < FILE_CLOCK_TICK_NS:
        return None
    return stamp_of(stat)


def record_saved(conn: Connection, version_id: int, sha256: str, stamp: str) -> None:
    """Record a save's stamp in the save's own transaction: it stands or falls with the version."""
    conn.execute(_SAVED, {"version_id": version_id, "sha256": sha256, "stamp": stamp})
