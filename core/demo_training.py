"""Training a visitor's data under the public demo's limits: in demo mode every fit runs in a worker.

In demo mode (``core.settings``: ``demo``) a stranger's CSV must not hang or starve the server.
Each fit (Train's, each estimator of Compare estimators, cross-validation folds included) runs
in a process of a ``core.safety.WorkerPool`` of its own: the fresh, sandboxed interpreter that
loads strangers' model files (one BLAS/OpenMP thread, ``RLIMIT_CPU``, ``RLIMIT_AS`` at
``demo_train_memory_mb``, killed at the wall deadline, a fresh worker afterwards), while the
server's thread waits on a pipe without the GIL. The limits:

* ``demo_train_timeout_s``: the wall and CPU seconds of one request: a Train fit (from when its
  worker has the request), or a whole comparison (its estimators share them, a worker's start of
  about 1.5 s included; one the time did not reach is a row with the error);
* ``demo_train_max_rows``: a longer data set is refused before any fit;
* ``demo_trainings``: requests at once in this server process; one more is refused at once, not
  queued (a queued run would leave its visitor's page waiting with no answer);
* ``demo_train_memory_mb``: the worker's address space; past it the fit fails and is reported;
* ``demo_session_max_bytes``: a fitted model larger than a visitor may store is not sent back.

Past a limit the request ends with one :class:`TrainingStoppedError` line. Nothing is stored:
saving is the visitor's separate, later step, and there is no result to save.

How the model comes back: the worker pickles the fitted pipeline and the server reads those bytes
with the restricted loader (``core.safety.loader``: the allowlist, policy and structure checks
uploads go through), never ``pickle.loads``. The code that made them is ours, but its process
worked on a stranger's data, so its reply is outside input. The server needs the object itself,
not a proxy to a model kept in the worker: the visitor saves it later in a format chosen then,
and the store writes the file from the object (a worker kept per shown result would hold a
process per visitor). What the Train page draws of the held-out rows (ROC curve, predictions)
comes from the worker too, so a slow ``predict`` (k-NN on many rows) runs under the limits.

Outside demo mode (a trusted single user) :func:`train` and :func:`compare_estimators` are
``core.training.train`` and ``core.workbench.compare_estimators``, in this process. The command
line (``python -m core train``) calls those directly: only the operator runs it, and only the
dashboard is public.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from sklearn.pipeline import Pipeline

from core import training, workbench
from core.catalog_tasks import spec_for
from core.datasets import Dataset, feature_types
from core.errors import FormatError, LimitError, TrainingStoppedError, UnsafeModelError
from core.safety import LoadLimits, WorkerPool
from core.safety.loader import _load_untrusted
from core.settings import Settings, load_settings
from core.training import Prepared, TrainResult, check_categories

_LOCK = threading.Lock()
#: ``(demo_trainings, demo_train_memory_mb)`` -> the pool and its free slots (made again when they change).
_STATE: dict[tuple[int, int], tuple[WorkerPool, threading.Semaphore]] = {}
_RUNNING = 0
#: Less time than this left in a comparison: the next estimator is not started.
_MIN_LEFT_S = 0.5


def running() -> int:
    """How many training requests this process runs in workers right now."""
    return _RUNNING


def _pool(settings: Settings) -> tuple[WorkerPool, threading.Semaphore]:
    key = (settings.demo_trainings, settings.demo_train_memory_mb)
    with _LOCK:
        if key not in _STATE:
            for pool, _ in _STATE.values():
                pool.close()  # settings changed: the old pool's idle workers stop, busy ones when they end
            _STATE.clear()
            pool = WorkerPool(size=key[0], memory_mb=key[1], max_models=0)
            _STATE[key] = (pool, threading.BoundedSemaphore(key[0]))
        return _STATE[key]


@contextlib.contextmanager
def _slot(settings: Settings) -> Iterator[WorkerPool]:
    """One of the ``demo_trainings`` slots, or a refusal at once."""
    global _RUNNING
    pool, slots = _pool(settings)
    if not slots.acquire(blocking=False):
        n = settings.demo_trainings
        raise TrainingStoppedError(
            f"Training refused: this public demo already runs {n} training request{'s' if n > 1 else ''} at once, "
            "its limit; try again in a minute"
        )
    with _LOCK:
        _RUNNING += 1
    try:
        yield pool
    finally:
        with _LOCK:
            _RUNNING -= 1
        slots.release()


def _check_rows(dataset: Dataset, settings: Settings) -> None:
    rows, most = len(dataset.y), settings.demo_train_max_rows
    if rows > most:
        raise TrainingStoppedError(
            f"Training refused: this public demo trains on at most {most:,} rows and the data has {rows:,}; "
            "use a sample of it"
        )


def _stopped(exc: UnsafeModelError | FormatError, settings: Settings) -> TrainingStoppedError:
    """The one line for a fit its worker's limits ended (or whose reply could not be taken)."""
    limit = exc.limit if isinstance(exc, LimitError) else ""
    if limit in ("time", "cpu"):
        why = f"it ran past the demo's {settings.demo_train_timeout_s:g} s limit"
        hint = "fewer rows, folds or estimators, or a faster estimator"
    elif limit == "memory":
        why = f"it needed more than the demo's {settings.demo_train_memory_mb} MB of memory"
        hint = "fewer rows or columns"
    elif limit == "crash":
        why, hint = "its worker process died", "other settings"
    else:  # the worker did not start, or what it sent back was refused by the restricted loader
        why, hint = f"the worker's reply was refused ({exc})", "other settings"
    return TrainingStoppedError(f"Training stopped: {why}; nothing was stored (try {hint})")


