"""An isolated worker process for strangers' model files: a crash costs one worker, not the server.

No process that serves users unpickles bytes the store did not save itself. A model file from
elsewhere is sent over a pipe to a worker: a fresh interpreter (fork + exec of
``sys.executable``, like multiprocessing's ``spawn``: no copy of the server's threads or
memory, no inherited descriptor but its three pipes, a clean environment without the server's
secrets, ``/`` as its working directory) that applies ``core.sandbox``'s layers before it
imports numpy, then runs the in-process loader (``core.safe_load.load_untrusted`` and
``core.model_checks``) and keeps the model warm, keyed by the bytes' sha256.

What comes back is data, never a pickle: JSON (facts, metrics) and arrays in numpy's ``.npy``
format read with ``allow_pickle=False``. What goes in (the bytes, the rows to score) is
pickled by the parent, which the worker trusts.

A worker that segfaults, runs past the wall deadline (it is killed) or past its memory budget
ends the request with one clear ``UnsafeModelError``; the pool starts a fresh worker for the
next call. No import of the store, the CLI or ``core.portable`` here.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import io
import json
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core import sandbox
from core.errors import DatasetError, FormatError, InvalidParameterError, ModelShelfError, UnsafeModelError
from core.safe_load import LoadLimits

#: Every layer a worker can apply; a pool may turn some off (the tests check them one at a time).
ALL_LAYERS = frozenset({"no_new_privs", "capabilities", "threads", "rlimits", "landlock", "seccomp", "memory", "cpu"})
METHODS = ("predict", "predict_proba", "decision_function")
_LENGTH = struct.Struct(">Q")
_MAX_REPLY = 1 << 29
_START_TIMEOUT_S = 120.0
_GRACE_S = 1.0
_CORE_DIR = str(Path(__file__).resolve().parent)
_ROOT = str(Path(__file__).resolve().parent.parent)

_BOOT = """
import importlib.util, json, os, sys
root, sandbox_path, config = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
rfd, wfd = os.dup(0), os.dup(1)
os.dup2(2, 1)  # print() and stray output go to stderr, never into the reply pipe
null = os.open("/dev/null", os.O_RDONLY)
os.dup2(null, 0)
os.close(null)
sys.path.insert(0, root)
importlib.util.find_spec("core")  # lists the project folder now: it is not readable afterwards
spec = importlib.util.spec_from_file_location("_modelshelf_sandbox", sandbox_path)
box = importlib.util.module_from_spec(spec)
spec.loader.exec_module(box)
report = box.enter(set(config["layers"]), config["read_only"])
from core.worker import child_main
child_main(box, report, config, rfd, wfd)
"""


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


def _widen_pipe(fd: int) -> None:
    """Let one write carry up to 1 MiB: the default pipe holds 64 KiB, so a 44 MB model took
    some 700 wake-ups of each side."""
    import fcntl

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
    from core.datasets import to_jsonable

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


# -- the worker process --------------------------------------------------------------------------


def _facts(loaded: Any) -> dict[str, Any]:
    from core.describe import describe_model
    from core.model_checks import n_features_of

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
    import ctypes
    import socket

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
        import re

        re.match(r"(a+)+$", "a" * 64 + "b")
    if name == "allocate":
        return int(np.ones(int(args["bytes"]) // 8).sum())
    if name == "environment":
        return dict(os.environ)
    if name == "status":  # what the kernel says about this process
        import resource

        fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        limits = {n: resource.getrlimit(getattr(resource, n)) for n in ("RLIMIT_FSIZE", "RLIMIT_CORE", "RLIMIT_NOFILE")}
        limits["RLIMIT_AS"] = resource.getrlimit(resource.RLIMIT_AS)
        return {k: fields[k].strip() for k in ("NoNewPrivs", "Seccomp", "CapEff", "CapBnd")} | {"rlimits": limits}
    if name == "read_file":
        with open(args["path"]) as handle:
            return handle.read()
    if name == "threads":
        return len(os.listdir("/proc/self/task"))
    raise InvalidParameterError(f"Unknown probe {name!r}")


def _convert(model: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The model in another form, made here so the serving process never holds the object.

    ``onnx`` (with the parity check on the given rows), ``json`` (plain parameters, exactness
    checked) or a model file format; bytes travel base64-encoded inside the JSON reply.
    """
    to, X, names = request["to"], request.get("X"), request.get("names")
    if to == "onnx":
        from core.portable.onnx_export import export_onnx

        made = export_onnx(model, X, names)
        parity = made.parity.to_dict() if made.parity is not None else None
        return {"data": base64.b64encode(made.data).decode("ascii"), "layout": made.layout, "parity": parity}
    if to == "json":
        from core.portable.params_json import export_params

        exported = export_params(model, X, names)
        return {"text": exported.text, "rows_checked": exported.rows_checked, "exact": exported.exact}
    if to in ("pickle", "joblib", "skops"):
        from core import formats

        return {"data": base64.b64encode(formats.dumps(model, to)).decode("ascii")}
    raise InvalidParameterError(f"Unknown conversion {to!r}")


