"""Exports of a stored version: every download format, and predictions through ONNX.

pickle/joblib/skops downloads are the stored file itself when the format matches (same sha256),
else the loaded model written in that format; ONNX and JSON are the derived exports, made once,
proved and recorded (``core.portable.derived``); a bundle is built by ``core.portable.bundle``.

Entry points for front ends: ``export_version``, ``export_status``, ``predict_with_onnx``,
``predict_rows`` (and ``derived.ensure_onnx``/``ensure_params``, ``how_to_load.how_to_load``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core import formats
from core.errors import InvalidParameterError
from core.portable.bundle import build_bundle
from core.portable.conversions import dumps_of
from core.portable.derived import ensure_onnx, ensure_params
from core.portable.how_to_load import DOWNLOAD_FORMATS, check_download_format, download_filename
from core.portable.onnx_export import NotConvertibleError
from core.portable.onnx_runtime import is_cached, onnx_predict_table
from core.record import ref_of
from core.settings import load_settings
from core.store import Store

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


def export_status(record: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
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


def export_version(store: Store, ref: str, fmt: str) -> Exported:
    """A version as a downloadable file in ``fmt`` (pickle, joblib, skops, onnx, json or bundle)."""
    check_download_format(fmt)
    record = store.get(ref)
    filename = download_filename(record, fmt)
    if fmt == "onnx":
        data, info = ensure_onnx(store, ref_of(record))
    elif fmt == "json":
        data, info = ensure_params(store, ref_of(record))
    elif fmt == "bundle":
        data, info = build_bundle(store, ref_of(record))
    elif fmt == record["format"]:
        data = store.read_artifact(ref_of(record))
        info = {"sha256": record["sha256"], "same_file": True}
    else:
        data = dumps_of(store.load(ref_of(record)).model, fmt)
        info = {"sha256": formats.sha256_bytes(data), "same_file": False, "converted_from": record["format"]}
    return Exported(
        data=data, filename=filename, format=fmt, ref=ref_of(record), media_type=MEDIA_TYPES[fmt], info=info
    )


def predict_with_onnx(store: Store, ref: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Predictions through onnxruntime, same columns as ``Store.predict`` (exports ONNX on first use).

    The session is cached by the ONNX file's sha256, so a single row after the first costs
    one index read plus the run.
    """
    record = store.get(ref)
    info = (record.get("exports") or {}).get("onnx") or {}
    if info.get("status") == "ok" and info.get("model_sha256") == record["sha256"] and is_cached(info.get("sha256")):
        return onnx_predict_table(None, frame, record, info["sha256"])
    data, made = ensure_onnx(store, ref_of(record))
    return onnx_predict_table(data, frame, record, made.get("sha256"))


def predict_rows(store: Store, ref: str, frame: pd.DataFrame, engine: str = "auto") -> tuple[pd.DataFrame, str]:
    """Predictions and the engine that made them: ``sklearn``, ``onnx``, or ``auto``.

    ``auto`` (the dashboard's single-row form) uses ONNX when the version converts faithfully and
    scikit-learn otherwise (always scikit-learn in demo mode: the model in its worker); a refusal is
    recorded on first try, so later calls go straight to scikit-learn.
    """
    if engine not in ("auto", "sklearn", "onnx"):
        raise InvalidParameterError(f"Unknown engine {engine!r}; choose one of: auto, sklearn, onnx")
    if engine == "onnx":
        return predict_with_onnx(store, ref, frame), "onnx"
    if engine == "auto" and not load_settings().demo:  # a demo runs every model in its worker, ONNX too
        record = store.get(ref)
        status = export_status(record)["onnx"]["status"]
        # An imported version is not converted on its own: auto uses its worker instead (or an ONNX
        # file it already has).
        if status == "ok" or (status != "refused" and record.get("origin") != "imported"):
            try:
                return predict_with_onnx(store, ref_of(record), frame), "onnx"
            except NotConvertibleError:
                pass
    return store.predict(ref, frame), "sklearn"
