"""The isolated worker for strangers' models (core.safety.worker, core.safety.sandbox).

Each sandbox layer is checked by what it stops: a plain attempt (a test-only probe run inside
the sandboxed worker, not a pickle) first succeeds with the layer off, then is refused with
only that layer on. Crashes, hangs and memory bombs must end in one clear error while this
process carries on, and the next call must work (a fresh worker). With ``CI`` set, a kernel
without Landlock or seccomp FAILS these tests instead of skipping them.
"""

from __future__ import annotations

import itertools
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.errors import ModelShelfError, UnsafeModelError
from core.safety import ALL_LAYERS, LoadLimits, WorkerPool, load_in_worker
from core.safety.worker import _WorkerDied
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(300)

LIMITS = LoadLimits(max_bytes=100_000_000, max_decompressed_bytes=100_000_000, timeout_s=20)


def require_active(report: dict, layer: str) -> None:
    """A layer the kernel should offer: missing fails under CI, else skips (and says why)."""
    entry = report[layer]
    if not entry["active"]:
        message = f"sandbox layer {layer} is not active here: {entry['reason']}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def full_pool():
    pool = WorkerPool(size=1, probes=True)
    yield pool
    pool.close()


@pytest.fixture
def make_pool():
    """Pools with chosen layers only (``frozenset()``: none, the control)."""
    made: list[WorkerPool] = []

    def make(*layers: str) -> WorkerPool:
        pool = WorkerPool(size=1, probes=True, layers=frozenset(layers))
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.close()


def attempt(pool: WorkerPool, probe: str, **args) -> str:
    """The probe's result, or the one-line error the worker reported."""
    try:
        return str(pool.probe(probe, **args))
    except ModelShelfError as exc:
        return f"refused: {exc}"


def test_every_layer_is_active_on_this_kernel(full_pool: WorkerPool) -> None:
    report = full_pool.report()
    assert set(report) >= {"spawn", "no_new_privs", "capabilities", "threads", "rlimits", "memory", "cpu", "deadline"}
    for layer in ("landlock", "landlock_net", "seccomp"):
        require_active(report, layer)
    for layer in ("spawn", "no_new_privs", "capabilities", "threads", "rlimits", "memory", "cpu", "deadline"):
        assert report[layer]["active"], (layer, report[layer])


def test_the_worker_gets_a_clean_environment_and_one_blas_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSHELF_TEST_SECRET", "s3cr3t")
    pool = WorkerPool(size=1, probes=True)
    try:
        environment = pool.probe("environment")
        threads = pool.probe("threads")
    finally:
        pool.close()
    assert "MODELSHELF_TEST_SECRET" not in environment
    assert "MODEL_STORE" not in environment
    assert environment["OPENBLAS_NUM_THREADS"] == environment["OMP_NUM_THREADS"] == "1"
    assert threads <= 3  # the interpreter and at most an allocator's helper: no BLAS pool


def test_writing_a_file_is_stopped_by_landlock_and_by_rlimit_fsize(make_pool, full_pool, tmp_path: Path) -> None:
    control = tmp_path / "control.txt"
    assert attempt(make_pool(), "write_file", path=str(control)) == "written"
    assert control.read_text() == "written by the worker"  # the attempt works without the layers

    only_fsize = tmp_path / "fsize.txt"
    outcome = attempt(make_pool("rlimits"), "write_file", path=str(only_fsize))
    assert "File too large" in outcome, outcome  # RLIMIT_FSIZE=0: the file appears, no byte gets in
    assert only_fsize.read_bytes() == b""

    report = full_pool.report()
    require_active(report, "landlock")
    only_landlock = tmp_path / "landlock.txt"
    outcome = attempt(make_pool("landlock"), "write_file", path=str(only_landlock))
    assert "PermissionError" in outcome, outcome
    assert not only_landlock.exists()  # not even created

    everything = tmp_path / "full.txt"
    assert "PermissionError" in attempt(full_pool, "write_file", path=str(everything))
    assert not everything.exists()


