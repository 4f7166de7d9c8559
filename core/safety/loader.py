"""The in-process loader for model bytes that did not come from this store's own save.

Private to the sandboxed worker: ``core.safety.worker_child`` runs :func:`_load_untrusted` inside
the worker process; everything else calls the worker-backed ``core.safety.load_untrusted``. (One
exception, asked for explicitly: ``Store.load(..., trust=True)`` of an imported version outside
demo mode.) Nothing else in ModelShelf calls ``pickle.load``, ``joblib.load`` or
``skops.io.load`` on bytes from outside (``core.formats.load_trusted`` is for the store's own,
sha256-checked files).

How a stranger's file is kept from running code:

* pickle and joblib files are read by a restricted unpickler (``core.safety.unpickler``): globals
  resolve only through ``core.safety.allowlist``; only a short list of them may be *called*
  (``core.safety.calls``), each with its arguments checked; instances of allowlisted classes are
  made with ``cls.__new__(cls)`` and no arguments; a file may not set attributes on a class or
  function; array states must match their shapes. joblib's compressed files are decompressed with
  a bound on the output (``core.safety.archives``).
* skops files (``core.safety.skops_load``): only types on the allowlist are trusted.
* afterwards: a fitted scikit-learn estimator with ``predict``; what it holds checked against
  ``core.safety.policy`` (no code outside reviewed slots, dispatch names from scikit-learn); every
  tree, boosted tree, neighbours index, support-vector set and sparse matrix in it checked
  (``core.safety.checks_structures``) before anything calls ``predict``.

Limits (``core.safety.limits.LoadLimits``): file size, decompressed size, and a time limit. The
time limit is checked between pickle opcodes (so a file cannot keep the unpickler busy), and the
whole load runs in a worker thread that the caller stops waiting for at the deadline. Python
cannot kill a thread: a single C call that runs long (a huge allocation, skops' own loader)
finishes in the background and its result is thrown away; the caller gets its error on time.
"""

from __future__ import annotations

import io
import mmap
import re
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import core.safety.allowlist as allowlist
from core.describe import class_path
from core.environment import fold_version_warnings
from core.errors import FormatError, InvalidParameterError, ModelShelfError, UnsafeModelError
from core.formats import Detected, detect_format
from core.safety.archives import _inflate
from core.safety.checks import check_fitted_estimator, check_nesting
from core.safety.checks_structures import validate_model
from core.safety.limits import LoadLimits, _Guard
from core.safety.policy import check_model_policy
from core.safety.skops_load import _load_skops, _skops_version
from core.safety.unpickler import MAX_NESTING, RestrictedUnpickler, _joblib_unpickler, _too_deep

#: What a scikit-learn version read from a stranger's file may look like before it is shown anywhere.
_VERSION = re.compile(r"[0-9]+(\.[0-9]+){0,3}([.+-]?[A-Za-z0-9]+){0,3}")


@dataclass
class UntrustedModel:
    """A model from an outside file that passed every check, with what was learnt about it."""

    model: Any
    detected: Detected
    sklearn_version: str | None
    warnings: list[str] = field(default_factory=list)
    estimator: str = ""
    load_seconds: float = 0.0


# -- the three formats ---------------------------------------------------------------------------


def _unpickle(data: bytes | mmap.mmap, detected: Detected, guard: _Guard) -> Any:
    handle: io.BytesIO | mmap.mmap
    if detected.format == "joblib" and detected.compression:
        handle = _inflate(_as_bytes(data), detected.compression, guard)
        if handle.read(1) != b"\x80":
            raise FormatError("The decompressed file is not a joblib pickle")
        handle.seek(0)
    elif isinstance(data, mmap.mmap):
        data.seek(0)
        handle = data  # read in place: every read copies out of the map, nothing keeps a view of it
    else:
        handle = io.BytesIO(data)
    cls = RestrictedUnpickler if detected.format == "pickle" else _joblib_unpickler()
    try:
        return cls(handle, guard).load()
    except (ModelShelfError, MemoryError):
        raise
    except RecursionError as exc:
        raise _too_deep() from exc
    except Exception as exc:  # a malformed stream fails in many ways: one message
        raise FormatError(
            f"The file is damaged or cut short: its pickle data is malformed near byte {handle.tell():,}"
        ) from exc