class _NotLoaded(Exception):
    """The worker does not hold the model a request names (evicted, or a fresh worker)."""


def _serve(request: dict[str, Any], models: collections.OrderedDict, config: dict[str, Any]) -> Any:
    from core.metrics import classification_metrics
    from core.safe_load import load_untrusted

    op = request["op"]
    if op == "load":
        data = request["data"]
        loaded = load_untrusted(data, limits=LoadLimits(*request["limits"]))
        facts = _facts(loaded)
        models[request["sha256"]] = (loaded.model, facts)
        models.move_to_end(request["sha256"])
        while len(models) > config["max_models"]:
            models.popitem(last=False)
        return facts
    if op == "probe":
        if not config.get("probes"):
            raise InvalidParameterError("This worker runs no probes")
        return _probe(request["name"], request.get("args") or {})
    entry = models.get(request["sha256"])
    if entry is None:
        raise _NotLoaded
    models.move_to_end(request["sha256"])
    model = entry[0]
    if op == "convert":
        return _convert(model, request)
    X = request["X"]
    if hasattr(X, "to_numpy") and not hasattr(model, "feature_names_in_"):
        X = X.to_numpy()  # as core.store.model_input: bare arrays for models fitted on arrays
    if op == "score":
        return classification_metrics(model, X, request["y"])
    if op == "call" and request["method"] in METHODS and hasattr(model, request["method"]):
        return np.asarray(getattr(model, request["method"])(X))
    raise InvalidParameterError(f"Unknown worker operation {op!r}")


def child_main(box: Any, report: dict[str, Any], config: dict[str, Any], rfd: int, wfd: int) -> None:
    """The worker's loop: one request in, one JSON reply out, until the parent closes the pipe."""
    import warnings

    from core import allowlist
    from core.errors import ModelShelfError as ShelfError

    allowlist.allowed_globals()  # built once, before any file's clock starts
    # Imported before the memory limit, not during a request.
    import core.describe
    import core.frames
    import core.metrics  # noqa: F401

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
    while True:
        body = _read_message(rfd, None, 1 << 62)
        if body is None:
            return
        request = pickle.loads(body)  # from the parent, which the worker trusts
        if request.pop("has_data", False):
            request["data"] = _read_message(rfd, None, 1 << 62)
        if "cpu" in layers:
            box.set_cpu_budget(float(request.get("cpu_s") or 60))
        reply: dict[str, Any]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = _serve(request, models, config)
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
        reply["held"] = list(models)
        del body, request  # the file's bytes and the rows: not kept while the worker idles
        _write_message(wfd, json.dumps(reply, default=_jsonable, allow_nan=True).encode())


# -- the parent side -----------------------------------------------------------------------------


_ERRORS: dict[str, type[ModelShelfError]] = {
    "FormatError": FormatError,
    "UnsafeModelError": UnsafeModelError,
    "DatasetError": DatasetError,
    "InvalidParameterError": InvalidParameterError,
}


class _WorkerDied(Exception):
    """The worker process ended (crash or kill) during a request."""


def _signal_name(returncode: int | None) -> str:
    if returncode is None or returncode >= 0:
        return f"exit code {returncode}"
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


