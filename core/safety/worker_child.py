"""The model worker's own side: its request loop, run in the sandboxed process only.

Started by ``core.safety.worker`` (``python -c _BOOT``, which enters ``core.safety.sandbox``'s
layers, then calls :func:`child_main`). A request loads bytes through the in-process loader
(``core.safety.loader``), calls a held model's ``predict``/``predict_proba``/``decision_function``,
or runs one of the application's operations on it.

The boundary: the sandbox machinery does not know what the application does with a model. The
operations beyond loading and calling (describe it for a record, score it, convert it to ONNX,
JSON parameters or another file format) live outside ``core.safety``, in the module named by
:data:`OPERATIONS_MODULE` (``core.worker_ops``), whose ``OPERATIONS`` table is imported by name,
inside the worker only, when it starts. So no module of ``core.safety`` imports the store, the
CLI or ``core.portable`` (module level or function level), and the worker still runs those
operations next to the model it holds (the server process never holds a stranger's model
object).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import errno
import functools
import importlib
import json
import mmap
import os
import pickle
import re
import resource
import socket
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import core.safety.allowlist as allowlist
from core.errors import InvalidParameterError
from core.errors import ModelShelfError as ShelfError
from core.safety.checks import n_features_of
from core.safety.limits import LoadLimits
from core.safety.loader import _load_untrusted
from core.safety.protocol import (
    _ERRORS,
    FREE_OPERATIONS,
    HELD_OPERATIONS,
    METHODS,
    _encode_array,
    _jsonable,
    _read_message,
    _write_message,
    map_shared,
)

#: The module whose ``OPERATIONS`` table holds what the worker does with a held model besides
#: calling it: ``describe(model) -> dict``, ``score(model, X, y) -> dict``, the ``HELD_OPERATIONS``
#: (``convert``, ``formats``, ``diagram``) as ``op(model, request)``; and the ``FREE_OPERATIONS``,
#: which need no model held: ``fit(request)``, a demo visitor's training, ``rebuild(request)``, a
#: JSON parameter file's. Named, never imported, by the safety package
#: (see the module docstring).
OPERATIONS_MODULE = "core.worker_ops"


@functools.cache
def _operations() -> dict[str, Callable[..., Any]]:
    """The operations table, imported by name in the worker (once, before the memory limit)."""
    return importlib.import_module(OPERATIONS_MODULE).OPERATIONS


# -- the worker process --------------------------------------------------------------------------


def _facts(loaded: Any) -> dict[str, Any]:
    describe_model = _operations()["describe"]

    model = loaded.model
    described = describe_model(model)
    return described | {
        "format": loaded.detected.format,
        "compression": loaded.detected.compression,
        "protocol": loaded.detected.protocol,
        "sklearn_version": loaded.sklearn_version,
        "warnings": list(loaded.warnings),
        "load_seconds": loaded.load_seconds,
        "n_features": n_features_of(model),
        "methods": [m for m in METHODS if hasattr(model, m)],
        "classes_array": _encode_array(np.asarray(model.classes_)) if hasattr(model, "classes_") else None,
    }


def _probe(name: str, args: dict[str, Any]) -> Any:
    """Test-only attempts, enabled per pool (``probes=True``): what a hostile model might try."""
    if name == "write_file":
        with open(args["path"], "w") as handle:
            handle.write("written by the worker")
            handle.flush()
        return "written"
    if name == "truncate_file":  # open(O_TRUNC): RLIMIT_FSIZE lets it through, Landlock does not
        os.close(os.open(args["path"], os.O_WRONLY | os.O_TRUNC))
        return "truncated"
    if name == "socket_inet":
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM):
            return "created"
    if name == "socket_unix":
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM):
            return "created"
    if name == "connect":
        with socket.create_connection(("127.0.0.1", int(args["port"])), timeout=5) as conn:
            conn.sendall(b"hello from the worker")
        return "connected"
    if name == "exec":
        os.execv("/bin/true", ["/bin/true"])
    if name == "segfault":
        ctypes.string_at(0)
    if name == "spin":  # one C call that never returns to Python: a regex with catastrophic backtracking
        re.match(r"(a+)+$", "a" * 64 + "b")
    if name == "allocate":
        return int(np.ones(int(args["bytes"]) // 8).sum())
    if name == "environment":
        return dict(os.environ)
    if name == "status":  # what the kernel says about this process
        fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        limits = {n: resource.getrlimit(getattr(resource, n)) for n in ("RLIMIT_FSIZE", "RLIMIT_CORE", "RLIMIT_NOFILE")}
        limits["RLIMIT_AS"] = resource.getrlimit(resource.RLIMIT_AS)
        return {k: fields[k].strip() for k in ("NoNewPrivs", "Seccomp", "CapEff", "CapBnd")} | {"rlimits": limits}
    if name == "read_file":
        with open(args["path"]) as handle:
            return handle.read()
    if name == "threads":
        return len(os.listdir("/proc/self/task"))
    if name == "change_shared":  # the file the parent writes model bytes to: read-only here
        fd, outcomes = int(args["data_fd"]), []
        for change in (lambda: os.pwrite(fd, b"written by the worker", 0), lambda: os.ftruncate(fd, 1)):
            try:
                change()
                outcomes.append("changed")
            except OSError as exc:
                outcomes.append(errno.errorcode.get(exc.errno or 0, "refused"))
        return outcomes
    raise InvalidParameterError(f"Unknown probe {name!r}")


class _NotLoaded(Exception):
    """The worker does not hold the model a request names (evicted, or a fresh worker)."""


class _Key:
    """A load's key, the sha256 of its bytes: the parent sends it after the bytes, having hashed
    them while this worker loads (two cores: the hash costs no wait), and None to keep nothing."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.read = False
        self.closed = False
        self.value: str | None = None

    def __call__(self) -> str | None:
        if not self.read:  # read once, also after a failed load: it must not pass for the next request
            self.read = True
            body = _read_message(self.fd, None, 1 << 16)
            self.closed = body is None
            self.value = None if body is None else pickle.loads(body)
        return self.value


