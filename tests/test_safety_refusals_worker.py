"""Direct tests of the worker protocol's refusals: framing, what crosses back, the requests a
worker refuses, replies the parent refuses, and a worker that cannot start.

The worker's own side (``_serve``, ``_convert``, ``_probe``) is called in this process; the
parent's side is driven with stand-in workers whose replies are made here, so each refusal runs
where coverage sees it. Only the start-up failure and the dead pipe start a (trivial) process.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import io
import os
import signal
import struct
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from core import worker_ops
from core.errors import DatasetError, FormatError, InvalidParameterError, LimitError, UnsafeModelError
from core.safety import LoadLimits, protocol, proxy, worker, worker_child

#: A bound no stopped request comes near.
GENEROUS_S = 30

LIMITS = LoadLimits(max_bytes=10_000_000, max_decompressed_bytes=10_000_000, timeout_s=5)


@pytest.fixture
def pipe():
    read, write = os.pipe()
    yield read, write
    os.close(read)
    os.close(write)


# -- framing and what crosses back ----------------------------------------------------------------


def test_a_read_past_its_deadline_times_out(pipe) -> None:
    with pytest.raises(TimeoutError):
        protocol._read_exact(pipe[0], 8, time.monotonic() - 1)


def test_a_read_that_gets_no_data_before_its_deadline_times_out(pipe) -> None:
    with pytest.raises(TimeoutError):
        protocol._read_exact(pipe[0], 8, time.monotonic() + 0.05)


def test_a_reply_longer_than_the_limit_is_refused_before_it_is_read(pipe) -> None:
    os.write(pipe[1], struct.pack(">Q", 1 << 40))
    with pytest.raises(ValueError, match=r"a reply of 1,099,511,627,776 bytes \(the limit is 1,000\)"):
        protocol._read_message(pipe[0], time.monotonic() + 5, 1_000)


def test_an_array_of_an_unexpected_dtype_is_refused_on_the_way_back() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array(["2024-01-01"], dtype="datetime64[D]"), allow_pickle=False)
    encoded = {"__npy__": base64.b64encode(buffer.getvalue()).decode("ascii")}
    with pytest.raises(ValueError, match="unexpected array dtype datetime64"):
        protocol._decode_hook(encoded)


# -- requests the worker refuses ------------------------------------------------------------------


@pytest.fixture(scope="module")
def held() -> collections.OrderedDict:
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    return collections.OrderedDict({"abc": (model, {})})


def test_an_unknown_probe_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="Unknown probe 'rm_rf'"):
        worker_child._probe("rm_rf", {})


def test_an_unknown_conversion_is_refused(held) -> None:
    with pytest.raises(InvalidParameterError, match="Unknown conversion 'xml'"):
        worker_ops._convert(held["abc"][0], {"to": "xml"})


def test_a_worker_without_probes_refuses_a_probe(held) -> None:
    with pytest.raises(InvalidParameterError, match="This worker runs no probes"):
        worker_child._serve({"op": "probe", "name": "write_file"}, held, {"probes": False})


def test_a_request_for_a_model_the_worker_does_not_hold_says_so(held) -> None:
    with pytest.raises(worker_child._NotLoaded):
        worker_child._serve({"op": "call", "sha256": "not-held", "method": "predict", "X": None}, held, {})


@pytest.mark.parametrize(
    "request_",
    [
        {"op": "delete", "sha256": "abc", "X": np.zeros((1, 1))},
        {"op": "call", "sha256": "abc", "method": "__reduce__", "X": np.zeros((1, 1))},
    ],
    ids=["unknown-op", "method-outside-the-list"],
)
def test_an_unknown_operation_or_method_is_refused(held, request_: dict) -> None:
    with pytest.raises(InvalidParameterError, match="Unknown worker operation"):
        worker_child._serve(request_, held, {})


# -- replies the parent refuses -------------------------------------------------------------------


class _StandIn:
    """A worker whose reply (or failure) is given: the parent's side is what is under test."""

    def __init__(self, reply: Any = None, died: str | None = None, returncode: int | None = None) -> None:
        self.reply, self.died = reply, died
        self.process = SimpleNamespace(returncode=returncode)
        self.answered_error = False
        self.killed = False
        self.keys: list[str | None] = []  # the keys loads were sent under (None: keep nothing)

    def request(self, message: dict[str, Any], wall_s: float, key: Any = None) -> dict[str, Any]:
        if key is not None:
            self.keys.append(key())
        if self.died is not None:
            raise worker._WorkerDied(self.died)
        return self.reply

    def kill(self) -> None:
        self.killed = True


