"""The artifact store: model files and evaluation sets, through fsspec.

A local folder by default; any fsspec URL (``s3://bucket/prefix``, ``memory://x``) otherwise,
without callers knowing the difference. A local file is written under a ``.part`` name beside
its final one, fsynced, then published without replacing anything; an object store gets one put
(no rename there). So a crash never leaves a half-written file under a real name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import IO, TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from core.errors import StoreError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from core.record import VersionRecord
from core.formats import HashingWriter

#: Where releases before format 3 wrote their temporary files (``doctor --repair`` clears it).
TMP_FOLDER = ".tmp"
_CHUNK = 8 * 1024 * 1024
#: An object-store file up to this size goes up in ONE put (S3 takes up to 5 GB in one), buffered in
#: memory; a larger one goes up in parts this size (more requests, bounded memory). s3fs's default
#: (50 MB) made a 60 MB model a multipart upload: four requests for the model alone.
SINGLE_PUT_MAX = 256 * 2**20
#: File timestamps tick coarsely (a kernel clock tick; seconds on some filesystems): a stat taken
#: less than this long after the file's last change could miss a same-size write in the same tick.
SETTLE_NS = 2_000_000_000


def stamp_of(stat: os.stat_result) -> str:
    """What a file's stat says about its content: size, mtime, ctime, inode, device.

    Any write changes mtime and ctime, and ctime cannot be set back from user space (``touch``
    and ``os.utime`` set mtime but bump ctime), so an unchanged stamp means an unchanged file.
    """
    return f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}:{stat.st_ino}:{stat.st_dev}"


def already_there(relpath: str) -> StoreError:
    return StoreError(f"{relpath} already exists in the store; refusing to overwrite it")


def _publish(part: str, final: str, relpath: str) -> None:
    """Give a finished local file its final name, never replacing a file already there."""
    try:
        os.link(part, final)  # fails, atomically, when ``final`` exists
    except FileExistsError as exc:
        raise already_there(relpath) from exc
    except OSError as exc:  # a filesystem without hard links
        if os.path.exists(final):
            raise already_there(relpath) from exc
        os.rename(part, final)
        return
    os.unlink(part)


def _unhashed_bodies(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """S3 options under which a put's body is not hashed a second time just to sign it.

    Over plain HTTP (a MinIO on the LAN, the test server) botocore signs each body's sha256: a
    second pass over a model file the save has just hashed. Each put already carries a checksum
    header (botocore's default, ``request_checksum_calculation="when_supported"``) that the request
    signs and the server verifies, so the body stays covered; over HTTPS botocore skips the body
    hash anyway. A caller's own ``payload_signing_enabled`` or checksum setting is kept.
    """
    if urlsplit(url).scheme not in ("s3", "s3a"):
        return options
    config = dict(options.get("config_kwargs") or {})
    if config.get("request_checksum_calculation", "when_supported") != "when_supported":
        return options  # no checksum header on every put: keep the signed body
    config["s3"] = {"payload_signing_enabled": False, **(config.get("s3") or {})}
    return {**options, "config_kwargs": config}


_IO_THREADS: dict[int, ThreadPoolExecutor] = {}
_IO_THREADS_LOCK = threading.Lock()


def io_threads() -> ThreadPoolExecutor:
    """This process's threads for the store's writes that run beside others (a save's evaluation
    set while its model file is fsynced, its version.json beside the marker).

    Kept for the process: a thread started for each save held its fsync up by a few ms (the new
    thread's start waits for the GIL). Keyed by process id: a forked child gets threads of its own.
    """
    with _IO_THREADS_LOCK:
        pool = _IO_THREADS.get(os.getpid())
        if pool is None:
            pool = _IO_THREADS[os.getpid()] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="modelshelf-io")
        return pool


def settled(stat: os.stat_result) -> bool:
    """Whether the file was last changed long enough ago for its stamp to be trusted."""
    return time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) > SETTLE_NS


def local_root(url: str) -> str | None:
    """The folder a local store URL names, as fsspec's local file system spells it (POSIX), or None
    for any other URL. A local store needs no fsspec to be opened and read: ``python -m core list``
    answers without importing it (tests/test_store_layout.py checks this against fsspec's own)."""
    for scheme in ("file://", "local://"):
        if url.startswith(scheme):
            url = url[len(scheme) :]
            break
    else:
        if "://" in url or "::" in url:
            return None
    if url.startswith("~"):
        url = os.path.expanduser(url)
    elif not url.startswith("/"):
        url = f"{os.getcwd()}/{'' if url == '.' else url.removeprefix('./')}"
    return url.rstrip("/") or "/"


class ArtifactStore:
    """Files addressed by a path relative to one root folder or URL."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        root = None if storage_options else local_root(url)
        self.is_local = root is not None
        self._fs: AbstractFileSystem | None = None
        if root is None:
            import fsspec  # deferred: a local store reads its files directly (see local_root)
            from fsspec.implementations.local import LocalFileSystem

            self._fs, root = fsspec.core.url_to_fs(url, **_unhashed_bodies(url, storage_options or {}))
            self.is_local = isinstance(self._fs, LocalFileSystem)
            root = root.rstrip("/")
        self.root = root
        if self.is_local:
            os.makedirs(self.root, exist_ok=True)
        else:
            self.fs.makedirs(self.root, exist_ok=True)

    @property
    def fs(self) -> AbstractFileSystem:
        """The fsspec file system (a local store makes its own on first use: most reads need none)."""
        if self._fs is None:
            from fsspec.implementations.local import LocalFileSystem  # deferred: see local_root

            self._fs = LocalFileSystem()
        return self._fs

    def full_path(self, relpath: str) -> str:
        return f"{self.root}/{relpath}"

    def uri(self, relpath: str) -> str:
        """A URL for the file that fsspec (and people) can open."""
        if self.is_local:
            return f"file://{self.full_path(relpath)}"
        return self.fs.unstrip_protocol(self.full_path(relpath))

    def public(self, record: VersionRecord) -> VersionRecord:
        """A record as callers get it: with the ``uri`` of its model file."""
        record["uri"] = self.uri(record["path"])
        return record

    def local_path(self, relpath: str) -> str | None:
        """The file's path on this machine (for memory-mapping), or None for remote stores."""
        return self.full_path(relpath) if self.is_local else None

    def local_stat(self, relpath: str) -> os.stat_result | None:
        """``os.stat`` of a file in a local store (None for remote stores); FileNotFoundError if missing."""
        path = self.local_path(relpath)
        return os.stat(path) if path is not None else None

    def _open_new(self, path: str, exclusive: bool = True) -> IO[bytes]:
        # A local file is opened directly: fsspec's wrapper would add a Python call to each write.
        # Unbuffered and readable: the hashing writer reads it back behind the writer (HashingWriter).
        if self.is_local:
            return open(path, "x+b" if exclusive else "w+b", buffering=0)
        return cast("IO[bytes]", self.fs.open(path, "wb", block_size=SINGLE_PUT_MAX))

    def _write_synced(
        self, path: str, write: Callable[[IO[bytes]], object], written: Callable[[], object] | None = None
    ) -> tuple[int, str]:
        """Run ``write`` on a new file at ``path``, hashing as it goes; on disk (fsync) before it returns.

        ``written`` is called once the bytes are handed over, before the wait for the disk (or the
        upload's end): other work started there runs while the file is made durable."""
        with self._open_new(path) as raw, HashingWriter(raw) as writer:
            # A binary file at runtime; typeshed's RawIOBase just is not declared an IO[bytes].
            write(cast("IO[bytes]", writer))
            if written is not None:
                written()
            if self.is_local:
                writer.flush()  # the writer's thread hashes the last piece while the disk works
                os.fsync(raw.fileno())
            return writer.size, writer.sha256

    def write_new(
        self, relpath: str, write: Callable[[IO[bytes]], object], written: Callable[[], object] | None = None
    ) -> tuple[int, str]:
        """Write a file that must not exist yet; returns ``(size, sha256)``, hashed while written.

        On a local disk it is written as ``.NAME.part`` beside its final name, fsynced, then
        published without replacing anything (a hard link; a rename where links are missing). On
        an object store it is one put, whole or not at all, and nothing else: the caller's folder
        is a new random id (``layout.new_folder``), so no existence check is worth a request. The
        caller syncs the folder after.
        """
        final = self.full_path(relpath)
        if not self.is_local:
            try:
                return self._write_synced(final, write, written)
            except BaseException:
                self.discard(final)
                raise
        folder, base = os.path.split(final)
        for attempt in range(5):  # a failed save of the same name may remove the empty NAME folder meanwhile
            try:
                os.makedirs(folder, exist_ok=True)
                break
            except FileNotFoundError:
                if attempt == 4:
                    raise
        part = f"{folder}/.{base}.part"
        try:
            size, sha = self._write_synced(part, write, written)
            _publish(part, final, relpath)
        except BaseException:
            self.discard(part)
            raise
        return size, sha

    def write_part(self, relpath: str, write: Callable[[IO[bytes]], object]) -> tuple[str, int, str]:
        """Write the next content of ``relpath`` beside it (``.NAME.<random>.part``, fsynced);
        ``replace`` then puts it in place. The folder must exist: nothing is written for a version gone."""
        final = self.full_path(relpath)
        folder, base = final.rsplit("/", 1)
        part = f"{folder}/.{base}.{uuid.uuid4().hex[:12]}.part"
        try:
            size, sha = self._write_synced(part, write)
        except BaseException:
            self.discard(part)
            raise
        return part, size, sha

    def replace(self, part: str, relpath: str) -> None:
        """Put a finished part file in place of ``relpath`` (a rename on a local disk: atomic)."""
        final = self.full_path(relpath)
        if self.is_local:
            os.replace(part, final)
            self.sync_folder(relpath.rsplit("/", 1)[0] if "/" in relpath else "")
        else:
            self.fs.mv(part, final)

    def write_json(self, relpath: str, doc: Any) -> None:
        """Write (or replace) a small JSON file atomically: a synced temp file renamed over it."""
        data = json.dumps(doc, indent=1, allow_nan=True).encode()
        if not self.is_local:
            self.fs.pipe_file(self.full_path(relpath), data)
            return
        part, _, _ = self.write_part(relpath, lambda handle: handle.write(data))
        try:
            self.replace(part, relpath)
        except BaseException:
            self.discard(part)
            raise

    def write_jsons(self, docs: dict[str, Any]) -> None:
        """Write (or replace) small JSON files at once, each as ``write_json`` would.

        An object store gets one call, the puts concurrent in fsspec's event loop. A local disk
        writes all but the last on ``io_threads()`` and the last here: their fsyncs overlap. Every
        write is waited for before an error is raised.
        """
        if not docs:
            return
        if not self.is_local:
            self.fs.pipe(
                {self.full_path(p): json.dumps(doc, indent=1, allow_nan=True).encode() for p, doc in docs.items()}
            )
            return
        *beside, (last, last_doc) = docs.items()
        started = [io_threads().submit(self.write_json, path, doc) for path, doc in beside]
        try:
            self.write_json(last, last_doc)
        finally:
            wait(started)
        for future in started:
            future.result()

    def read_json(self, relpath: str) -> Any:
        """A JSON file of the store, parsed (FileNotFoundError when it is not there)."""
        return json.loads(self.read_bytes(relpath))

    def sync_folder(self, relpath: str) -> None:
        """fsync a local folder, so the names just created or renamed in it survive a power cut."""
        if not self.is_local:
            return
        fd = os.open(self.full_path(relpath) if relpath else self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def discard(self, path: str) -> None:
        """Remove a temporary or committed file if it is there (cleanup never raises)."""
        try:
            if self.fs.exists(path):
                self.fs.rm(path)
        except OSError:
            pass

    def read_bytes(self, relpath: str) -> bytes:
        path = self.full_path(relpath)
        if not self.is_local:
            # Another process may have rewritten it (the marker, a version.json): a cached listing's
            # ETag would make the read fail (S3 "PreconditionFailed"), so ask afresh, in one GET.
            self.fs.invalidate_cache(path)
            return bytes(self.fs.cat_file(path))
        with open(path, "rb") as handle:
            return handle.read()

    def read_hashed(self, relpath: str) -> tuple[bytes, str]:
        """A file's bytes and their sha256, hashed chunk by chunk as they arrive (one download)."""
        if self.is_local:  # one read into memory, no chunk copies
            data = self.read_bytes(relpath)
            return data, hashlib.sha256(data).hexdigest()
        digest = hashlib.sha256()
        chunks: list[bytes] = []
        with self.fs.open(self.full_path(relpath), "rb", block_size=_CHUNK) as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                chunks.append(chunk)
        return b"".join(chunks), digest.hexdigest()

    def sha256(self, relpath: str) -> str:
        """Stream the file through sha256 without holding it in memory."""
        digest = hashlib.sha256()
        with self.fs.open(self.full_path(relpath), "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def exists(self, relpath: str) -> bool:
        return self.fs.exists(self.full_path(relpath))

    def remove_if_empty(self, relpath: str) -> None:
        """Remove a local folder if nothing is in it (a name whose only save failed); never raises."""
        if self.is_local:
            with contextlib.suppress(OSError):
                os.rmdir(self.full_path(relpath))

    def delete_folder(self, relpath: str) -> int:
        """Remove a version's folder; returns the bytes freed."""
        path = self.full_path(relpath)
        if not self.fs.exists(path):
            return 0
        freed = sum(info.get("size", 0) or 0 for info in self.fs.find(path, detail=True).values())
        self.fs.rm(path, recursive=True)
        return int(freed)
