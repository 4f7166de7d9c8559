"""A stranger's model as the server sees it: a proxy to the worker that holds it.

:func:`load_untrusted` (the door every caller uses for bytes from outside) and
:func:`load_in_worker` load, check and describe the bytes in a sandboxed worker and return a
:class:`WorkerModel`, whose calls run over there; the description the worker sends back is checked
(:func:`_check_facts`) like any outside input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import core.safety.sandbox as sandbox
from core.errors import InvalidParameterError, UnsafeModelError
from core.safety.limits import LoadLimits
from core.safety.protocol import METHODS
from core.safety.worker import WorkerPool, default_pool
from core.settings import load_settings


class WorkerModel:
    """A model held by a worker (a stranger's, or any in a public demo): its calls, run over there.

    ``predict``, ``predict_proba`` and ``decision_function`` (those the model has: ``hasattr``
    answers as for the model itself) return numpy arrays; ``classes_``, ``n_features_in_``,
    ``feature_names_in_`` come from the facts the worker sent once; ``get_params()`` returns the
    JSON-safe parameters (``core.describe.describe_model``), not live objects. ``score_metrics``
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

    def _held(self, op: str, shape: type, what: str, **args: Any) -> Any:
        """``op`` of ``HELD_OPERATIONS`` on the model over there; a reply of another type is refused."""
        reply = self._pool.run(op, sha256=self._sha256, fetch=self._fetch, limits=self._limits, **args)
        if not isinstance(reply, shape):
            raise UnsafeModelError(f"The model worker sent a malformed {what}: refused")
        return reply

    def convert(self, to: str, X: Any = None, feature_names: list[str] | None = None) -> dict[str, Any]:
        """The model converted by the worker (``onnx``, ``json`` or a file format): see ``core.worker_ops._convert``.

        In demo mode the result may take at most ``demo_session_max_bytes``: a skops file can be
        many times its pickle, and the reply is decoded and kept in the server's memory.
        """
        settings = load_settings()
        limit = settings.demo_session_max_bytes if settings.demo else None
        return self._held("convert", dict, "conversion", to=to, X=X, names=feature_names, max_bytes=limit)

    def measure_formats(self, variants: list[tuple[str, int]], repeats: int) -> list[list[float]]:
        """``[size, save_s, load_s]`` per ``(format, compress)``, measured by the worker (the Formats page)."""
        rows = self._held("formats", list, "format comparison", variants=[list(v) for v in variants], repeats=repeats)
        numbers = (int, float)
        ok = len(rows) == len(variants) and all(
            isinstance(r, list) and len(r) == 3 and all(isinstance(x, numbers) and 0 <= x < 1e12 for x in r)
            for r in rows
        )
        if not ok:
            raise UnsafeModelError("The model worker sent malformed format figures: refused")
        return rows

    def diagram(self) -> str:
        """scikit-learn's HTML diagram of the model, drawn by the worker (at most ``_MAX_DIAGRAM`` characters)."""
        html = self._held("diagram", str, "diagram")
        if len(html) > _MAX_DIAGRAM:
            raise UnsafeModelError(f"The model's diagram is over {_MAX_DIAGRAM:,} characters: not drawn")
        return html

    def score_metrics(self, X: Any, y: Any) -> dict[str, Any]:
        """``classification_metrics(model, X, y)``, computed by the worker."""
        return self._pool.run("score", sha256=self._sha256, fetch=self._fetch, limits=self._limits, X=X, y=y)


#: The longest diagram shown, in characters (each tree of a forest adds a few hundred).
_MAX_DIAGRAM = 5_000_000

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
    sha256, facts = pool.load_new(data, limits)
    _check_facts(facts)
    return WorkerModel(pool, sha256, fetch or (lambda: data), limits, facts)


def load_untrusted(
    data: bytes,
    *,
    limits: LoadLimits | None = None,
    fetch: Callable[[], bytes] | None = None,
    pool: WorkerPool | None = None,
) -> WorkerModel:
    """The one door for model bytes from outside: loaded, checked and held in a sandboxed worker.

    ``load_in_worker`` with the configured limits by default. Raises a ModelShelfError with one
    message fit to show a user (FormatError, UnsafeModelError...); the model never enters this process.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidParameterError(f"load_untrusted takes the file's bytes, not a {type(data).__name__}")
    return load_in_worker(data, limits or LoadLimits.from_settings(), fetch=fetch, pool=pool)


# -- whether the worker's sandbox is strong enough for strangers' uploads --------------------------


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
    settings = settings or load_settings()
    if not settings.demo or settings.allow_weak_sandbox:
        return
    if sandbox_is_weak(sandbox_layers(pool)):
        raise UnsafeModelError(
            "Uploads are refused here: the model worker has neither its filesystem nor its network sandbox "
            "on this machine (see python -m core doctor; MODELSHELF_ALLOW_WEAK_SANDBOX=1 accepts it)"
        )