class Worker:
    """One sandboxed worker process and its pipes."""

    def __init__(self, layers: frozenset[str], memory_mb: int, max_models: int, probes: bool) -> None:
        self.memory_mb = memory_mb
        self.answered_error = False  # the last request ended in an error the worker itself reported
        config = {
            "layers": sorted(layers),
            "read_only": [_CORE_DIR],
            "memory_mb": memory_mb,
            "max_models": max_models,
            "probes": probes,
        }
        env = {"LC_ALL": "C.UTF-8", "JOBLIB_MULTIPROCESSING": "0"}
        if "threads" in layers:
            env |= dict.fromkeys(sandbox.THREAD_VARIABLES, "1")
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", _BOOT, _ROOT, sandbox.__file__, json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
            env=env,
            cwd="/",
        )
        for pipe in (self.process.stdin, self.process.stdout):
            _widen_pipe(pipe.fileno())  # type: ignore[union-attr]
        self.stderr_tail = collections.deque(maxlen=50)
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True, name="modelshelf-worker-stderr")
        self._drain.start()
        self.held: list[str] = []
        self.layers: dict[str, dict[str, Any]] = {}
        try:
            body = _read_message(self.process.stdout.fileno(), time.monotonic() + _START_TIMEOUT_S, 1 << 24)  # type: ignore[union-attr]
        except (TimeoutError, ValueError):
            body = None
        if body is None:
            self.kill()
            tail = " ".join(self.stderr_tail)[-300:]
            raise UnsafeModelError(f"The model worker did not start ({_signal_name(self.process.poll())}): {tail}")
        ready = json.loads(body)
        self.threads_at_start = int(ready.get("threads", 0))
        self.layers = {
            "spawn": {
                "active": True,
                "reason": "fresh interpreter (fork+exec), clean environment, no inherited descriptors",
            },
            **ready["layers"],
            "deadline": {"active": True, "reason": "the parent kills the worker at the wall deadline"},
        }

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in iter(self.process.stderr.readline, b""):
            self.stderr_tail.append(line.decode("utf-8", "replace").rstrip())

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def request(self, message: dict[str, Any], wall_s: float) -> dict[str, Any]:
        """Send one request and wait for its reply until the wall deadline (then kill)."""
        deadline = time.monotonic() + wall_s
        try:
            # The model's bytes travel as their own frame: pickling tens of MB into the request and
            # out again cost two full copies (about 50 ms for a 44 MB forest).
            header = {k: v for k, v in message.items() if k != "data"} | {"has_data": "data" in message}
            _write_message(self.process.stdin.fileno(), pickle.dumps(header, protocol=5))  # type: ignore[union-attr]
            if "data" in message:
                _write_message(self.process.stdin.fileno(), message["data"])  # type: ignore[union-attr]
            body = _read_message(self.process.stdout.fileno(), deadline, _MAX_REPLY)  # type: ignore[union-attr]
        except TimeoutError:
            self.kill()
            raise
        except (BrokenPipeError, ConnectionResetError, ValueError) as exc:
            self.kill()
            raise _WorkerDied(str(exc)) from exc
        if body is None:
            self.kill()
            raise _WorkerDied(_signal_name(self.process.returncode))
        try:  # the worker may have been subverted: its reply is checked like any outside input
            reply = json.loads(body, object_hook=_decode_hook)
            if not isinstance(reply, dict) or not isinstance(reply.get("held", []), list):
                raise ValueError("not a reply")
        except Exception as exc:  # json, base64 and np.load each raise their own kinds
            self.kill()
            raise _WorkerDied(f"malformed reply ({type(exc).__name__})") from exc
        self.held = [str(h) for h in reply.get("held", [])]
        return reply

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]


