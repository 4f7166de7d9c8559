"""Hash-verified reads: every byte the store hands out is checked against its recorded sha256.

A model file that hashed right is remembered by its stat (size, mtime, ctime, inode, device: the
verified-stamp cache in the index), so a later ``verify="cached"`` load of an unchanged file skips
the hash; hashing a 300 MB file costs more than mapping it (see docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import os

from sqlalchemy.exc import SQLAlchemyError

from core.errors import IntegrityError
from core.store.artifacts import ArtifactStore, settled, stamp_of
from core.store.index import MetadataIndex, Row

VERIFY_MODES = ("cached", "full")


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
