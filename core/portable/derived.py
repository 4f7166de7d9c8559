"""The derived exports of a stored version: its ONNX and JSON forms, made once, proved, kept and recorded.

ONNX and JSON exports are derived files: made on first request, checked against the version's
kept evaluation set (ONNX parity, JSON exactness), written beside the model file through the
artifact store (``NAME/vN/model.onnx``, ``NAME/vN/params.json``: temp file then rename) and
recorded in the version's ``exports`` section with their sha256, so later downloads, bundles and
ONNX predictions read the checked file instead of converting again. A refusal is recorded too (the
dashboard can say why) and raised with its reason.

Used by ``exports`` (downloads, ONNX prediction) and ``bundle`` (what a bundle carries, and the
forms made again from an imported bundle's safely loaded model).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from core.environment import package_version
from core.errors import FormatError, LimitError, ModelShelfError
from core.portable.conversions import onnx_of, params_of
from core.portable.onnx_export import PROBA_TOLERANCE, NotConvertibleError
from core.record import ref_of
from core.store import LoadedModel, Store

ONNX_FILE = "model.onnx"
PARAMS_FILE = "params.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _evaluation_rows(store: Store, record: Mapping[str, Any]) -> pd.DataFrame | None:
    if not record.get("evaluation_set"):
        return None
    X, _ = store.evaluation_set(ref_of(record))
    return X


def _feature_names(record: Mapping[str, Any]) -> list[str] | None:
    return (record.get("dataset") or {}).get("feature_names")


def _recorded(store: Store, record: Mapping[str, Any], key: str, what: str) -> tuple[bytes, dict[str, Any]] | None:
    info = (record.get("exports") or {}).get(key) or {}
    if info.get("status") != "ok" or not info.get("path"):
        return None
    if info.get("model_sha256") not in (None, record["sha256"]):
        return None
    try:
        return store.read_attached(ref_of(record), info["path"], info["sha256"], what), info
    except Exception:  # noqa: BLE001 - a missing or damaged export is made again, not fatal
        return None


def ensure_onnx(store: Store, ref: str, loaded: LoadedModel | None = None) -> tuple[bytes, dict[str, Any]]:
    """The version's ONNX bytes and their recorded export info (parity, sha256, tolerance).

    Converts and runs the parity check on first use; raises NotConvertibleError with the reason
    when skl2onnx cannot convert the model or the converted model disagrees with it.
    """
    record = store.get(ref)
    if found := _recorded(store, record, "onnx", "ONNX export"):
        return found
    loaded = loaded or store.load(ref_of(record))
    X = _evaluation_rows(store, record)
    base = {"exported_at": _now(), "model_sha256": record["sha256"], "tolerance": PROBA_TOLERANCE}
    base["packages"] = {p: package_version(p) for p in ("skl2onnx", "onnx", "onnxruntime")}
    try:
        result = onnx_of(loaded.model, X, _feature_names(record))
    except LimitError:  # the worker was busy, slow or crashed: nothing is known of the model yet
        raise
    except ModelShelfError as exc:  # skl2onnx refused, or onnxruntime could not run what it made
        reason = str(exc) if isinstance(exc, NotConvertibleError) else f"not convertible: {exc}"
        store.merge_exports(ref_of(record), {"onnx": base | {"status": "refused", "reason": reason}})
        raise NotConvertibleError(reason) from exc
    parity = result.parity.to_dict() if result.parity else None
    if result.parity is not None and not result.parity.passed:
        reason = f"not convertible faithfully: {result.parity.summary()}"
        store.merge_exports(ref_of(record), {"onnx": base | {"status": "refused", "reason": reason, "parity": parity}})
        raise NotConvertibleError(reason)
    stored = store.attach_file(ref_of(record), ONNX_FILE, result.data)
    info = base | stored | {"status": "ok", "parity": parity, "layout": result.layout}
    store.merge_exports(ref_of(record), {"onnx": info})
    return result.data, info


def ensure_params(store: Store, ref: str, loaded: LoadedModel | None = None) -> tuple[bytes, dict[str, Any]]:
    """The version's plain-parameter JSON and its export info (rows checked, exactness)."""
    record = store.get(ref)
    if found := _recorded(store, record, "json", "JSON export"):
        return found
    loaded = loaded or store.load(ref_of(record))
    X = _evaluation_rows(store, record)
    base = {"exported_at": _now(), "model_sha256": record["sha256"]}
    try:
        result = params_of(loaded.model, X, _feature_names(record))
    except FormatError as exc:
        store.merge_exports(ref_of(record), {"json": base | {"status": "refused", "reason": str(exc)}})
        raise
    data = result.text.encode("utf-8")
    stored = store.attach_file(ref_of(record), PARAMS_FILE, data)
    info = base | stored | {"status": "ok"} | result.summary()
    store.merge_exports(ref_of(record), {"json": info})
    return data, info