class WorkerPool:
    """Up to ``size`` warm workers; a request goes to one that already holds its model if it can."""

    def __init__(
        self,
        *,
        size: int = 2,
        memory_mb: int = 2048,
        layers: frozenset[str] | set[str] = ALL_LAYERS,
        max_models: int = 4,
        probes: bool = False,
    ) -> None:
        unknown = set(layers) - ALL_LAYERS
        if unknown:
            raise InvalidParameterError(f"Unknown sandbox layer(s): {', '.join(sorted(unknown))}")
        self.size = max(1, int(size))
        self.memory_mb = int(memory_mb)
        self.layers = frozenset(layers)
        self.max_models = max_models
        self.probes = probes
        self._idle: list[Worker] = []
        self._running = 0
        self._cond = threading.Condition()
        self._facts: dict[str, dict[str, Any]] = {}  # what each loaded sha256 was found to be
        self.started = 0  # how many worker processes this pool has started (tests read it)

    # -- workers --------------------------------------------------------------------------------

    def _acquire(self, sha256: str | None) -> Worker:
        with self._cond:
            while True:
                dead = [w for w in self._idle if not w.alive]
                for worker in dead:  # died while idle (killed from outside): free its place
                    self._idle.remove(worker)
                    worker.kill()
                    self._running -= 1
                if self._idle:
                    chosen = next((w for w in self._idle if sha256 in w.held), self._idle[-1])
                    self._idle.remove(chosen)
                    return chosen
                if self._running < self.size:
                    self._running += 1
                    break
                self._cond.wait()
        try:
            worker = Worker(self.layers, self.memory_mb, self.max_models, self.probes)
        except BaseException:
            with self._cond:
                self._running -= 1
                self._cond.notify()
            raise
        self.started += 1
        return worker

    def _release(self, worker: Worker, keep: bool) -> None:
        with self._cond:
            if keep and worker.alive:
                self._idle.append(worker)
            else:
                worker.kill()
                self._running -= 1
            self._cond.notify()

    def close(self) -> None:
        """Stop the idle workers (busy ones stop when their request ends)."""
        with self._cond:
            idle, self._idle = self._idle, []
            self._running -= len(idle)
        for worker in idle:
            worker.kill()

    # -- requests -------------------------------------------------------------------------------

    def _call(self, worker: Worker, message: dict[str, Any], timeout_s: float) -> Any:
        message = message | {"cpu_s": timeout_s + _GRACE_S}
        try:
            reply = worker.request(message, timeout_s + _GRACE_S)
        except TimeoutError:
            raise UnsafeModelError(f"The model took longer than {timeout_s:g} s: stopped") from None
        except _WorkerDied as exc:
            if str(exc).startswith("malformed"):
                raise UnsafeModelError("The model worker sent a malformed reply: refused") from exc
            code = worker.process.returncode
            if code == -signal.SIGXCPU:
                raise UnsafeModelError(f"The model took longer than {timeout_s:g} s of CPU time: stopped") from exc
            raise UnsafeModelError(f"The model crashed the loader ({_signal_name(code)}): refused") from exc
        if reply.get("ok") is True:
            return reply.get("result")
        kind, text = reply.get("kind"), str(reply.get("message", ""))[:500]
        if kind == "memory":
            worker.kill()  # an allocation failed half-way: start clean next time
            raise UnsafeModelError(f"The model needed more than {self.memory_mb} MB: refused")
        if kind == "missing":
            raise LookupError(message.get("sha256"))
        if kind == "data" or kind in _ERRORS:
            # The worker answered normally: it refused the model or the rows, and stays usable
            # (a refusal must not cost the next visitor a worker's start-up).
            worker.answered_error = True
            raise (DatasetError if kind == "data" else _ERRORS[kind])(text)
        raise FormatError(f"The model could not be used ({text})")

    def run(
        self,
        op: str,
        *,
        sha256: str,
        fetch: Callable[[], bytes],
        limits: LoadLimits,
        hashed: bytes | None = None,
        **args: Any,
    ) -> Any:
        """``op`` on the model whose bytes have ``sha256``, loading them (``fetch()``) where needed.

        ``op`` is "load" (returns the facts), "score" (``X``, ``y``: the metrics) or "call"
        (``method``, ``X``: an array). ``hashed``: the bytes themselves, when the caller has just
        hashed them to ``sha256`` (no second pass: 24 ms for a 44 MB forest).
        """
        worker = self._acquire(sha256)
        worker.answered_error = False
        keep = False
        try:
            facts = None
            if op == "load" and sha256 in worker.held and sha256 in self._facts:
                keep = True
                return self._facts[sha256]  # warm: checked when it was loaded, and held since
            if op == "load" or sha256 not in worker.held:
                facts = self._load(worker, sha256, hashed if hashed is not None else fetch(), limits, hashed is None)
            if op == "load":
                keep = True
                return facts
            try:
                result = self._call(worker, {"op": op, "sha256": sha256, **args}, limits.timeout_s)
            except LookupError:  # evicted meanwhile: load again, once
                self._load(worker, sha256, fetch(), limits)
                result = self._call(worker, {"op": op, "sha256": sha256, **args}, limits.timeout_s)
            keep = True
            return result
        finally:
            self._release(worker, (keep or worker.answered_error) and worker.alive)

    def _load(self, worker: Worker, sha256: str, data: bytes, limits: LoadLimits, check: bool = True) -> dict[str, Any]:
        if check and hashlib.sha256(data).hexdigest() != sha256:
            raise InvalidParameterError("The model bytes do not match the sha256 they were sent under")
        message = {
            "op": "load",
            "sha256": sha256,
            "data": data,
            "limits": (limits.max_bytes, limits.max_decompressed_bytes, limits.timeout_s),
        }
        facts = self._call(worker, message, limits.timeout_s)
        with self._cond:
            self._facts[sha256] = facts
            while len(self._facts) > 64:
                self._facts.pop(next(iter(self._facts)))
        return facts

    def load(self, data: bytes, limits: LoadLimits) -> dict[str, Any]:
        """Load, check and describe model bytes in a worker; the facts as JSON-able data."""
        data = bytes(data)
        return self.run("load", sha256=hashlib.sha256(data).hexdigest(), fetch=lambda: data, limits=limits)

    def probe(self, name: str, timeout_s: float = 30.0, **args: Any) -> Any:
        """Run a test-only attempt in a worker (only for pools made with ``probes=True``)."""
        worker = self._acquire(None)
        keep = False
        try:
            result = self._call(worker, {"op": "probe", "name": name, "args": args}, timeout_s)
            keep = True
            return result
        finally:
            self._release(worker, (keep or worker.answered_error) and worker.alive)

    def report(self) -> dict[str, dict[str, Any]]:
        """Which sandbox layers a worker of this pool has, each ``{"active": bool, "reason": str}``."""
        worker = self._acquire(None)
        try:
            return dict(worker.layers)
        finally:
            self._release(worker, True)


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def default_pool() -> WorkerPool:
    """The process's pool, sized by the settings (``workers``, ``worker_memory_mb``)."""
    from core.settings import load_settings

    global _POOL
    settings = load_settings()
    with _POOL_LOCK:
        if _POOL is None or (_POOL.size, _POOL.memory_mb) != (settings.workers, settings.worker_memory_mb):
            if _POOL is not None:
                _POOL.close()
            _POOL = WorkerPool(size=settings.workers, memory_mb=settings.worker_memory_mb)
        return _POOL


