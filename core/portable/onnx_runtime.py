"""Predict through onnxruntime: ``predict --engine onnx`` and the dashboard's fast single row.

A session costs milliseconds to build and microseconds to run, so sessions are cached by the
ONNX file's sha256 (a content address: a changed file is a different key, never a stale hit).
Every file is checked by ``onnx_meta.read_onnx`` (self-contained, valid) before a session is
made from it.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DatasetError, FormatError
from core.formats import sha256_bytes
from core.frames import align_features, as_frame, select_columns, with_probabilities
from core.portable.onnx_meta import INPUT_TENSOR, META_FEATURES, META_LAYOUT, read_onnx

_CACHE_SIZE = 16
_sessions: OrderedDict[str, Any] = OrderedDict()
_lock = threading.Lock()


def is_cached(sha256: str | None) -> bool:
    """Whether a session for the ONNX file with this sha256 is ready (then its bytes need not be read)."""
    with _lock:
        return sha256 is not None and sha256 in _sessions


def session_for(data: bytes | None, sha256: str | None = None) -> Any:
    """An onnxruntime InferenceSession for these bytes, reused while the bytes are the same.

    ``data`` may be None when ``sha256`` names a cached session.
    """
    import onnxruntime as ort  # heavy (native runtime): loaded with the first session, not on import

    key = sha256 or (sha256_bytes(data) if data is not None else None)
    with _lock:
        if key is not None and key in _sessions:
            _sessions.move_to_end(key)
            return _sessions[key]
    if data is None or key is None:  # (key is None only when data is)
        raise FormatError("No ONNX bytes given and no cached session for them")
    read_onnx(data)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise FormatError(f"onnxruntime cannot run this model: {' '.join(str(exc).split())[:200]}") from exc
    with _lock:
        _sessions[key] = session
        while len(_sessions) > _CACHE_SIZE:
            _sessions.popitem(last=False)
    return session


@dataclass(frozen=True)
class _Plan:
    """What a session's metadata says about feeding it, read once per session (not per call)."""

    layout: str
    features: list[dict[str, Any]] | None  # None: the frame's first ``width`` columns
    width: int | None
    tensor_name: str
    outputs: list[str]


_plans: weakref.WeakKeyDictionary[Any, _Plan] = weakref.WeakKeyDictionary()


def _plan(session: Any) -> _Plan:
    plan = _plans.get(session)
    if plan is None:
        meta = session.get_modelmeta().custom_metadata_map
        inputs = session.get_inputs()
        single = len(inputs) == 1
        plan = _Plan(
            layout=meta.get(META_LAYOUT, "tensor"),
            features=json.loads(meta[META_FEATURES]) if META_FEATURES in meta else None,
            width=inputs[0].shape[1] if single and isinstance(inputs[0].shape[1], int) else None,
            tensor_name=inputs[0].name if single else INPUT_TENSOR,
            outputs=[o.name for o in session.get_outputs()],
        )
        _plans[session] = plan
    return plan


def _feeds(session: Any, X: pd.DataFrame) -> dict[str, np.ndarray]:
    plan = _plan(session)
    layout = plan.layout
    if plan.features is not None:
        features = plan.features
    else:
        width = plan.width if plan.width is not None else len(X.columns)
        features = [{"name": str(c), "kind": "number"} for c in list(X.columns)[:width]]
    names = [f["name"] for f in features]
    chosen = select_columns(X, names)  # no copy when already in the model's order (the usual case)
    try:
        if layout == "tensor":
            return {plan.tensor_name: chosen.to_numpy(dtype=np.float32)}
        feeds = {}
        for feature in features:
            column = X[feature["name"]]
            if feature["kind"] == "category":
                values = ["" if pd.isna(v) else str(v) for v in column.tolist()]
                feeds[feature["name"]] = np.asarray(values, dtype=object).reshape(-1, 1)
            else:
                feeds[feature["name"]] = column.to_numpy(dtype=np.float32).reshape(-1, 1)
        return feeds
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"Could not feed these rows to the ONNX model: {exc}") from exc


def run_onnx(data: bytes | None, X: pd.DataFrame, sha256: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(labels, probabilities or None)`` for the rows of ``X`` (raw feature columns)."""
    session = session_for(data, sha256)
    outputs = _plan(session).outputs
    try:
        results = session.run(None, _feeds(session, X))
    except DatasetError:
        raise
    except Exception as exc:  # onnxruntime raises its own exception types
        raise DatasetError(f"Could not predict on these rows with ONNX: {' '.join(str(exc).split())[:200]}") from exc
    named = dict(zip(outputs, results, strict=True))
    labels = np.asarray(named.get("label", results[0])).reshape(-1)
    proba = named.get("probabilities")
    return labels, (np.asarray(proba) if proba is not None else None)


def onnx_predict_table(
    data: bytes | None, frame: pd.DataFrame, record: Mapping[str, Any], sha256: str | None = None
) -> pd.DataFrame:
    """Like ``core.frames.predict_table`` (same columns), computed by onnxruntime."""
    X = align_features(as_frame(frame), record)
    if X.empty:
        raise DatasetError("There are no rows to predict")
    labels, proba = run_onnx(data, X, sha256)
    out = as_frame(frame).copy()
    classes = record.get("classes") or (record.get("dataset") or {}).get("classes")
    out["prediction"] = labels
    if proba is not None:
        names = classes if classes is not None and len(classes) == proba.shape[1] else range(proba.shape[1])
        out = with_probabilities(out, proba, names)
    return out