def test_a_worker_ended_by_its_cpu_limit_is_reported_as_too_slow() -> None:
    stand_in = _StandIn(died="SIGXCPU", returncode=-signal.SIGXCPU)
    with pytest.raises(UnsafeModelError, match="longer than 5 s of CPU time: stopped"):
        worker.WorkerPool()._call(stand_in, {"op": "score"}, 5)  # type: ignore[arg-type]


def test_a_worker_that_no_longer_holds_the_model_says_which() -> None:
    stand_in = _StandIn(reply={"ok": False, "kind": "missing", "message": ""})
    with pytest.raises(LookupError, match="abc"):
        worker.WorkerPool()._call(stand_in, {"op": "call", "sha256": "abc"}, 5)  # type: ignore[arg-type]


REPLY_CASES = [
    (_StandIn(died="malformed reply (ValueError)"), UnsafeModelError, "sent a malformed reply: refused"),
    (_StandIn(died="SIGSEGV", returncode=-signal.SIGSEGV), UnsafeModelError, "crashed the loader (SIGSEGV)"),
    (_StandIn(reply={"ok": False, "kind": "memory"}), UnsafeModelError, "needed more than 2048 MB: refused"),
    (_StandIn(reply={"ok": False, "kind": "data", "message": "bad rows"}), DatasetError, "bad rows"),
    (_StandIn(reply={"ok": False, "kind": "UnsafeModelError", "message": "no"}), UnsafeModelError, "no"),
    (_StandIn(reply={"ok": False, "kind": "other", "message": "odd"}), FormatError, "could not be used (odd)"),
]


@pytest.mark.parametrize(("stand_in", "error", "words"), REPLY_CASES, ids=[w[:24] for _s, _e, w in REPLY_CASES])
def test_each_failed_reply_becomes_one_error(stand_in: _StandIn, error: type, words: str) -> None:
    with pytest.raises(error) as caught:
        worker.WorkerPool()._call(stand_in, {"op": "score"}, 5)  # type: ignore[arg-type]
    assert words in str(caught.value)


def test_a_worker_past_its_wall_deadline_is_stopped() -> None:
    class _Slow(_StandIn):
        def request(self, message, wall_s, key=None):
            raise TimeoutError

    with pytest.raises(UnsafeModelError, match=r"The model took longer than 5 s: stopped"):
        worker.WorkerPool()._call(_Slow(), {"op": "score"}, 5)  # type: ignore[arg-type]


def test_an_unknown_sandbox_layer_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match=r"Unknown sandbox layer\(s\): bogus"):
        worker.WorkerPool(layers={"bogus", "seccomp"})


def test_demo_mode_refuses_uploads_when_the_sandbox_is_weak() -> None:
    weak = {name: {"active": False, "reason": "off"} for name in ("landlock", "seccomp", "landlock_net")}
    pool = SimpleNamespace(report=lambda: weak)
    settings = SimpleNamespace(demo=True, allow_weak_sandbox=False)
    with pytest.raises(UnsafeModelError, match=r"Uploads are refused here: the model worker has neither"):
        proxy.require_strong_sandbox(settings, pool)  # type: ignore[arg-type]


def test_a_worker_description_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(UnsafeModelError, match=r"description of the file is malformed: refused"):
        proxy._check_facts({"estimator": "x", "format": "exe"})


def test_a_file_over_the_size_limit_is_not_sent_to_a_worker() -> None:
    small = LoadLimits(max_bytes=10, max_decompressed_bytes=10, timeout_s=1)
    with pytest.raises(UnsafeModelError, match=r"The file is 100 bytes; the limit is 10 bytes"):
        proxy.load_in_worker(b"x" * 100, small, pool=worker.WorkerPool())


