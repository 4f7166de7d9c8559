"""Exports of a stored version: every download format, made once, proved, kept and recorded.

ONNX and JSON exports are derived files: made on first request, checked against the version's
kept evaluation set (ONNX parity, JSON exactness), written beside the model file through the
artifact store (``NAME/vN/model.onnx``, ``NAME/vN/params.json``: temp file then rename) and
recorded in the version's ``exports`` section with their sha256, so later downloads and ONNX
predictions read the checked file instead of converting again. A refusal is recorded too (the
dashboard can say why) and raised with its reason. pickle/joblib/skops downloads are the stored
file itself when the format matches (same sha256), else the loaded model written in that format.

Entry points for front ends: ``export_version``, ``export_status``, ``ensure_onnx``,
``ensure_params``, ``predict_with_onnx``, ``predict_rows`` (and ``core.portable.how_to_load.how_to_load``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from core import formats
from core.environment import package_version
from core.errors import FormatError, InvalidParameterError, ModelShelfError
from core.portable.how_to_load import DOWNLOAD_FORMATS, check_download_format, download_filename
from core.portable.onnx_export import PROBA_TOLERANCE, NotConvertibleError, OnnxExport, Parity, export_onnx
from core.portable.onnx_runtime import is_cached, onnx_predict_table
from core.portable.params_json import ParamsExport, export_params, read_params
from core.store import LoadedModel, Store

ONNX_FILE = "model.onnx"
PARAMS_FILE = "params.json"
MEDIA_TYPES = {
    "pickle": "application/octet-stream",
    "joblib": "application/octet-stream",
    "skops": "application/zip",
    "onnx": "application/octet-stream",
    "json": "application/json",
    "bundle": "application/zip",
}


@dataclass
class Exported:
    """A version in one download format: the bytes, the file name to give them, and what was checked."""

    data: bytes
    filename: str
    format: str
    ref: str
    media_type: str
    info: dict[str, Any] = field(default_factory=dict)


# -- conversions: here for this store's own models, in the worker for strangers' ---------------


def _in_worker(model: Any) -> bool:
    from core.safety import WorkerModel

    return isinstance(model, WorkerModel)


def _decoded(reply: dict[str, Any], key: str = "data") -> bytes:
    import base64
    import binascii

    try:
        return base64.b64decode(str(reply[key]), validate=True)
    except (KeyError, binascii.Error, ValueError) as exc:
        raise FormatError("The model worker sent a malformed conversion") from exc


def onnx_of(model: Any, X: pd.DataFrame | None, feature_names: list[str] | None) -> OnnxExport:
    """``export_onnx``, run by the worker when the model is a stranger's (never unpickled here)."""
    if not _in_worker(model):
        return export_onnx(model, X, feature_names)
    reply = model.convert("onnx", X, feature_names)
    try:
        parity = Parity(**reply["parity"]) if reply.get("parity") is not None else None
        return OnnxExport(data=_decoded(reply), parity=parity, layout=str(reply["layout"]))
    except (KeyError, TypeError) as exc:
        raise FormatError("The model worker sent a malformed ONNX conversion") from exc


def params_of(model: Any, X: pd.DataFrame | None, feature_names: list[str] | None) -> ParamsExport:
    """``export_params``, run by the worker for a stranger's model; its text is parsed here with bounds."""
    if not _in_worker(model):
        return export_params(model, X, feature_names)
    reply = model.convert("json", X, feature_names)
    text = str(reply.get("text", ""))
    params = read_params(text.encode("utf-8"))
    exact = reply.get("exact")
    rows = reply.get("rows_checked")
    if not isinstance(rows, int) or exact not in (True, False, None):
        raise FormatError("The model worker sent a malformed JSON conversion")
    return ParamsExport(text=text, params=params, rows_checked=rows, exact=exact)


def dumps_of(model: Any, fmt: str) -> bytes:
    """The model written as a pickle/joblib/skops file, by the worker for a stranger's model."""
    if not _in_worker(model):
        return formats.dumps(model, fmt)
    return _decoded(model.convert(fmt))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _ref(record: dict[str, Any]) -> str:
    return f"{record['name']}:{record['version']}"


def _evaluation_rows(store: Store, record: dict[str, Any]) -> pd.DataFrame | None:
    if not record.get("evaluation_set"):
        return None
    X, _ = store.evaluation_set(_ref(record))
    return X


def _feature_names(record: dict[str, Any]) -> list[str] | None:
    return (record.get("dataset") or {}).get("feature_names")


def _recorded(store: Store, record: dict[str, Any], key: str, what: str) -> tuple[bytes, dict[str, Any]] | None:
    info = (record.get("exports") or {}).get(key) or {}
    if info.get("status") != "ok" or not info.get("path"):
        return None
    if info.get("model_sha256") not in (None, record["sha256"]):
        return None
    try:
        return store.read_attached(_ref(record), info["path"], info["sha256"], what), info
    except Exception:  # noqa: BLE001 - a missing or damaged export is made again, not fatal
        return None