def _serve(
    request: dict[str, Any], models: collections.OrderedDict, config: dict[str, Any], released: list[Any] | None = None
) -> Any:
    """One request's result. A load's model and those it evicts go to ``released``, freed once
    the reply is sent (a 200-tree forest takes milliseconds to free)."""
    released = [] if released is None else released
    classification_metrics = _operations()["score"]

    op = request["op"]
    if op == "load":
        data = request["data"]
        loaded = _load_untrusted(data, limits=LoadLimits(*request["limits"]))
        facts = _facts(loaded)
        key = request["key"]()
        if key is not None:
            models[key] = (loaded.model, facts)
            models.move_to_end(key)
        while len(models) > config["max_models"]:
            released.append(models.popitem(last=False))
        released.append(loaded)
        return facts
    if op == "probe":
        if not config.get("probes"):
            raise InvalidParameterError("This worker runs no probes")
        return _probe(request["name"], (request.get("args") or {}) | {"data_fd": config["data_fd"]})
    if op in FREE_OPERATIONS:  # a demo visitor's training, a parameter file's rebuild: no model held
        return _operations()[op](request)
    entry = models.get(request["sha256"])
    if entry is None:
        raise _NotLoaded
    models.move_to_end(request["sha256"])
    model = entry[0]
    if op in HELD_OPERATIONS:
        return _operations()[op](model, request)
    X = request["X"]
    if hasattr(X, "to_numpy") and not hasattr(model, "feature_names_in_"):
        X = X.to_numpy()  # as the store's model_input: bare arrays for models fitted on arrays
    if op == "score":
        return classification_metrics(model, X, request["y"])
    if op == "call" and request["method"] in METHODS and hasattr(model, request["method"]):
        return np.asarray(getattr(model, request["method"])(X))
    raise InvalidParameterError(f"Unknown worker operation {op!r}")