def _close_default_pool() -> None:
    if _POOL is not None:
        _POOL.close()


import atexit  # noqa: E402

atexit.register(_close_default_pool)


def sandbox_layers(pool: WorkerPool | None = None) -> dict[str, dict[str, Any]]:
    """The layers a worker really has on this machine (asked of a running worker, not guessed)."""
    return (pool or default_pool()).report()


def sandbox_is_weak(layers: dict[str, dict[str, Any]]) -> bool:
    """Neither a filesystem layer nor a network layer is active."""
    fs = any(layers.get(name, {}).get("active") for name in sandbox.FILESYSTEM_LAYERS)
    net = any(layers.get(name, {}).get("active") for name in sandbox.NETWORK_LAYERS)
    return not fs and not net


def require_strong_sandbox(settings: Any = None, pool: WorkerPool | None = None) -> None:
    """In demo mode, refuse uploads when the worker has neither its filesystem nor its network layer."""
    from core.settings import load_settings

    settings = settings or load_settings()
    if not settings.demo or settings.allow_weak_sandbox:
        return
    if sandbox_is_weak(sandbox_layers(pool)):
        raise UnsafeModelError(
            "Uploads are refused here: the model worker has neither its filesystem nor its network sandbox "
            "on this machine (see python -m core doctor; MODELSHELF_ALLOW_WEAK_SANDBOX=1 accepts it)"
        )