# -- the entry point -----------------------------------------------------------------------------


def _as_bytes(data: bytes | mmap.mmap) -> bytes:
    """The bytes themselves, for the readers that take nothing else (zip archives, decompressors)."""
    return data if isinstance(data, bytes) else data[:]


def _load(data: bytes | mmap.mmap, detected: Detected, guard: _Guard) -> tuple[Any, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = _load_skops(_as_bytes(data), guard) if detected.format == "skops" else _unpickle(data, detected, guard)
        check_nesting(model, MAX_NESTING, guard.tick)
        check_model_policy(model, guard.tick)
        validate_model(model, guard.tick)
        check_fitted_estimator(model)
    # A ResourceWarning is about this process's own files and connections (one collected while the
    # load ran, from any thread: the record is process-wide), never about the model: not reported.
    return model, [w for w in caught if not issubclass(w.category, ResourceWarning)]


def _run_with_deadline(guard: _Guard, work: Callable[[], Any]) -> Any:
    """Run ``work`` in a worker thread; stop waiting at the deadline (see the module docstring)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="modelshelf-safe-load", daemon=True)
    worker.start()
    worker.join(max(guard.deadline - time.monotonic(), 0.0) + 0.5)
    if worker.is_alive():
        guard.cancelled.set()  # the unpickler stops at its next opcode; a C call runs to its end
        raise UnsafeModelError(
            f"Loading the file took longer than the {guard.limits.timeout_s:g} s limit, so it was stopped"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _as_error(exc: BaseException) -> ModelShelfError:
    """Whatever a damaged file makes the loader raise, as one message for the user."""
    if isinstance(exc, ModelShelfError):
        return exc
    if isinstance(exc, RecursionError):
        return UnsafeModelError("The file nests objects too deeply to be a model")
    if isinstance(exc, MemoryError):
        return UnsafeModelError("The file asks for more memory than a model should")
    if isinstance(exc, ImportError):
        return FormatError(f"The file needs a module that is not available here ({exc})")
    text = " ".join(str(exc).split())[:200]
    return FormatError(f"The file is damaged or not a model file ({type(exc).__name__}: {text})")


def _load_untrusted(data: bytes | mmap.mmap, *, limits: LoadLimits | None = None) -> UntrustedModel:
    """Load model bytes from outside the store without running any of the file's code.

    ``data`` may also be a read-only map of them (the worker maps the shared file the parent
    wrote: copying 44 MB into fresh memory cost it 25 ms); a pickle or joblib stream is then
    read straight from the map. Raises FormatError (not a model, damaged, unsupported),
    UnsafeModelError (asks for something outside the allowlist, a crafted structure, over a
    limit) or another ModelShelfError, always with one message fit to show a user; never any
    other exception.
    """
    if not isinstance(data, (bytes, bytearray, memoryview, mmap.mmap)):
        raise InvalidParameterError(f"load_untrusted takes the file's bytes, not a {type(data).__name__}")
    if not isinstance(data, (bytes, mmap.mmap)):
        data = bytes(data)
    limits = limits or LoadLimits.from_settings()
    if len(data) > limits.max_bytes:
        raise UnsafeModelError(
            f"The file is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes, so it was refused"
        )
    try:
        detected = detect_format(data)
    except ModelShelfError:
        raise
    except Exception as exc:  # zipfile raises more than BadZipFile on a crafted header
        raise FormatError("The file looks like a zip archive but is damaged or of an unsupported kind") from exc
    allowlist.allowed_globals()  # built once per process, before the file's clock starts
    guard = _Guard(limits)
    started = time.perf_counter()
    try:
        model, caught = _run_with_deadline(guard, lambda: _load(data, detected, guard))
    except Exception as exc:  # turned into one ModelShelfError
        error = _as_error(exc)
        if error is exc:
            raise  # already one message for the user, with its own cause
        raise error from exc
    version = _skops_version(_as_bytes(data)) if detected.format == "skops" else None
    if version is None and guard.sklearn_versions:
        version = guard.sklearn_versions[-1]  # the outermost object's state is set last
    return UntrustedModel(
        model=model,
        detected=detected,
        sklearn_version=version if version is not None and _VERSION.fullmatch(version) else None,
        warnings=fold_version_warnings(caught),
        estimator=class_path(model),
        load_seconds=time.perf_counter() - started,
    )
