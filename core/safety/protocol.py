"""What crosses the pipe between the server and a model worker: length-prefixed frames, JSON replies.

What comes back from a worker is data, never a pickle: JSON (facts, metrics) and arrays in numpy's
``.npy`` format read with ``allow_pickle=False`` (:func:`_decode_hook`). What goes in (the bytes,
the rows to score) is pickled by the parent, which the worker trusts. Shared by both sides
(``core.safety.worker`` and ``core.safety.worker_child``).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import mmap
import os
import select
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import (
    DatasetError,
    FormatError,
    InvalidParameterError,
    ModelShelfError,
    TrainingStoppedError,
    UnsafeModelError,
)

METHODS = ("predict", "predict_proba", "decision_function")
#: Operations of the operations table (``core.worker_ops``) on a held model, called as ``op(model, request)``.
HELD_OPERATIONS = ("convert", "formats", "diagram")
#: Operations that hold no model, called as ``op(request)``: a demo's fit, a JSON parameter file's rebuild.
FREE_OPERATIONS = ("fit", "rebuild")
_LENGTH = struct.Struct(">Q")
_MAX_REPLY = 1 << 29


# -- framing ---------------------------------------------------------------------------------------


def _write_message(fd: int, body: bytes) -> None:
    _write_all(fd, memoryview(_LENGTH.pack(len(body))))
    _write_all(fd, memoryview(body))


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        written = os.write(fd, view[: 1 << 20])
        view = view[written:]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes | None:
    """``size`` bytes from ``fd``; None on end of file; TimeoutError past ``deadline``."""
    chunks = bytearray()
    while len(chunks) < size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise TimeoutError
        chunk = os.read(fd, min(size - len(chunks), 1 << 20))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def map_shared(fd: int, size: int) -> bytes | mmap.mmap:
    """The request's model bytes: a read-only map of the shared-memory file the parent wrote them to.

    No copy: the worker's loader reads the file's own pages in place (a copy into fresh memory,
    after a pipe that cost 150 ms for a 44 MB forest, still cost 25 ms). The caller closes the
    map before it replies; the parent changes the file only after the reply.
    """
    available = os.fstat(fd).st_size
    if available < size:
        raise ValueError(f"the shared model bytes end at {available:,} of {size:,}")
    if size == 0:
        return b""  # a map cannot be empty; the loader refuses empty files itself
    return mmap.mmap(fd, size, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0), prot=mmap.PROT_READ)


def _widen_pipe(fd: int) -> None:
    """Let one write carry up to 1 MiB: the default pipe holds 64 KiB, so a 44 MB model took
    some 700 wake-ups of each side."""
    with contextlib.suppress(OSError, ValueError):
        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), min(limit, 1 << 20))


def _read_message(fd: int, deadline: float | None, limit: int) -> bytes | None:
    head = _read_exact(fd, _LENGTH.size, deadline)
    if head is None:
        return None
    (size,) = _LENGTH.unpack(head)
    if size > limit:
        raise ValueError(f"a reply of {size:,} bytes (the limit is {limit:,})")
    return _read_exact(fd, size, deadline)


# -- what crosses back: JSON and .npy arrays ------------------------------------------------------


def _jsonable(value: Any) -> Any:
    from core.datasets import to_jsonable  # deferred: pandas; the parent's core.safety stays on numpy

    if isinstance(value, np.ndarray):
        return _encode_array(value)
    plain = to_jsonable(value)
    return plain if plain is not value or value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _encode_array(array: np.ndarray) -> dict[str, Any]:
    if array.dtype.hasobject:
        return {"__list__": [_jsonable(x) for x in array.ravel().tolist()], "shape": list(array.shape)}
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return {"__npy__": base64.b64encode(buffer.getvalue()).decode("ascii")}


def _decode_hook(obj: dict[str, Any]) -> Any:
    if "__npy__" in obj:
        array = np.load(io.BytesIO(base64.b64decode(obj["__npy__"])), allow_pickle=False)
        if array.dtype.kind not in "biufcUS":
            raise ValueError(f"unexpected array dtype {array.dtype}")
        return array
    if "__list__" in obj:
        items = obj["__list__"]
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array.reshape([int(n) for n in obj.get("shape", [len(items)])])
    return obj


# -- errors, by the names both sides know --------------------------------------------------------


_ERRORS: dict[str, type[ModelShelfError]] = {
    "FormatError": FormatError,
    "UnsafeModelError": UnsafeModelError,
    "DatasetError": DatasetError,
    "InvalidParameterError": InvalidParameterError,
    "TrainingStoppedError": TrainingStoppedError,  # a demo's fit over a limit the worker itself checks
}