def test_bytes_that_do_not_match_their_sha256_are_not_kept() -> None:
    """Hashed while the worker loads them: on a mismatch the worker is told to keep nothing."""
    stand_in = _StandIn(reply={"ok": True, "result": {}})
    pool = worker.WorkerPool()
    with pytest.raises(InvalidParameterError, match="do not match the sha256 they were sent under"):
        pool._load(stand_in, "0" * 64, b"model bytes", LIMITS)  # type: ignore[arg-type]
    assert stand_in.keys == [None] and not pool._facts
    right = hashlib.sha256(b"model bytes").hexdigest()
    assert pool._load(stand_in, right, b"model bytes", LIMITS) == (right, {})  # type: ignore[arg-type]
    assert stand_in.keys == [None, right] and right in pool._facts


def test_a_worker_model_has_no_private_attributes() -> None:
    model = proxy.WorkerModel(worker.WorkerPool(), "abc", lambda: b"", LIMITS, {"estimator": "x", "methods": []})
    with pytest.raises(AttributeError, match="_secret"):
        model._secret  # noqa: B018 - the attribute lookup is the test


def test_a_worker_model_names_an_attribute_it_does_not_have() -> None:
    model = proxy.WorkerModel(worker.WorkerPool(), "abc", lambda: b"", LIMITS, {"estimator": "sk.X", "methods": []})
    with pytest.raises(AttributeError, match=r"sk.X \(in the model worker\) has no attribute 'coef_'"):
        model.coef_  # noqa: B018 - the attribute lookup is the test


def test_a_malformed_conversion_reply_is_refused() -> None:
    pool = SimpleNamespace(run=lambda *args, **kwargs: "not a dict")
    model = proxy.WorkerModel(pool, "abc", lambda: b"", LIMITS, {"estimator": "x"})  # type: ignore[arg-type]
    with pytest.raises(UnsafeModelError, match="malformed conversion: refused"):
        model.convert("onnx")


def test_malformed_format_figures_are_refused() -> None:
    for reply in ([[1, 2]], [["big", 0.1, 0.1]], [[1, 0.1, -1.0]], {"size": 1}):
        pool = SimpleNamespace(run=lambda *args, reply=reply, **kwargs: reply)
        model = proxy.WorkerModel(pool, "abc", lambda: b"", LIMITS, {"estimator": "x"})  # type: ignore[arg-type]
        with pytest.raises(UnsafeModelError, match="malformed format"):
            model.measure_formats([("pickle", 0)], 1)


