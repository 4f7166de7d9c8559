"""Model file formats: write pickle, joblib or skops; tell a file's format from its bytes.

The tutorial's two formats (pickle, joblib) plus skops, whose files can be inspected before
anything is loaded. Writing goes through a hashing writer, so the sha256 of a saved file costs
no second read. Loading here is for the store's own, hash-checked files; bytes from anyone
else go through ``core.safety``.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
import pickle
import pickletools
import queue
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from core.errors import FormatError, InvalidParameterError

Format = Literal["pickle", "joblib", "skops"]
FORMATS: tuple[str, ...] = ("pickle", "joblib", "skops")
#: What a public demo's visitor may save as: both are written as they go, while skops builds the
#: whole file in memory at a cost that grows with the model's objects (a boosted model of many
#: small trees is a small pickle and a skops file many times larger). Visitors download skops,
#: converted in the model worker.
VISITOR_FORMATS: tuple[str, ...] = ("pickle", "joblib")
EXTENSIONS = {"pickle": "pkl", "joblib": "joblib", "skops": "skops"}
PICKLE_PROTOCOL = 5
#: What a save writes unless told: a protocol-5 pickle. Measured beside joblib on the bench
#: workloads (``python -m bench --only format``), it saves and loads faster for the same size and
#: memory; joblib stays the choice for compression and memory-mapped loads.
DEFAULT_FORMAT: Format = "pickle"


def default_format(compress: int = 0) -> str:
    """The format of a save that names none: joblib when compression is asked for, else the default."""
    return "joblib" if compress else DEFAULT_FORMAT


#: How joblib marks its compressed files (joblib/compressor.py), first bytes -> method.
_JOBLIB_COMPRESSED = (
    (b"\x78", "zlib"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ", "xz"),
    (b"\x5d\x00", "lzma"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"ZF", "zlib-legacy"),
)
_ZIP_MAGIC = b"PK\x03\x04"


class HashingWriter(io.RawIOBase):
    """A write-only file that hashes and counts what passes through it on the way to ``target``.

    A large model is hashed by a thread of its own while it is pickled, written and fsynced
    (``hashlib`` lets go of the GIL while it hashes), instead of adding a SHA-256 pass (as long
    as the pickling itself for a forest: ``sha256_forest`` in ``python -m bench``) to every save.
    The thread is fed one of two ways:

    - **A local file open for reading too** (``open(path, "x+b", buffering=0)``, as the store
      opens its files): the thread reads the file's own bytes back from the page cache, a few MB
      at a time, behind the writer, which never waits for it and has no hashing to do. Handed
      each of the pickler's buffers instead (400 for a 43 MB forest), it took the GIL for each,
      and each hand-off stalled the pickler (``durable_save_forest`` in ``python -m bench``).
      What is hashed is what the file holds: a file cut short under the writer fails the hash.
      A file too small to be worth a thread is read back when the hash is asked for.
    - **Any other target** (an object store's upload buffer): past the first megabyte the thread
      takes the written buffers. It only keeps objects nobody can change under it: ``bytes`` and
      the pickler's ``PickleBuffer`` views of the model's own arrays; any other buffer is copied
      first (a caller may reuse it after ``write`` returns). Order is kept: once the thread runs,
      everything goes through its queue.
    """

    _THREAD_AFTER = 1 << 20  # hashed here up to this, when the thread takes buffers
    _FILE_THREAD_AFTER = 256 << 10  # read back when the hash is asked for, up to this
    _PIECE = 4 << 20  # the most the thread reads back at once
    _WAKE_AT = 1 << 20  # how far the writer gets ahead of a waiting thread before it wakes it

    def __init__(self, target: IO[bytes]) -> None:
        super().__init__()
        self._target = target
        self._sha = hashlib.sha256()
        self._fd = target.fileno() if isinstance(target, io.FileIO) and target.readable() else None
        self._queue: queue.SimpleQueue[Any] | None = None
        self._wake = threading.Condition()
        self._closing = False
        self._hashed = 0  # read back and hashed (a local file)
        self._wanted = 0  # what ``flush`` asked the thread to hash without waiting for more
        self._idle = False  # the thread waits to be woken (mostly it is behind, reading)
        self._error: OSError | None = None
        self._thread: threading.Thread | None = None
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if self._fd is None:
            self._hand_over(data, view)
        rest = view
        while rest.nbytes:  # an unbuffered file may take part of it
            rest = rest[self._target.write(rest) or 0 :]
        self.size += view.nbytes
        if self._fd is not None:
            if self._thread is None and self.size > self._FILE_THREAD_AFTER:
                self._start(self._read_behind)
            elif self._idle and self.size - self._hashed >= self._WAKE_AT:  # unlocked: a stale flag only delays it
                with self._wake:
                    self._wake.notify()
        return view.nbytes

    def _hand_over(self, data: Any, view: memoryview) -> None:
        """Hash a buffer here, or hand it to the thread (a target that cannot be read back)."""
        if self._thread is None and self.size + view.nbytes > self._THREAD_AFTER:
            self._queue = pending = queue.SimpleQueue[Any]()

            def hash_all() -> None:
                while (item := pending.get()) is not None:
                    self._sha.update(item)

            self._start(hash_all)
        if self._queue is None:
            self._sha.update(view)
        else:
            self._queue.put(view if isinstance(data, bytes | pickle.PickleBuffer) else bytes(view))

    def _start(self, work: Any) -> None:
        self._thread = threading.Thread(target=work, name="modelshelf-sha256", daemon=True)
        self._thread.start()

    def _hash_back(self, end: int, piece: memoryview) -> None:
        """Hash the file's own bytes from where the hash stands up to ``end``, read back a piece at a time."""
        assert self._fd is not None  # only for a readable file
        while self._hashed < end:
            n = os.preadv(self._fd, [piece[: min(piece.nbytes, end - self._hashed)]], self._hashed)
            if n == 0:
                raise OSError(f"the file is shorter than the {end} bytes written to it")
            self._sha.update(piece[:n])
            self._hashed += n

    def _read_behind(self) -> None:
        """The thread's loop for a local file. It is woken only when it has caught up and waits."""
        piece = memoryview(bytearray(self._PIECE))
        while True:
            with self._wake:
                while not self._closing and self._hashed >= self._wanted and self.size - self._hashed < self._WAKE_AT:
                    self._idle = True
                    self._wake.wait()
                self._idle = False
                end, last = self.size, self._closing
            try:
                self._hash_back(end, piece)
            except OSError as exc:
                self._error = exc
                return
            if last:
                return

    def _finish(self) -> None:
        """Wait for the hashing thread to take in everything written (a no-op without one)."""
        if self._thread is None:
            return
        if self._queue is not None:
            self._queue.put(None)
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join()
        self._queue = self._thread = None

    def flush(self) -> None:
        """Have the thread hash everything written so far now: a save flushes before its fsync,
        so the last piece is hashed while the disk works rather than after."""
        if self._thread is not None and self._fd is not None:
            with self._wake:
                self._wanted = self.size
                self._wake.notify()
        if not self._target.closed:
            self._target.flush()

    def close(self) -> None:
        self._finish()  # never leaves the thread waiting
        super().close()

    def tell(self) -> int:
        return self.size

    @property
    def sha256(self) -> str:
        self._finish()
        if self._error is not None:
            raise self._error
        if self._fd is not None and self._hashed < self.size:  # a small file: read back here
            self._hash_back(self.size, memoryview(bytearray(min(self._PIECE, self.size - self._hashed))))
        return self._sha.hexdigest()


class CountingWriter(io.RawIOBase):
    """Counts what is written and keeps none of it: the size a model takes in a format, with no
    file and no hash (``HashingWriter`` would hash what nobody reads)."""

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes
        self.size += n
        return n


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_format(fmt: str, compress: int) -> None:
    """Reject an unknown format or a compression level the format cannot honour."""
    if fmt not in FORMATS:
        raise InvalidParameterError(f"Unknown format {fmt!r}; choose one of: " + ", ".join(FORMATS))
    if not isinstance(compress, int) or isinstance(compress, bool) or not 0 <= compress <= 9:
        raise InvalidParameterError(f"Invalid value {compress!r} for compress: expected an integer in [0, 9]")
    if compress and fmt != "joblib":
        raise InvalidParameterError(f"compress applies to the joblib format only, not to {fmt}")


def write_model(model: Any, fileobj: IO[bytes], fmt: str = "joblib", compress: int = 0) -> None:
    """Serialise ``model`` into an open binary file in the chosen format."""
    check_format(fmt, compress)
    if fmt == "pickle":
        pickle.dump(model, fileobj, protocol=PICKLE_PROTOCOL)
    elif fmt == "joblib":
        import joblib  # deferred: the store's light modules import formats; joblib brings numpy

        joblib.dump(model, fileobj, compress=compress)
    else:
        import skops.io  # deferred: scikit-learn and ~0.5 s more, for skops files only

        fileobj.write(skops.io.dumps(model))


def dumps(model: Any, fmt: str = "joblib", compress: int = 0) -> bytes:
    """The bytes of ``model`` in a format: for downloads and format comparisons."""
    buffer = io.BytesIO()
    write_model(model, buffer, fmt, compress)
    return buffer.getvalue()


@dataclass(frozen=True)
class Detected:
    """What the bytes of a file say it is."""

    format: Format
    compression: str | None = None
    protocol: int | None = None


def detect_format(data: bytes | mmap.mmap) -> Detected:
    """Tell pickle, joblib (compressed or not) and skops apart by their bytes, not their name.

    ``data`` may be a read-only map of the bytes (the model worker's shared file): only slices
    and ``find`` are used, which mean the same on both (``in`` on a map tests single bytes).
    """
    if not len(data):
        raise FormatError("The file is empty")
    if data[: len(_ZIP_MAGIC)] == _ZIP_MAGIC:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile as exc:
            raise FormatError("The file looks like a zip archive but is damaged or truncated") from exc
        if "schema.json" in names:
            return Detected("skops", compression="zip")
        raise FormatError("The file is a zip archive but not a skops model (it has no schema.json)")
    if data[:1] == b"\x80" and len(data) > 1 and 2 <= data[1] <= 5:
        is_joblib = data.find(b"joblib.numpy_pickle") >= 0 or data.find(b"NumpyArrayWrapper") >= 0
        return Detected("joblib" if is_joblib else "pickle", protocol=data[1])
    for prefix, method in _JOBLIB_COMPRESSED:
        if data[: len(prefix)] == prefix:
            return Detected("joblib", compression=method)
    if _is_legacy_pickle(data):
        return Detected("pickle", protocol=0 if data[:1] != b"}" else 1)
    raise FormatError("Not a model file: the bytes are neither pickle, joblib nor skops")


def _is_legacy_pickle(data: bytes | mmap.mmap) -> bool:
    """Protocol 0/1 pickles have no header: accept them only if the opcodes parse to STOP."""
    if data[:1] not in b"(c]}ISVNFL)Kde":
        return False
    try:
        for opcode, _arg, _pos in pickletools.genops(io.BytesIO(data[: 64 * 1024 * 1024])):
            if opcode.name == "STOP":
                return True
    except Exception:  # noqa: BLE001 - any parse failure means "not a pickle"
        return False
    return False


def load_trusted(source: bytes | str, fmt: str, mmap: bool = False) -> Any:
    """Deserialise a file this store wrote itself (its sha256 already checked by the caller).

    ``source`` is the file's bytes or, for a memory-mapped joblib load, its local path.
    """
    if fmt == "pickle":
        if isinstance(source, bytes):
            return pickle.loads(source)
        with open(source, "rb") as handle:  # read straight into the arrays: no copy of the whole file first
            return pickle.load(handle)
    if fmt == "joblib":
        import joblib  # deferred: the store's light modules import formats; joblib brings numpy

        target = io.BytesIO(source) if isinstance(source, bytes) else source
        return joblib.load(target, mmap_mode="r" if mmap and not isinstance(source, bytes) else None)
    if fmt == "skops":
        import skops.io  # deferred: scikit-learn and ~0.5 s more, for skops files only

        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        return skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    raise FormatError(f"Unknown format {fmt!r}")