#: glibc's ``mallopt`` parameters, and what the worker sets them to (see :func:`_keep_freed_memory`).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_FREED_BYTES, _HEAP_UP_TO_BYTES = 256 << 20, 32 << 20


def _keep_freed_memory() -> None:
    """Let the next model reuse the memory the last one freed, instead of fresh pages.

    By default glibc hands a freed heap top back to the kernel at once, and a model's arrays
    (a tree's nodes: 200 KB) end up in pages of their own: so each load in a warm worker paid
    again to have the kernel zero and map ~11,000 pages for a 44 MB forest (10-25% of the
    worker's CPU for it, as measured). Arrays up to 32 MB now come from the heap, and up to
    256 MB of freed heap is kept for the next request (more is handed back); RLIMIT_AS bounds
    it all as before.
    """
    with contextlib.suppress(OSError, AttributeError):  # not glibc: its defaults stay
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, _HEAP_UP_TO_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_FREED_BYTES)


def child_main(box: Any, report: dict[str, Any], config: dict[str, Any], rfd: int, wfd: int) -> None:
    """The worker's loop: one request in, one JSON reply out, until the parent closes the pipe."""
    allowlist.allowed_globals()  # built once, before any file's clock starts
    _operations()  # imported before the memory limit, not during a request
    _keep_freed_memory()

    layers = set(config["layers"])
    off = {"active": False, "reason": "turned off for this worker"}
    if "memory" in layers:
        ok, reason = box.set_memory_limit(config["memory_mb"])
        report["memory"] = {"active": ok, "reason": reason}
    else:
        report["memory"] = off
    report["cpu"] = (
        {"active": True, "reason": "RLIMIT_CPU set before each request (SIGXCPU ends the worker)"}
        if "cpu" in layers
        else off
    )
    threads = len(os.listdir("/proc/self/task"))
    _write_message(wfd, json.dumps({"ready": True, "layers": report, "pid": os.getpid(), "threads": threads}).encode())
    models: collections.OrderedDict = collections.OrderedDict()
    released: list[Any] = []
    while True:
        body = _read_message(rfd, None, 1 << 62)
        if body is None:
            return
        request = pickle.loads(body)  # from the parent, which the worker trusts
        size = request.pop("data_size", None)
        if size is not None:
            request["data"] = map_shared(config["data_fd"], int(size))
        key = request["key"] = _Key(rfd) if request.pop("key_follows", False) else None
        if "cpu" in layers:
            box.set_cpu_budget(float(request.get("cpu_s") or 60))
        reply: dict[str, Any]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = _serve(request, models, config, released)
            reply = {"ok": True, "result": result}
        except MemoryError:
            reply = {"ok": False, "kind": "memory", "message": ""}
        except _NotLoaded:
            reply = {"ok": False, "kind": "missing", "message": ""}
        except ShelfError as exc:  # its family's name (PolicyError -> UnsafeModelError...), as the parent knows them
            kind = next((c.__name__ for c in type(exc).__mro__ if c.__name__ in _ERRORS), "FormatError")
            reply = {"ok": False, "kind": kind, "message": str(exc)}
        except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
            kind = "data" if isinstance(exc, (ValueError, TypeError, AttributeError, LookupError)) else "other"
            reply = {"ok": False, "kind": kind, "message": f"{type(exc).__name__}: {exc}"}
        if key is not None:
            key()  # read even after a failed load: the frame must not pass for the next request
            if key.closed:
                return  # the parent is gone
        shared = request.pop("data", None)
        if isinstance(shared, mmap.mmap):
            shared.close()  # before the reply: the parent may shrink the file once it has it
        reply["held"] = list(models)
        _write_message(wfd, json.dumps(reply, default=_jsonable, allow_nan=True).encode())
        # Freed after the reply, not before it: the file's bytes, the rows, evicted models.
        del body, request, shared
        released.clear()
