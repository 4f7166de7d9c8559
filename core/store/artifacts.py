"""The artifact store: model files and evaluation sets, through fsspec.

A local folder by default; any fsspec URL (``s3://bucket/prefix``, ``memory://x``) otherwise,
without callers knowing the difference. Files are written to a temporary name and moved into
place only when complete, so a crash never leaves a half-written model under a real name.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable
from typing import IO, Any, cast

import fsspec
from fsspec.implementations.local import LocalFileSystem

from core.formats import HashingWriter

_TMP = ".tmp"
_CHUNK = 8 * 1024 * 1024
#: File timestamps tick coarsely (a kernel clock tick; seconds on some filesystems): a stat taken
#: less than this long after the file's last change could miss a same-size write in the same tick.
SETTLE_NS = 2_000_000_000


def stamp_of(stat: os.stat_result) -> str:
    """What a file's stat says about its content: size, mtime, ctime, inode, device.

    Any write changes mtime and ctime, and ctime cannot be set back from user space (``touch``
    and ``os.utime`` set mtime but bump ctime), so an unchanged stamp means an unchanged file.
    """
    return f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}:{stat.st_ino}:{stat.st_dev}"


def settled(stat: os.stat_result) -> bool:
    """Whether the file was last changed long enough ago for its stamp to be trusted."""
    return time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) > SETTLE_NS


class ArtifactStore:
    """Files addressed by a path relative to one root folder or URL."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(url, **(storage_options or {}))
        self.root = self.root.rstrip("/")
        self.fs.makedirs(self.root, exist_ok=True)

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def full_path(self, relpath: str) -> str:
        return f"{self.root}/{relpath}"

    def uri(self, relpath: str) -> str:
        """A URL for the file that fsspec (and people) can open."""
        return self.fs.unstrip_protocol(self.full_path(relpath))

    def local_path(self, relpath: str) -> str | None:
        """The file's path on this machine (for memory-mapping), or None for remote stores."""
        return self.full_path(relpath) if self.is_local else None

    def local_stat(self, relpath: str) -> os.stat_result | None:
        """``os.stat`` of a file in a local store (None for remote stores); FileNotFoundError if missing."""
        path = self.local_path(relpath)
        return os.stat(path) if path is not None else None

    def write_temp(self, write: Callable[[IO[bytes]], object]) -> tuple[str, int, str]:
        """Run ``write`` on a fresh temporary file; returns ``(temp_path, size, sha256)``.

        The sha256 is computed while writing: no second pass over the file.
        """
        self.fs.makedirs(f"{self.root}/{_TMP}", exist_ok=True)
        temp = f"{self.root}/{_TMP}/{uuid.uuid4().hex}"
        try:
            # A local file is opened directly: fsspec's wrapper would add a Python call to each write.
            with open(temp, "wb") if self.is_local else self.fs.open(temp, "wb") as raw:
                writer = HashingWriter(raw)
                # A binary file at runtime; typeshed's RawIOBase just is not declared an IO[bytes].
                write(cast("IO[bytes]", writer))
        except BaseException:
            self.discard(temp)
            raise
        return temp, writer.size, writer.sha256

    def commit(self, temp: str, relpath: str) -> None:
        """Move a finished temporary file to its real name (a rename on a local disk: atomic)."""
        final = self.full_path(relpath)
        parent = final.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        self.fs.mv(temp, final)

    def discard(self, path: str) -> None:
        """Remove a temporary or committed file if it is there (cleanup never raises)."""
        try:
            if self.fs.exists(path):
                self.fs.rm(path)
        except OSError:
            pass

    def read_bytes(self, relpath: str) -> bytes:
        with self.fs.open(self.full_path(relpath), "rb") as handle:
            return handle.read()

    def sha256(self, relpath: str) -> str:
        """Stream the file through sha256 without holding it in memory."""
        digest = hashlib.sha256()
        with self.fs.open(self.full_path(relpath), "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def exists(self, relpath: str) -> bool:
        return self.fs.exists(self.full_path(relpath))

    def delete_folder(self, relpath: str) -> int:
        """Remove a version's folder; returns the bytes freed."""
        path = self.full_path(relpath)
        if not self.fs.exists(path):
            return 0
        freed = sum(info.get("size", 0) or 0 for info in self.fs.find(path, detail=True).values())
        self.fs.rm(path, recursive=True)
        return int(freed)