def test_an_oversized_diagram_is_refused() -> None:
    pool = SimpleNamespace(run=lambda *args, **kwargs: "<div>" * (proxy._MAX_DIAGRAM // 5 + 1))
    model = proxy.WorkerModel(pool, "abc", lambda: b"", LIMITS, {"estimator": "x"})  # type: ignore[arg-type]
    with pytest.raises(UnsafeModelError, match="diagram is over 5,000,000 characters: not drawn"):
        model.diagram()


def test_a_visitor_waits_for_a_busy_worker_at_most_the_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: with every worker busy (one visitor's slow calls), the next request queued with no
    end; a demo's pool now answers "busy" after ``load_timeout_s``, and serves again once free."""
    import threading

    from core.safety import WorkerPool, default_pool

    monkeypatch.setenv("MODELSHELF_DEMO", "1")
    monkeypatch.setenv("MODELSHELF_LOAD_TIMEOUT_S", "1")
    assert default_pool().wait_s == 1.0
    monkeypatch.delenv("MODELSHELF_DEMO")
    assert default_pool().wait_s is None  # the operator's own tools wait as long as it takes

    pool = WorkerPool(size=1, probes=True, wait_s=1.0)
    spun: dict[str, str] = {}

    def spin() -> None:
        try:
            pool.probe("spin", timeout_s=5)
        except LimitError as exc:
            spun["error"] = str(exc)

    try:
        hanging = threading.Thread(target=spin)
        hanging.start()
        deadline = time.monotonic() + GENEROUS_S
        while pool.started == 0 and time.monotonic() < deadline:  # the spin has the only worker
            time.sleep(0.05)
        began = time.monotonic()
        with pytest.raises(LimitError, match=r"All 1 model workers stayed busy for 1 s: try again") as caught:
            pool.report()
        assert caught.value.limit == "busy" and time.monotonic() - began < 3
        assert hanging.is_alive(), "the spin ended before the second request gave up"
        hanging.join(GENEROUS_S)
        assert "took longer than 5 s" in spun.get("error", ""), spun
        assert pool.report()  # a free worker again
    finally:
        pool.close()


# -- processes that fail ---------------------------------------------------------------------------


def _bare_worker(code: str) -> worker.Worker:
    """A ``Worker`` around a trivial process (not the sandboxed boot): only its pipes matter here."""
    bare = worker.Worker.__new__(worker.Worker)
    bare.process = subprocess.Popen(
        [sys.executable, "-I", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    bare._stdin, bare._stdout = bare.process.stdin, bare.process.stdout  # as Worker.__init__ keeps them
    bare.held = []
    return bare


def test_a_worker_whose_pipe_is_closed_is_reported_dead() -> None:
    dead = _bare_worker("pass")
    dead.process.wait(timeout=30)
    with pytest.raises(worker._WorkerDied):
        dead.request({"op": "call"}, 5)  # the header alone meets the closed pipe
    assert not dead.alive


def test_a_reply_that_is_not_a_mapping_is_refused() -> None:
    code = (
        "import struct, sys; body = b'[1, 2]'; sys.stdout.buffer.write(struct.pack('>Q', len(body)) + body); "
        "sys.stdout.flush(); sys.stdin.buffer.read()"
    )
    liar = _bare_worker(code)
    with pytest.raises(worker._WorkerDied, match=r"malformed reply \(ValueError\)"):
        liar.request({"op": "call"}, 30)
    assert not liar.alive


def test_a_worker_that_does_not_start_is_refused_and_frees_its_place(monkeypatch) -> None:
    monkeypatch.setattr(worker, "_BOOT", "import sys; print('boot failed', file=sys.stderr); sys.exit(3)")
    pool = worker.WorkerPool(size=1)
    with pytest.raises(UnsafeModelError, match=r"The model worker did not start \(exit code 3\): boot failed"):
        pool.probe("threads")
    assert pool._running == 0 and pool.started == 0


def test_a_worker_that_ends_without_a_reply_is_reported_dead() -> None:
    quitter = _bare_worker("import sys; sys.stdin.buffer.read(8); sys.exit(4)")
    with pytest.raises(worker._WorkerDied, match=r"exit code 4"):
        quitter.request({"op": "call"}, 30)


def test_a_worker_that_does_not_answer_in_time_is_killed() -> None:
    sleeper = _bare_worker("import time; time.sleep(60)")
    with pytest.raises(TimeoutError):
        sleeper.request({"op": "call"}, 0.3)
    assert not sleeper.alive


def test_model_bytes_shorter_than_announced_are_refused_by_the_worker_side() -> None:
    """The worker maps exactly the announced size of the shared file; a shorter file is an error."""
    fd = os.memfd_create("short-model-bytes")
    try:
        os.write(fd, b"abcdef")
        with pytest.raises(ValueError, match="end at 6 of 10"):
            protocol.map_shared(fd, 10)
        mapped = protocol.map_shared(fd, 3)
        assert mapped[:] == b"abc" and len(mapped) == 3  # the announced size, not the file's
        assert protocol.map_shared(fd, 0) == b""  # nothing to map: the loader refuses it as empty
    finally:
        os.close(fd)


def test_the_worker_backed_loader_takes_bytes_only() -> None:
    with pytest.raises(InvalidParameterError, match="takes the file's bytes, not a str"):
        proxy.load_untrusted("model.joblib")  # type: ignore[arg-type]


def test_model_bytes_with_no_room_to_reach_the_worker_are_refused_in_one_line(monkeypatch) -> None:
    """The parent copies an upload into the worker's shared-memory file; when the machine has no
    room for that copy, one clear refusal (not an OSError), and the file is emptied again."""
    import errno

    def full(fd: int, data: Any, offset: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(worker.os, "pwrite", full)
    pool = worker.WorkerPool(size=1)
    try:
        with pytest.raises(UnsafeModelError, match=r"no room to hand the model's 12 bytes to the worker"):
            proxy.load_in_worker(b"0123456789ab", LIMITS, pool=pool)
    finally:
        pool.close()