def _model(encoded: Any, settings: Settings) -> Pipeline:
    """The worker's pickled pipeline, read by the restricted loader (see the module docstring)."""
    try:
        data = base64.b64decode(str(encoded), validate=True)
    except ValueError as exc:
        raise UnsafeModelError("The training worker sent a malformed model: refused") from exc
    limits = LoadLimits(
        max_bytes=max(len(data), 1),
        max_decompressed_bytes=settings.max_decompressed_bytes,
        timeout_s=settings.load_timeout_s,
    )
    model = _load_untrusted(data, limits=limits).model
    if not isinstance(model, Pipeline):
        raise UnsafeModelError(f"The training worker sent a {type(model).__name__}, not a pipeline: refused")
    return model


def fit_in_worker(
    pool: WorkerPool,
    prepared: Prepared,
    estimator: str,
    params: dict[str, Any] | None,
    scale: bool,
    cv: int | None,
    *,
    timeout_s: float,
    settings: Settings,
    outputs: bool = True,
) -> TrainResult:
    """``core.training.fit_prepared`` run in a worker of ``pool`` for at most ``timeout_s`` seconds."""
    resolved = spec_for(estimator, prepared.task).resolve(params)
    X = prepared.dataset.X
    # The worker reads the default settings: the deployment's cap on text columns is applied here.
    check_categories(X, [c for c, t in feature_types(X).items() if t == "category"], settings.max_categories)
    request = {"prepared": prepared, "estimator": estimator, "params": params, "scale": scale, "cv": cv}
    request["max_model_bytes"] = settings.demo_session_max_bytes  # a bigger model could never be saved here
    try:
        reply = pool.task("fit", timeout_s, outputs=outputs, **request)
        model = _model(reply["model"], settings)
    except (UnsafeModelError, FormatError) as exc:  # a limit, a crash, or bytes the loader refused
        raise _stopped(exc, settings) from exc
    return TrainResult(
        model=model,
        estimator_key=estimator,
        params=resolved,
        scale=scale,
        dataset=prepared.dataset,
        split=prepared.split,
        X_test=prepared.X_test,
        y_test=prepared.y_test,
        metrics=dict(reply["metrics"]),
        fit_seconds=float(reply["fit_seconds"]),
        warnings=[str(w) for w in reply["warnings"]],
        task=prepared.task,
        task_reason=prepared.task_reason,
        cv=reply["cv"],
        outputs=reply["outputs"],
    )


def train(
    dataset: Dataset,
    estimator: str,
    params: dict[str, Any] | None = None,
    test_size: float = 0.33,
    seed: int | None = 7,
    stratify: bool = False,
    scale: bool = False,
    task: str | None = None,
    cv: int | None = None,
    *,
    settings: Settings | None = None,
) -> TrainResult:
    """``core.training.train``; in demo mode in a worker, under the demo's limits."""
    settings = settings or load_settings()
    if not settings.demo:
        return training.train(dataset, estimator, params, test_size, seed, stratify, scale, task, cv)
    _check_rows(dataset, settings)
    with _slot(settings) as pool:

        def fit(prep: Prepared, key: str, params: dict[str, Any] | None, scale: bool, cv: int | None) -> TrainResult:
            limit = settings.demo_train_timeout_s
            return fit_in_worker(pool, prep, key, params, scale, cv, timeout_s=limit, settings=settings)

        return training.train(dataset, estimator, params, test_size, seed, stratify, scale, task, cv, fit=fit)


def compare_estimators(
    dataset: Dataset,
    estimators: Sequence[str] | None = None,
    *,
    settings: Settings | None = None,
    **options: Any,
) -> workbench.Leaderboard:
    """``core.workbench.compare_estimators``; in demo mode each fit in a worker, all within one time limit."""
    settings = settings or load_settings()
    if not settings.demo:
        return workbench.compare_estimators(dataset, estimators, **options)
    _check_rows(dataset, settings)
    limit = settings.demo_train_timeout_s
    with _slot(settings) as pool:
        deadline = time.monotonic() + limit

        def fit(prep: Prepared, key: str, params: dict[str, Any] | None, scale: bool, cv: int | None) -> TrainResult:
            left = deadline - time.monotonic()
            if left < _MIN_LEFT_S:
                raise TrainingStoppedError(f"Not fitted: the comparison used up the demo's {limit:g} s limit")
            return fit_in_worker(pool, prep, key, params, scale, cv, timeout_s=left, settings=settings, outputs=False)

        return workbench.compare_estimators(dataset, estimators, fit=fit, **options)
