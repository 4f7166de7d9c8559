"""Conversions of a loaded model to another form: here for this store's own models, in the worker for strangers'.

A model loaded from someone else's bytes lives in a sandboxed worker (``core.safety.WorkerModel``)
and is never unpickled here: its ONNX, JSON and pickle/joblib/skops forms are made by the worker,
and what comes back is checked (base64 decoded strictly, the JSON parsed with bounds) before use.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import pandas as pd

from core import formats
from core.errors import FormatError
from core.portable.onnx_export import OnnxExport, Parity, export_onnx
from core.portable.params_checks import read_params
from core.portable.params_export import ParamsExport, export_params
from core.safety import WorkerModel


def _in_worker(model: Any) -> bool:
    return isinstance(model, WorkerModel)


def _decoded(reply: dict[str, Any], key: str = "data") -> bytes:
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