def test_truncating_a_file_is_stopped_by_landlock_not_by_rlimit_fsize(make_pool, full_pool, tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    assert attempt(make_pool(), "truncate_file", path=str(target)) == "truncated"
    assert target.read_text() == ""

    target.write_text("keep me")
    # RLIMIT_FSIZE limits growth, not open(O_TRUNC): this layer alone does not stop it.
    assert attempt(make_pool("rlimits"), "truncate_file", path=str(target)) == "truncated"
    assert target.read_text() == ""

    require_active(full_pool.report(), "landlock")
    target.write_text("keep me")
    assert "PermissionError" in attempt(make_pool("landlock"), "truncate_file", path=str(target))
    assert "PermissionError" in attempt(full_pool, "truncate_file", path=str(target))
    assert target.read_text() == "keep me"


@pytest.fixture
def listener():
    """A TCP server on 127.0.0.1 that records what reaches it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                received.append(conn.recv(100))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    thread.join(5)
    server.close()


def test_network_sockets_are_stopped_by_seccomp_and_by_landlock(make_pool, full_pool, listener) -> None:
    port, received = listener
    control = make_pool()
    assert attempt(control, "socket_inet") == "created"
    assert attempt(control, "connect", port=port) == "connected"
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert received == [b"hello from the worker"]  # the attempt reaches the listener without the layers
    received.clear()

    report = full_pool.report()
    require_active(report, "seccomp")
    only_seccomp = make_pool("seccomp")
    assert "PermissionError" in attempt(only_seccomp, "socket_inet")  # socket(AF_INET) refused: EACCES
    assert "PermissionError" in attempt(only_seccomp, "connect", port=port)
    assert attempt(only_seccomp, "socket_unix") == "created"  # AF_UNIX stays allowed

    require_active(report, "landlock_net")
    only_landlock = make_pool("landlock")
    assert attempt(only_landlock, "socket_inet") == "created"  # Landlock does not filter socket() ...
    assert "PermissionError" in attempt(only_landlock, "connect", port=port)  # ... but TCP connect

    assert "PermissionError" in attempt(full_pool, "socket_inet")
    assert "PermissionError" in attempt(full_pool, "connect", port=port)
    time.sleep(0.3)
    assert received == []


def test_running_a_program_is_refused(full_pool: WorkerPool, make_pool) -> None:
    report = full_pool.report()
    require_active(report, "seccomp")
    assert "PermissionError" in attempt(make_pool("seccomp"), "exec")
    require_active(report, "landlock")
    assert "PermissionError" in attempt(make_pool("landlock"), "exec")


def test_a_segfault_costs_one_worker(full_pool: WorkerPool) -> None:
    full_pool.report()  # a warm worker first
    started = full_pool.started
    began = time.monotonic()
    with pytest.raises(UnsafeModelError, match=r"The model crashed the loader \(SIGSEGV\): refused"):
        full_pool.probe("segfault", timeout_s=20)
    assert time.monotonic() - began < 20
    assert full_pool.probe("threads") >= 1  # the next call works, in a fresh worker
    assert full_pool.started == started + 1


def test_a_hang_in_c_is_killed_at_the_deadline(full_pool: WorkerPool) -> None:
    began = time.monotonic()
    with pytest.raises(UnsafeModelError, match=r"The model took longer than 2 s: stopped"):
        full_pool.probe("spin", timeout_s=2)
    elapsed = time.monotonic() - began
    assert elapsed < 6, elapsed
    assert full_pool.probe("threads") >= 1


def test_rlimit_cpu_alone_ends_a_spinning_worker(make_pool) -> None:
    """No parent deadline here: the kernel's RLIMIT_CPU ends the worker (SIGXCPU)."""
    pool = make_pool("cpu")
    worker = pool._acquire(None)
    try:
        began = time.monotonic()
        with pytest.raises(_WorkerDied):
            worker.request({"op": "probe", "name": "spin", "args": {}, "cpu_s": 1}, wall_s=60)
        assert time.monotonic() - began < 15
        assert worker.process.returncode == -signal.SIGXCPU
    finally:
        pool._release(worker, keep=False)


def test_a_memory_bomb_is_refused_and_the_next_call_works(full_pool: WorkerPool) -> None:
    began = time.monotonic()
    with pytest.raises(UnsafeModelError, match=r"The model needed more than 2048 MB: refused"):
        full_pool.probe("allocate", bytes=10 * 1024**3)
    assert time.monotonic() - began < 20
    assert full_pool.probe("allocate", bytes=8 * 1000) == 1000


def test_probes_are_refused_by_a_production_pool() -> None:
    pool = WorkerPool(size=1)
    try:
        with pytest.raises(ModelShelfError, match="runs no probes"):
            pool.probe("environment")
    finally:
        pool.close()


def test_unknown_layers_are_refused() -> None:
    with pytest.raises(ModelShelfError, match="Unknown sandbox layer"):
        WorkerPool(layers=ALL_LAYERS | {"magic"})


# -- a model, through the worker -----------------------------------------------------------------


def _iris_model():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    return LogisticRegression(max_iter=500).fit(X, y), X, y


def test_a_model_is_loaded_described_scored_and_called_in_a_warm_worker(full_pool: WorkerPool) -> None:
    from core.metrics import classification_metrics

    model, X, y = _iris_model()
    data = pickle.dumps(model)
    remote = load_in_worker(data, LIMITS, pool=full_pool)
    assert remote.estimator == "sklearn.linear_model.LogisticRegression"
    assert remote.facts["n_features_in"] == 4 and list(remote.classes_) == [0, 1, 2]
    assert remote.get_params()["max_iter"] == 500
    assert remote.score_metrics(X, y) == classification_metrics(model, X, y)
    assert np.array_equal(remote.predict(X), model.predict(X))
    assert np.allclose(remote.predict_proba(X.iloc[:5]), model.predict_proba(X.iloc[:5]))
    assert np.allclose(remote.decision_function(X.iloc[:5]), model.decision_function(X.iloc[:5]))
    assert list(remote.feature_names_in_) == list(X.columns)
    started = full_pool.started
    for _ in range(3):
        remote.predict(X.iloc[:2])
    assert full_pool.started == started  # warm: no new process, no reload
    assert not hasattr(remote, "transform")
    loads: list[str] = []
    real_load = full_pool._load
    full_pool._load = lambda worker, sha, data, limits: loads.append(sha) or real_load(worker, sha, data, limits)
    try:
        again = load_in_worker(data, LIMITS, pool=full_pool)  # a later load of the same bytes
        assert np.array_equal(again.predict(X.iloc[:3]), model.predict(X.iloc[:3]))
    finally:
        del full_pool._load
    assert loads == [] and full_pool.started == started  # answered by the warm worker


# -- the attacks that crash or freeze an in-process loader --------------------------------------


def _deep_tuple_pickle(depth: int) -> bytes:
    """A pickle without a single global: a dict keyed by a ``depth``-deep nested tuple."""
    return b"\x80\x02}" + b")" + b"\x85" * depth + b"Ns."


def _seed_sequence_pickle(entropy_bytes: int) -> bytes:
    """numpy's SeedSequence (on the allowlist) called with a huge entropy integer."""

    class Payload:
        def __reduce__(self):
            return (np.random.SeedSequence, ((1 << (8 * entropy_bytes)) - 1,))

    return pickle.dumps(Payload(), protocol=4)


@pytest.mark.parametrize("depth", [100_000, 1_000_000])
def test_the_deep_tuple_pickle_is_refused_through_the_import_path(store, depth: int) -> None:
    began = time.monotonic()
    with pytest.raises(ModelShelfError) as caught:
        store.import_model(_deep_tuple_pickle(depth), "deep", limits=LIMITS)
    assert time.monotonic() - began < 60
    assert "\n" not in str(caught.value)
    # The unpickler's nesting bound refuses it now; before that bound, the worker contained the crash.
    assert "too deeply" in str(caught.value) or "crashed the loader" in str(caught.value)
    assert store.count() == 0
    model = _iris_model()[0]
    assert store.import_model(pickle.dumps(model), "after", limits=LIMITS)["version"] == 1  # carries on


def test_the_seed_sequence_pickle_is_stopped_in_time_through_the_import_path(store) -> None:
    attack = _seed_sequence_pickle(300_000)
    assert len(attack) > 300_000
    limits = LoadLimits(max_bytes=10_000_000, max_decompressed_bytes=10_000_000, timeout_s=3)
    ticks: list[float] = []
    stop = threading.Event()

    def tick() -> None:  # would stall if the load froze this process's threads (the GIL held in C)
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.05)

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    began = time.monotonic()
    try:
        # Refused by the SeedSequence bound now, or stopped by the worker's deadline.
        with pytest.raises(UnsafeModelError, match=r"took longer than 3 s|SeedSequence|entropy"):
            store.import_model(attack, "seed", limits=limits)
    finally:
        stop.set()
        ticker.join(5)
    elapsed = time.monotonic() - began
    assert elapsed < 15, elapsed
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps, default=0.0) < 1.0, gaps  # this process's threads kept running throughout
    assert store.count() == 0