class WorkerModel:
    """A stranger's model, held by a worker: the calls of a fitted classifier, run over there.

    ``predict``, ``predict_proba`` and ``decision_function`` (those the model has: ``hasattr``
    answers as for the model itself) return numpy arrays; ``classes_``, ``n_features_in_``,
    ``feature_names_in_`` come from the facts the worker sent once; ``get_params()`` returns the
    JSON-safe parameters (``core.store.describe_model``), not live objects. ``score_metrics``
    computes ``core.metrics.classification_metrics`` in the worker, in one round trip. A crashed
    or recycled worker is replaced transparently: the bytes are fetched again (``fetch``).
    """

    def __init__(
        self, pool: WorkerPool, sha256: str, fetch: Callable[[], bytes], limits: LoadLimits, facts: dict[str, Any]
    ) -> None:
        self._pool = pool
        self._sha256 = sha256
        self._fetch = fetch
        self._limits = limits
        self.facts = facts

    @property
    def estimator(self) -> str:
        """The class path of the model in the worker (``sklearn.ensemble.RandomForestClassifier``)."""
        return str(self.facts.get("estimator"))

    def __repr__(self) -> str:
        return f"WorkerModel({self.estimator}, sha256 {self._sha256[:12]}...)"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "facts":
            raise AttributeError(name)
        facts = self.facts
        if name in METHODS and name in facts.get("methods", ()):
            return lambda X: self._pool.run(
                "call", sha256=self._sha256, fetch=self._fetch, limits=self._limits, method=name, X=X
            )
        if name == "classes_" and facts.get("classes_array") is not None:
            return facts["classes_array"]
        if name == "n_features_in_" and facts.get("n_features_in") is not None:
            return facts["n_features_in"]
        if name == "feature_names_in_" and facts.get("feature_names_in"):
            names = np.empty(len(facts["feature_names_in"]), dtype=object)
            names[:] = facts["feature_names_in"]
            return names
        raise AttributeError(f"{self.estimator} (in the model worker) has no attribute {name!r}")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The parameters as JSON-safe values (nested estimators as their descriptions)."""
        return dict(self.facts.get("params") or {})

    def convert(self, to: str, X: Any = None, feature_names: list[str] | None = None) -> dict[str, Any]:
        """The model converted by the worker (``onnx``, ``json`` or a file format): see ``_convert``."""
        reply = self._pool.run(
            "convert", sha256=self._sha256, fetch=self._fetch, limits=self._limits, to=to, X=X, names=feature_names
        )
        if not isinstance(reply, dict):
            raise UnsafeModelError("The model worker sent a malformed conversion: refused")
        return reply

    def score_metrics(self, X: Any, y: Any) -> dict[str, Any]:
        """``classification_metrics(model, X, y)``, computed by the worker."""
        return self._pool.run("score", sha256=self._sha256, fetch=self._fetch, limits=self._limits, X=X, y=y)


_FACT_TYPES: dict[str, tuple[type, ...]] = {
    "estimator": (str,),
    "params": (dict,),
    "classes": (list, type(None)),
    "n_features_in": (int, type(None)),
    "feature_names_in": (list, type(None)),
    "format": (str,),
    "compression": (str, type(None)),
    "protocol": (int, type(None)),
    "sklearn_version": (str, type(None)),
    "warnings": (list,),
    "methods": (list,),
}


def _check_facts(facts: Any) -> None:
    """What a worker says about a model becomes a record: it must have the shape the worker writes."""
    ok = isinstance(facts, dict) and all(isinstance(facts.get(k), types) for k, types in _FACT_TYPES.items())
    if ok:
        ok = facts["format"] in ("pickle", "joblib", "skops") and set(facts["methods"]) <= set(METHODS)
        ok = ok and all(isinstance(w, str) for w in facts["warnings"])
    if not ok:
        raise UnsafeModelError("The model worker's description of the file is malformed: refused")


def load_in_worker(
    data: bytes,
    limits: LoadLimits,
    *,
    fetch: Callable[[], bytes] | None = None,
    pool: WorkerPool | None = None,
) -> WorkerModel:
    """Load, check and describe model bytes in a worker; the model stays there, warm.

    ``fetch`` gives the bytes again if a worker has to reload them later (default: keep ``data``).
    """
    data = bytes(data)
    if len(data) > limits.max_bytes:
        raise UnsafeModelError(
            f"The file is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes, so it was refused"
        )
    pool = pool or default_pool()
    sha256 = hashlib.sha256(data).hexdigest()
    facts = pool.run("load", sha256=sha256, fetch=lambda: data, limits=limits, hashed=data)
    _check_facts(facts)
    return WorkerModel(pool, sha256, fetch or (lambda: data), limits, facts)