def export_status(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per download format, what is known without doing any work: for a page to offer or explain.

    ``{"onnx": {"status": "ok"|"refused"|"not yet", "reason": ...}, "json": {...}, "joblib": {...}}``;
    pickle/joblib/skops and bundle are always available (the bundle leaves out refused forms).
    """
    exports = record.get("exports") or {}
    status: dict[str, dict[str, Any]] = {}
    for fmt in DOWNLOAD_FORMATS:
        if fmt in ("onnx", "json"):
            info = exports.get(fmt) or {}
            current = info.get("model_sha256") in (None, record.get("sha256"))
            state = info.get("status") if info and current else "not yet"
            status[fmt] = {"status": state, "reason": info.get("reason") if state == "refused" else None}
        else:
            status[fmt] = {"status": "ok", "reason": None}
    return status


def ensure_onnx(store: Store, ref: str, loaded: LoadedModel | None = None) -> tuple[bytes, dict[str, Any]]:
    """The version's ONNX bytes and their recorded export info (parity, sha256, tolerance).

    Converts and runs the parity check on first use; raises NotConvertibleError with the reason
    when skl2onnx cannot convert the model or the converted model disagrees with it.
    """
    record = store.get(ref)
    if found := _recorded(store, record, "onnx", "ONNX export"):
        return found
    loaded = loaded or store.load(_ref(record))
    X = _evaluation_rows(store, record)
    base = {"exported_at": _now(), "model_sha256": record["sha256"], "tolerance": PROBA_TOLERANCE}
    base["packages"] = {p: package_version(p) for p in ("skl2onnx", "onnx", "onnxruntime")}
    try:
        result = onnx_of(loaded.model, X, _feature_names(record))
    except ModelShelfError as exc:  # skl2onnx refused, or onnxruntime could not run what it made
        reason = str(exc) if isinstance(exc, NotConvertibleError) else f"not convertible: {exc}"
        store.merge_exports(_ref(record), {"onnx": base | {"status": "refused", "reason": reason}})
        raise NotConvertibleError(reason) from None
    parity = result.parity.to_dict() if result.parity else None
    if result.parity is not None and not result.parity.passed:
        reason = f"not convertible faithfully: {result.parity.summary()}"
        store.merge_exports(_ref(record), {"onnx": base | {"status": "refused", "reason": reason, "parity": parity}})
        raise NotConvertibleError(reason)
    stored = store.attach_file(_ref(record), ONNX_FILE, result.data)
    info = base | stored | {"status": "ok", "parity": parity, "layout": result.layout}
    store.merge_exports(_ref(record), {"onnx": info})
    return result.data, info


def ensure_params(store: Store, ref: str, loaded: LoadedModel | None = None) -> tuple[bytes, dict[str, Any]]:
    """The version's plain-parameter JSON and its export info (rows checked, exactness)."""
    record = store.get(ref)
    if found := _recorded(store, record, "json", "JSON export"):
        return found
    loaded = loaded or store.load(_ref(record))
    X = _evaluation_rows(store, record)
    base = {"exported_at": _now(), "model_sha256": record["sha256"]}
    try:
        result = params_of(loaded.model, X, _feature_names(record))
    except FormatError as exc:
        store.merge_exports(_ref(record), {"json": base | {"status": "refused", "reason": str(exc)}})
        raise
    data = result.text.encode("utf-8")
    stored = store.attach_file(_ref(record), PARAMS_FILE, data)
    info = base | stored | {"status": "ok"} | result.summary()
    store.merge_exports(_ref(record), {"json": info})
    return data, info


def export_version(store: Store, ref: str, fmt: str) -> Exported:
    """A version as a downloadable file in ``fmt`` (pickle, joblib, skops, onnx, json or bundle)."""
    check_download_format(fmt)
    record = store.get(ref)
    filename = download_filename(record, fmt)
    if fmt == "onnx":
        data, info = ensure_onnx(store, _ref(record))
    elif fmt == "json":
        data, info = ensure_params(store, _ref(record))
    elif fmt == "bundle":
        from core.portable.bundle import build_bundle

        data, info = build_bundle(store, _ref(record))
    elif fmt == record["format"]:
        data = store.read_artifact(_ref(record))
        info = {"sha256": record["sha256"], "same_file": True}
    else:
        data = dumps_of(store.load(_ref(record)).model, fmt)
        info = {"sha256": formats.sha256_bytes(data), "same_file": False, "converted_from": record["format"]}
    return Exported(data=data, filename=filename, format=fmt, ref=_ref(record), media_type=MEDIA_TYPES[fmt], info=info)


def predict_with_onnx(store: Store, ref: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Predictions through onnxruntime, same columns as ``Store.predict`` (exports ONNX on first use).

    The session is cached by the ONNX file's sha256, so a single row after the first costs
    one index read plus the run.
    """
    record = store.get(ref)
    info = (record.get("exports") or {}).get("onnx") or {}
    if info.get("status") == "ok" and info.get("model_sha256") == record["sha256"] and is_cached(info.get("sha256")):
        return onnx_predict_table(None, frame, record, info["sha256"])
    data, info = ensure_onnx(store, _ref(record))
    return onnx_predict_table(data, frame, record, info.get("sha256"))


def predict_rows(store: Store, ref: str, frame: pd.DataFrame, engine: str = "auto") -> tuple[pd.DataFrame, str]:
    """Predictions and the engine that made them: ``sklearn``, ``onnx``, or ``auto``.

    ``auto`` (the dashboard's single-row form) uses ONNX when the version converts faithfully and
    scikit-learn otherwise; a refusal is recorded on first try, so later calls go straight to
    scikit-learn.
    """
    if engine not in ("auto", "sklearn", "onnx"):
        raise InvalidParameterError(f"Unknown engine {engine!r}; choose one of: auto, sklearn, onnx")
    if engine == "onnx":
        return predict_with_onnx(store, ref, frame), "onnx"
    if engine == "auto":
        record = store.get(ref)
        status = export_status(record)["onnx"]["status"]
        # Converting an imported version would load it in this process: auto uses its worker instead
        # (or an ONNX file it already has).
        if status == "ok" or (status != "refused" and record.get("origin") != "imported"):
            try:
                return predict_with_onnx(store, _ref(record), frame), "onnx"
            except NotConvertibleError:
                pass
    return store.predict(ref, frame), "sklearn"