# -- doctor and demo mode -------------------------------------------------------------------------


def test_doctor_prints_every_layer_and_exits_0_when_all_are_active(tmp_path) -> None:
    import json

    empty = str(tmp_path / "no-store-here")
    result = subprocess.run(
        [sys.executable, "-m", "core", "doctor", "--json", "--store", empty],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    payload = json.loads(result.stdout)
    layers = payload["layers"]
    for layer in ("landlock", "seccomp"):
        require_active(layers, layer)
    assert result.returncode == 0, result.stderr
    assert payload["all_active"] is True
    assert "MODELSHELF_LOAD_TIMEOUT_S" in layers["deadline"]["reason"]
    assert payload["ok"] is True and payload["exists"] is False and payload["problems"] == []
    text = subprocess.run(
        [sys.executable, "-m", "core", "doctor", "--store", empty],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    *lines, store_line = text.stdout.splitlines()
    assert text.returncode == 0
    assert [line.split()[0] for line in lines] == list(layers)
    assert all(line.split()[1] == "active" for line in lines)
    assert store_line == f"store {empty}: no store here, nothing to check"
    assert not (tmp_path / "no-store-here").exists()  # checking creates nothing


WEAK = {
    "landlock": {"active": False, "reason": "not on this kernel"},
    "landlock_net": {"active": False, "reason": "needs Landlock ABI 4"},
    "seccomp": {"active": False, "reason": "not on this kernel"},
    "rlimits": {"active": True, "reason": "set"},
}


def test_doctor_exits_1_and_says_why_when_a_layer_is_missing(monkeypatch, capsys) -> None:
    import core.safety.worker
    from core.cli import main

    monkeypatch.setattr(core.safety.proxy, "sandbox_layers", lambda pool=None: {k: dict(v) for k, v in WEAK.items()})
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "landlock      INACTIVE  not on this kernel" in out
    assert "demo mode refuses uploads" in out


def test_demo_mode_refuses_uploads_without_filesystem_and_network_layers(store, monkeypatch) -> None:
    import core.safety.worker

    model = _iris_model()[0]
    monkeypatch.setattr(core.safety.proxy, "sandbox_layers", lambda pool=None: WEAK)
    monkeypatch.setenv("MODELSHELF_DEMO", "1")
    with pytest.raises(UnsafeModelError, match="neither its filesystem nor its network sandbox"):
        store.import_model(pickle.dumps(model), "weak", limits=LIMITS)
    assert store.count() == 0
    monkeypatch.setenv("MODELSHELF_ALLOW_WEAK_SANDBOX", "1")
    assert store.import_model(pickle.dumps(model), "weak", limits=LIMITS)["version"] == 1
    monkeypatch.delenv("MODELSHELF_ALLOW_WEAK_SANDBOX")
    only_seccomp = WEAK | {"seccomp": {"active": True, "reason": "on"}}
    monkeypatch.setattr(core.safety.proxy, "sandbox_layers", lambda pool=None: only_seccomp)
    assert store.import_model(pickle.dumps(model), "weak", limits=LIMITS)["version"] == 2


# -- Store.load of an imported version: a proxy backed by the warm worker ---------------------------


def test_imported_versions_are_never_unpickled_in_this_process(store, monkeypatch) -> None:
    import core.safety.loader
    from core.frames import predict_table
    from core.safety import WorkerModel, default_pool

    def refuse(*args, **kwargs):
        raise AssertionError("load_untrusted ran in the serving process")

    monkeypatch.setattr(core.safety.loader, "_load_untrusted", refuse)
    model, X, _y = _iris_model()
    from core.datasets import load_dataset

    dataset = load_dataset("builtin:iris")
    record = store.import_model(pickle.dumps(model), "remote", dataset=dataset, limits=LIMITS)
    loaded = store.load("remote:1")
    assert isinstance(loaded.model, WorkerModel)
    assert list(loaded.model.classes_) == [0, 1, 2]
    assert loaded.model.n_features_in_ == 4
    evaluation = store.evaluate("remote:1", loaded=loaded)
    assert evaluation.reproduced is True and evaluation.accuracy == record["metrics"]["accuracy"]
    table = predict_table(loaded.model, X.iloc[:10], loaded.record)
    assert list(table["prediction"]) == list(model.predict(X.iloc[:10]))
    assert np.allclose(table["proba_2"], model.predict_proba(X.iloc[:10])[:, 2])

    idle = list(default_pool()._idle)
    assert idle
    for worker in idle:  # the worker dies: the next call starts another and loads the bytes again
        worker.process.kill()
        worker.process.wait()
    assert list(store.predict("remote:1", X.iloc[:3], loaded=loaded)["prediction"]) == list(model.predict(X.iloc[:3]))


def test_trust_true_loads_in_process_and_is_refused_in_demo_mode(store, monkeypatch) -> None:
    model = _iris_model()[0]
    store.import_model(pickle.dumps(model), "trusted", limits=LIMITS)
    loaded = store.load("trusted:1", trust=True)
    assert type(loaded.model).__name__ == "LogisticRegression"
    monkeypatch.setenv("MODELSHELF_DEMO", "1")
    with pytest.raises(ModelShelfError, match="only used through its sandboxed worker"):
        store.load("trusted:1", trust=True)


def test_a_worker_outlives_the_thread_that_started_it_and_a_dead_idle_worker_frees_its_place() -> None:
    """Streamlit runs each page in a short-lived thread; the pool (size 1) must not leak places."""
    pool = WorkerPool(size=1, probes=True)
    try:
        outcome: list = []
        starter = threading.Thread(target=lambda: outcome.append(pool.probe("threads")))
        starter.start()
        starter.join(120)
        assert outcome and outcome[0] >= 1
        time.sleep(0.5)
        assert pool.probe("threads") >= 1  # the same worker, after its starting thread ended
        assert pool.started == 1
        pool._idle[0].process.kill()
        pool._idle[0].process.wait()
        assert pool.probe("threads") >= 1  # a fresh one, not a wait for a place that never frees
        assert pool.started == 2
    finally:
        pool.close()


def test_a_malformed_reply_from_a_worker_is_refused_and_the_worker_replaced(full_pool, monkeypatch) -> None:
    """The parent reads the worker's answers as outside input: JSON and .npy only, checked."""
    import core.safety.worker

    real = core.safety.worker._read_message
    replies = iter([b"not json", b'{"ok": true, "result": {"__npy__": "%%%"}}'])

    def garbage(fd, deadline, limit):
        if limit == core.safety.worker._MAX_REPLY:
            real(fd, deadline, limit)  # let the worker answer, then replace its answer
            return next(replies)
        return real(fd, deadline, limit)

    monkeypatch.setattr(core.safety.worker, "_read_message", garbage)
    started = full_pool.started
    for _ in range(2):
        with pytest.raises(UnsafeModelError, match="malformed reply: refused"):
            full_pool.probe("threads")
    monkeypatch.undo()
    assert full_pool.probe("threads") >= 1
    assert full_pool.started >= started + 2  # each liar was killed and replaced
    with pytest.raises(UnsafeModelError, match="description of the file is malformed"):
        core.safety.proxy._check_facts({"estimator": "x", "format": "exe"})


def test_the_dashboard_predicts_and_rescores_an_imported_version_through_its_worker(tmp_path, monkeypatch) -> None:
    import streamlit as st

    import core.safety.loader
    from core import Store, load_dataset, train
    from tests.test_app import DETAIL, labels, metric, ok, open_page, open_tab

    dataset = load_dataset("builtin:iris")
    model = train(dataset, "random_forest", {"n_estimators": 10}, seed=3).model
    store = Store(tmp_path / "store")
    store.import_model(pickle.dumps(model), "upload", dataset=dataset, limits=LIMITS)
    store.close()

    def refuse(*args, **kwargs):
        raise AssertionError("load_untrusted ran in the dashboard's process")

    monkeypatch.setattr(core.safety.loader, "_load_untrusted", refuse)
    monkeypatch.setenv("MODEL_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("MODELSHELF_DEMO", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        at = open_tab(open_page(DETAIL, model="upload:1"), "Re-score")  # only the open tab is drawn
        at.button(key="rescore").click().run()
        ok(at)
        assert metric(at, "Reproduced") == "yes"
        at = open_tab(at, "Predict")
        at.button[labels(at.button).index("Predict")].click().run()
        ok(at)
        assert metric(at, "Prediction") in {"0", "1", "2"}
        assert any("scikit-learn" in c.value for c in at.caption if "Computed with" in c.value)
        X = dataset.X.head(5)
        at.file_uploader(key="batch_upload:1").upload("rows.csv", X.to_csv(index=False).encode(), "text/csv")
        at.run()
        ok(at)
        predictions = at.dataframe[-1].value
        assert list(predictions["prediction"]) == list(model.predict(X))
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()


def test_the_kernel_confirms_no_new_privs_seccomp_capabilities_and_rlimits(full_pool, make_pool) -> None:
    control = make_pool().probe("status")
    status = full_pool.probe("status")
    assert control["NoNewPrivs"] == "0" and status["NoNewPrivs"] == "1"
    assert control["Seccomp"] == "0"
    if os.environ.get("CI") or full_pool.report()["seccomp"]["active"]:
        assert status["Seccomp"] == "2"  # SECCOMP_MODE_FILTER
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
    limits = status["rlimits"]
    assert limits["RLIMIT_FSIZE"] == [0, 0] and limits["RLIMIT_CORE"] == [0, 0]
    assert limits["RLIMIT_NOFILE"] == [64, 64]
    assert limits["RLIMIT_AS"] == [2048 * 1024 * 1024] * 2


@pytest.mark.skipif(os.geteuid() != 0, reason="only a worker started by root holds capabilities to drop")
def test_dropped_capabilities_keep_a_root_worker_out_of_a_file_it_may_not_read(make_pool, tmp_path: Path) -> None:
    secret = tmp_path / "mode-000.txt"
    secret.write_text("root only through CAP_DAC_OVERRIDE")
    secret.chmod(0)
    try:
        # root, capabilities kept: file permissions do not apply (CAP_DAC_OVERRIDE)
        assert attempt(make_pool(), "read_file", path=str(secret)) == "root only through CAP_DAC_OVERRIDE"
        assert "PermissionError" in attempt(make_pool("capabilities"), "read_file", path=str(secret))
    finally:
        secret.chmod(0o600)


def test_a_joblib_bomb_is_refused_by_the_worker_memory_limit(store, monkeypatch, tmp_path: Path) -> None:
    """A few hundred KB of zlib that inflate to 400 MB: within the decompression limit, over the worker's memory."""
    import io
    import resource

    import joblib

    buffer = io.BytesIO()
    joblib.dump(np.zeros(400 * 1024 * 1024, dtype=np.uint8), buffer, compress=("zlib", 1))  # calloc: no RSS
    bomb = buffer.getvalue()
    assert len(bomb) < 3_000_000
    monkeypatch.setenv("MODELSHELF_WORKER_MEMORY_MB", "1024")
    limits = LoadLimits(max_bytes=10_000_000, max_decompressed_bytes=1_000_000_000, timeout_s=60)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UnsafeModelError, match=r"more memory than a model should|needed more than 1024 MB"):
        store.import_model(bomb, "bomb", limits=limits)
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert peak_after - peak_before < 100 * 1024  # KB: the inflating happened elsewhere
    assert store.count() == 0
    model = _iris_model()[0]
    assert store.import_model(pickle.dumps(model), "after", limits=LIMITS)["version"] == 1


def test_exports_of_an_imported_version_are_made_in_the_worker(store, monkeypatch) -> None:
    """ONNX, JSON, other file formats and the bundle of a stranger's model: converted over there."""
    import io
    import zipfile

    import core.safety.loader
    from core.portable.exports import export_version
    from core.portable.onnx_runtime import onnx_predict_table

    def refuse(*args, **kwargs):
        raise AssertionError("load_untrusted ran in the serving process")

    model, X, _y = _iris_model()
    from core.datasets import load_dataset

    store.import_model(pickle.dumps(model), "remote", dataset=load_dataset("builtin:iris"), limits=LIMITS)
    monkeypatch.setattr(core.safety.loader, "_load_untrusted", refuse)
    onnx = export_version(store, "remote:1", "onnx")
    assert onnx.info["status"] == "ok" and onnx.info["parity"]["passed"] is True
    labels = onnx_predict_table(onnx.data, X.iloc[:20], store.get("remote:1"))["prediction"]
    assert list(labels) == list(model.predict(X.iloc[:20]))
    params = export_version(store, "remote:1", "json")
    assert params.info["exact"] is True and b'"schema_version"' in params.data
    joblib_file = export_version(store, "remote:1", "joblib")
    assert joblib_file.info["same_file"] is False and len(joblib_file.data) > 100
    bundle = export_version(store, "remote:1", "bundle")
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        assert {"model.pkl", "model.onnx", "params.json", "README.md"} <= set(archive.namelist())


def test_a_refused_file_does_not_cost_a_worker_restart(full_pool: WorkerPool) -> None:
    """A refusal is an ordinary answer: the same warm worker serves the next request."""
    from core.errors import UnsafeModelError
    from core.safety import load_in_worker

    model, X, _y = _iris_model()
    load_in_worker(pickle.dumps(model), LIMITS, pool=full_pool)
    started = full_pool.started
    hostile = pickle.dumps(model.set_params(solver="../../etc/passwd"))
    with pytest.raises(UnsafeModelError):
        load_in_worker(hostile, LIMITS, pool=full_pool)
    assert load_in_worker(pickle.dumps(model.set_params(solver="lbfgs")), LIMITS, pool=full_pool).predict(X).shape == (
        150,
    )
    assert full_pool.started == started


def test_a_hanging_model_does_not_stop_another_visitors_page(tmp_path, monkeypatch) -> None:
    """While one visitor's model spins in compiled code, another session's page still answers.

    The spin is a test-only probe (a regex backtracking in C, the GIL never released inside the
    worker); before the worker, such a load froze every thread of the server. The second session
    renders the Model detail page of an imported version, which itself goes through the pool.
    """
    import streamlit as st

    import core.safety.proxy
    from core import Store, load_dataset
    from tests.test_app import DETAIL, ok, open_page

    model, _X, _y = _iris_model()
    store = Store(tmp_path / "store")
    store.import_model(pickle.dumps(model), "other", dataset=load_dataset("builtin:iris"), limits=LIMITS)
    store.close()
    pool = WorkerPool(size=2, probes=True)
    monkeypatch.setattr(core.safety.proxy, "default_pool", lambda: pool)
    monkeypatch.setenv("MODEL_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("MODELSHELF_DEMO", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    outcome: dict[str, str] = {}

    def spin() -> None:
        try:
            pool.probe("spin", timeout_s=6)
        except ModelShelfError as exc:
            outcome["error"] = str(exc)

    try:
        open_page(DETAIL, model="other:1")  # warm: imports and the page's first run
        hanging = threading.Thread(target=spin)
        hanging.start()
        time.sleep(0.5)
        began = time.monotonic()
        at = open_page(DETAIL, model="other:1")
        answered = time.monotonic() - began
        ok(at)
        assert hanging.is_alive(), "the spin ended before the other page was served"
        assert answered < 5, answered
        hanging.join(30)
        assert "took longer than 6 s" in outcome.get("error", ""), outcome
    finally:
        pool.close()
        st.cache_resource.clear()
        st.cache_data.clear()


def test_the_worker_cannot_change_the_file_it_is_handed_model_bytes_in(full_pool: WorkerPool) -> None:
    """The parent writes each upload into a shared-memory file; the worker holds it read-only, so a
    subverted worker can neither rewrite bytes the parent hands it nor shrink the file under it."""
    outcomes = full_pool.probe("change_shared")
    assert len(outcomes) == 2 and "changed" not in outcomes, outcomes
