"""An isolated worker process for strangers' model files: a crash costs one worker, not the server.

No process that serves users unpickles bytes the store did not save itself. A model file from
elsewhere is handed to a worker (its bytes through a shared-memory file the worker may only read,
the request over a pipe): a fresh interpreter (fork + exec of ``sys.executable``, like
multiprocessing's ``spawn``: no copy of the server's threads or memory, no inherited descriptor
but its three pipes and that read-only file, a clean environment without the server's
secrets, ``/`` as its working directory) that applies ``core.safety.sandbox``'s layers before it
imports numpy, then runs ``core.safety.worker_child`` (the in-process loader and the checks) and
keeps the model warm, keyed by the bytes' sha256.

This is the parent side: the process handle (:class:`Worker`) and the pool that starts and reuses
workers (:class:`WorkerPool`). The frames and the JSON that cross the pipe are
``core.safety.protocol``; the proxy callers hold, and what the sandbox really has on this machine
(:func:`sandbox_layers`, :func:`require_strong_sandbox`), are ``core.safety.proxy``.

A worker that segfaults, runs past the wall deadline (it is killed) or past its memory budget
ends the request with one clear ``UnsafeModelError``; the pool starts a fresh worker for the
next call. No import of the store, the CLI or ``core.portable`` here.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import core.safety.sandbox as sandbox
from core.errors import DatasetError, FormatError, InvalidParameterError, LimitError, UnsafeModelError
from core.safety.limits import LoadLimits
from core.safety.protocol import _ERRORS, _MAX_REPLY, _decode_hook, _read_message, _widen_pipe, _write_message
from core.settings import load_settings

#: Every layer a worker can apply; a pool may turn some off (the tests check them one at a time).
ALL_LAYERS = frozenset({"no_new_privs", "capabilities", "threads", "rlimits", "landlock", "seccomp", "memory", "cpu"})

_START_TIMEOUT_S = 120.0
_LoadKey = Callable[[], str | None]  # a load's key, sent after its request
_GRACE_S = 1.0
#: Model bytes up to this size leave their pages in the shared-memory file for the next request
#: (writing into pages already there is several times faster than into fresh ones); larger
#: uploads give them back as soon as the worker has its copy.
_KEEP_SHARED_BYTES = 64 << 20
_CORE_DIR = str(Path(__file__).resolve().parent.parent)  # all of core/: the worker imports from it
_ROOT = str(Path(__file__).resolve().parent.parent.parent)

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
from core.safety.worker_child import child_main
child_main(box, report, config, rfd, wfd)
"""


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

    _shared = -1  # the shared-memory file for model bytes (-1: none, or closed)

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
        # The model's bytes go through a shared-memory file, not the pipe: the parent writes, the
        # worker holds a read-only descriptor to it (it cannot resize or write it) and reads them
        # with one copy.
        self._shared = os.memfd_create("modelshelf-model-bytes", os.MFD_CLOEXEC)
        shared_ro = os.open(f"/proc/self/fd/{self._shared}", os.O_RDONLY | os.O_CLOEXEC)
        config["data_fd"] = shared_ro
        env = {"LC_ALL": "C.UTF-8", "JOBLIB_MULTIPROCESSING": "0"}
        if "threads" in layers:
            env |= dict.fromkeys(sandbox.THREAD_VARIABLES, "1")
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", _BOOT, _ROOT, sandbox.__file__, json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
            pass_fds=(shared_ro,),
            env=env,
            cwd="/",
        )
        os.close(shared_ro)
        assert self.process.stdin is not None and self.process.stdout is not None  # both asked for as PIPE
        self._stdin, self._stdout = self.process.stdin, self.process.stdout
        for pipe in (self._stdin, self._stdout):
            _widen_pipe(pipe.fileno())
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=50)
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True, name="modelshelf-worker-stderr")
        self._drain.start()
        self.held: list[str] = []
        self.layers: dict[str, dict[str, Any]] = {}
        try:
            body = _read_message(self._stdout.fileno(), time.monotonic() + _START_TIMEOUT_S, 1 << 24)
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
                "reason": "fresh interpreter (fork+exec), clean environment, no inherited descriptor but"
                " its pipes and the read-only model-bytes file",
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

    def request(self, message: dict[str, Any], wall_s: float, key: _LoadKey | None = None) -> dict[str, Any]:
        """Send one request and wait for its reply until the wall deadline (then kill).

        ``key``: a load's key, computed once the request is sent (see ``WorkerPool._load``)."""
        deadline = time.monotonic() + wall_s
        try:
            # The model's bytes travel in the shared-memory file, outside the pickled request:
            # pickling tens of MB into the request and out again cost two full copies.
            header = {k: v for k, v in message.items() if k != "data"}
            if "data" in message:
                header["data_size"] = self._share(message["data"])
            header["key_follows"] = key is not None
            _write_message(self._stdin.fileno(), pickle.dumps(header, protocol=5))
            if key is not None:
                _write_message(self._stdin.fileno(), pickle.dumps(key(), protocol=5))
            try:
                body = _read_message(self._stdout.fileno(), deadline, _MAX_REPLY)
            finally:
                if "data" in message and header["data_size"] > _KEEP_SHARED_BYTES:
                    with contextlib.suppress(OSError):
                        os.ftruncate(self._shared, 0)  # the worker has its copy: free the pages
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

    def _share(self, data: bytes) -> int:
        """Write ``data`` to the start of the shared-memory file; its length."""
        view = memoryview(data)
        done = 0
        try:
            while done < len(view):
                done += os.pwrite(self._shared, view[done : done + (1 << 30)], done)
        except OSError as exc:  # no memory (or tmpfs space) for the copy: say so, keep nothing
            with contextlib.suppress(OSError):
                os.ftruncate(self._shared, 0)
            raise UnsafeModelError(
                f"There is no room to hand the model's {len(view):,} bytes to the worker ({exc.strerror}); not loaded"
            ) from exc
        return done

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        for pipe in (self._stdin, self._stdout):
            with contextlib.suppress(OSError):
                pipe.close()
        if self._shared >= 0:
            os.close(self._shared)
            self._shared = -1


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
        wait_s: float | None = None,
    ) -> None:
        """``wait_s``: the longest a request waits for a busy pool's worker before it is refused
        (None: as long as it takes; a public demo's visitors get an answer instead of a queue)."""
        unknown = set(layers) - ALL_LAYERS
        if unknown:
            raise InvalidParameterError(f"Unknown sandbox layer(s): {', '.join(sorted(unknown))}")
        self.size = max(1, int(size))
        self.memory_mb = int(memory_mb)
        self.layers = frozenset(layers)
        self.max_models = max_models
        self.probes = probes
        self.wait_s = wait_s
        self._idle: list[Worker] = []
        self._running = 0
        self._cond = threading.Condition()
        self._facts: dict[str, dict[str, Any]] = {}  # what each loaded sha256 was found to be
        self._sizes: dict[str, int] = {}  # and its bytes' length
        self.started = 0  # how many worker processes this pool has started (tests read it)

    # -- workers --------------------------------------------------------------------------------

    def _acquire(self, sha256: str | None) -> Worker:
        give_up = None if self.wait_s is None else time.monotonic() + self.wait_s
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
                left = None if give_up is None else give_up - time.monotonic()
                if left is not None and left <= 0:
                    raise LimitError(
                        f"All {self.size} model workers stayed busy for {self.wait_s:g} s: try again in a minute",
                        "busy",
                    )
                self._cond.wait(left)
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

    def _call(self, worker: Worker, message: dict[str, Any], timeout_s: float, key: _LoadKey | None = None) -> Any:
        message = message | {"cpu_s": timeout_s + _GRACE_S}
        try:
            reply = worker.request(message, timeout_s + _GRACE_S, key)
        except TimeoutError as exc:
            raise LimitError(f"The model took longer than {timeout_s:g} s: stopped", "time") from exc
        except _WorkerDied as exc:
            if str(exc).startswith("malformed"):
                raise UnsafeModelError("The model worker sent a malformed reply: refused") from exc
            code = worker.process.returncode
            if code == -signal.SIGXCPU:
                raise LimitError(f"The model took longer than {timeout_s:g} s of CPU time: stopped", "cpu") from exc
            raise LimitError(f"The model crashed the loader ({_signal_name(code)}): refused", "crash") from exc
        if reply.get("ok") is True:
            return reply.get("result")
        kind, text = reply.get("kind"), str(reply.get("message", ""))[:500]
        if kind == "memory":
            worker.kill()  # an allocation failed half-way: start clean next time
            raise LimitError(f"The model needed more than {self.memory_mb} MB: refused", "memory")
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
                _, facts = self._load(worker, sha256, hashed if hashed is not None else fetch(), limits, hashed is None)
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

    def _load(
        self, worker: Worker, sha256: str | None, data: bytes, limits: LoadLimits, check: bool = True
    ) -> tuple[str, dict[str, Any]]:
        """Load ``data`` in ``worker``, held there under their sha256: (that sha256, the facts).

        Hashed here while the worker loads them (on two cores the 24 ms of a 44 MB forest cost no
        wait), the key sent after the request. ``sha256``: what they must hash to (checked unless
        ``check`` is off), or None. On a mismatch the worker keeps nothing; no facts come back."""
        digest = sha256 if sha256 is not None and not check else None

        def key() -> str | None:
            nonlocal digest
            if digest is None:
                digest = hashlib.sha256(data).hexdigest()
            return digest if sha256 in (None, digest) else None

        message = {
            "op": "load",
            "data": data,
            "limits": (limits.max_bytes, limits.max_decompressed_bytes, limits.timeout_s),
        }
        facts = self._call(worker, message, limits.timeout_s, key)
        if digest is None or sha256 not in (None, digest):
            raise InvalidParameterError("The model bytes do not match the sha256 they were sent under")
        with self._cond:
            self._facts[digest] = facts
            self._sizes[digest] = len(data)
            while len(self._facts) > 64:
                self._sizes.pop(oldest := next(iter(self._facts)), None)
                self._facts.pop(oldest)
        return digest, facts

    def _held_size(self, size: int) -> bool:
        """Whether an idle worker holds a model whose bytes are ``size`` long (maybe these)."""
        with self._cond:
            return any(self._sizes.get(held) == size for worker in self._idle for held in worker.held)

    def load_new(self, data: bytes, limits: LoadLimits) -> tuple[str, dict[str, Any]]:
        """Load bytes whose sha256 the caller does not know: (their sha256, the facts). Hashed
        while a worker loads them, unless an idle worker holds a model of their length: then
        hashed first, so that if it is theirs the worker answers at once."""
        if self._held_size(len(data)):
            sha256 = hashlib.sha256(data).hexdigest()
            return sha256, self.run("load", sha256=sha256, fetch=lambda: data, limits=limits, hashed=data)
        worker = self._acquire(None)
        worker.answered_error = False
        keep = False
        try:
            loaded = self._load(worker, None, data, limits)
            keep = True
            return loaded
        finally:
            self._release(worker, (keep or worker.answered_error) and worker.alive)

    def load(self, data: bytes, limits: LoadLimits) -> dict[str, Any]:
        """Load, check and describe model bytes in a worker; the facts as JSON-able data."""
        return self.load_new(bytes(data), limits)[1]

    def task(self, op: str, timeout_s: float, **args: Any) -> Any:
        """Run ``op``, which needs no model held (a fit: ``core.worker_ops``), in an idle or a new worker."""
        worker = self._acquire(None)
        worker.answered_error = keep = False
        try:
            result = self._call(worker, {"op": op, **args}, timeout_s)
            keep = True
            return result
        finally:
            self._release(worker, (keep or worker.answered_error) and worker.alive)

    def probe(self, name: str, timeout_s: float = 30.0, **args: Any) -> Any:
        """Run a test-only attempt in a worker (only for pools made with ``probes=True``)."""
        return self.task("probe", timeout_s, name=name, args=args)

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
    """The process's pool, sized by the settings (``workers``, ``worker_memory_mb``; ``wait_s`` in a demo)."""
    global _POOL
    settings = load_settings()
    with _POOL_LOCK:
        if _POOL is None or (_POOL.size, _POOL.memory_mb) != (settings.workers, settings.worker_memory_mb):
            if _POOL is not None:
                _POOL.close()
            _POOL = WorkerPool(size=settings.workers, memory_mb=settings.worker_memory_mb)
        # A demo's visitor waits at most one call's time limit for a worker, then gets an answer.
        _POOL.wait_s = settings.load_timeout_s if settings.demo else None
        return _POOL


@atexit.register
def _close_default_pool() -> None:
    if _POOL is not None:
        _POOL.close()
