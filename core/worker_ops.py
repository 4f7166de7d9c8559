"""What the model worker does with a model besides calling it: the application's operations.

The sandboxed worker (``core.safety``) loads, checks and calls models (a stranger's, or any in a
public demo); it does not know what the application needs of them. This module does: describe a
model for its record (``core.describe``), score it (``core.metrics``), convert it to ONNX, JSON
parameters or another file format (``core.portable``), measure its formats for the Formats page,
draw its diagram; and, needing no model held, fit one for a public demo's
visitor (``core.training``, asked by ``core.demo_training``). The worker child imports it by name
(``core.safety.worker_child.OPERATIONS_MODULE``) and runs :data:`OPERATIONS` next to the model it
holds, so the server process never holds a stranger's model object, and the safety package
depends on none of these modules. Runs inside the sandbox: nothing here may write files or open
sockets.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from core import formats
from core.describe import describe_model
from core.errors import InvalidParameterError, TrainingStoppedError
from core.metrics import score_metrics
from core.portable.params_export import export_params
from core.training import fit_prepared, held_out_outputs


def _convert(model: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The model in another form, made here so the serving process never holds the object.

    ``onnx`` (with the parity check on the given rows), ``json`` (plain parameters, exactness
    checked) or a model file format; bytes travel base64-encoded inside the JSON reply.
    """
    to, X, names = request["to"], request.get("X"), request.get("names")
    if to == "onnx":
        from core.portable.onnx_export import export_onnx  # onnx and skl2onnx: only when converting

        made = export_onnx(model, X, names)
        parity = made.parity.to_dict() if made.parity is not None else None
        data = _within(made.data, to, request.get("max_bytes"))
        return {"data": base64.b64encode(data).decode("ascii"), "layout": made.layout, "parity": parity}
    if to == "json":
        exported = export_params(model, X, names)
        _within(exported.text.encode("utf-8"), to, request.get("max_bytes"))
        return {"text": exported.text, "rows_checked": exported.rows_checked, "exact": exported.exact}
    if to in ("pickle", "joblib", "skops"):
        data = _within(formats.dumps(model, to), to, request.get("max_bytes"))
        return {"data": base64.b64encode(data).decode("ascii")}
    raise InvalidParameterError(f"Unknown conversion {to!r}")


def _within(data: bytes, to: str, max_bytes: int | None) -> bytes:
    """``data``, unless it is over ``max_bytes``: then refused here, before it crosses to the server."""
    if max_bytes is not None and len(data) > max_bytes:
        raise InvalidParameterError(
            f"The {to} form of this model takes {len(data) / 1e6:.1f} MB, more than the {max_bytes / 1e6:g} MB "
            "a conversion may take here"
        )
    return data


def _formats(model: Any, request: dict[str, Any]) -> list[list[float]]:
    """``[size, save_s, load_s]`` per requested ``(format, compress)``: the Formats page's figures, measured here."""
    from core.format_comparison import measure_format  # pandas: only when comparing

    timings = [measure_format(model, fmt, int(level), int(request["repeats"])) for fmt, level in request["variants"]]
    return [[t.size_bytes, t.save_seconds, t.load_seconds] for t in timings]


def _diagram(model: Any, request: dict[str, Any]) -> str:
    """scikit-learn's HTML diagram of the model (``core.views.diagram_html``), drawn next to the model."""
    from core.views import diagram_html  # deferred: the page tables' module, only for a diagram

    return diagram_html(model)


def _rebuild(request: dict[str, Any]) -> dict[str, Any]:
    """A JSON parameter file's model rebuilt with this scikit-learn (``core.portable.params_rebuild``),
    sent back as a file in the store's default format: the rebuild's set-up fit grows with the classes and features the
    file names, so it runs here, under the worker's limits (see ``core.portable.params_json``)."""
    from core.portable.params_checks import read_params  # deferred: only a parameter file needs them
    from core.portable.params_rebuild import to_sklearn

    model = to_sklearn(read_params(bytes(request["data"])))  # the bytes arrive as a shared-memory map
    return {"model": base64.b64encode(formats.dumps(model, formats.default_format(0))).decode("ascii")}


def _fit(request: dict[str, Any]) -> dict[str, Any]:
    """Fit a catalog estimator on the prepared rows the server sent (``core.training.fit_prepared``).

    The pipeline goes back pickled (base64 in the JSON reply; the server reads it with the
    restricted loader, see ``core.demo_training``), with the metrics, warnings, cross-validation
    and, if asked, what the page draws of the held-out rows: every ``predict`` happens here. A
    pipeline over ``max_model_bytes`` is refused here, before its bytes cross to the server.
    """
    prepared = request["prepared"]
    result = fit_prepared(prepared, request["estimator"], request["params"], scale=request["scale"], cv=request["cv"])
    data = formats.dumps(result.model, "pickle")
    if len(data) > request["max_model_bytes"]:
        raise TrainingStoppedError(
            f"Training stopped: the fitted model takes {len(data) / 1e6:.1f} MB, more than a visitor may store here "
            f"({request['max_model_bytes'] / 1e6:g} MB); nothing was stored (try fewer trees, rows or columns)"
        )
    asked = request.get("outputs")
    outputs = held_out_outputs(result.model, prepared.X_test, prepared.y_test, prepared.task) if asked else None
    return {
        "model": base64.b64encode(data).decode("ascii"),
        "metrics": result.metrics,
        "fit_seconds": result.fit_seconds,
        "warnings": result.warnings,
        "cv": result.cv,
        "outputs": outputs,
    }


#: ``name -> operation``, looked up by the worker child: ``describe(model)``, ``score(model, X, y)``
#: (the rows already as the model expects them), the ``HELD_OPERATIONS`` as ``op(model, request)``,
#: the ``FREE_OPERATIONS`` (``fit``, ``rebuild``) as ``op(request)``: they hold no model.
OPERATIONS: dict[str, Callable[..., Any]] = {
    "describe": describe_model,
    "score": score_metrics,
    "convert": _convert,
    "formats": _formats,
    "diagram": _diagram,
    "fit": _fit,
    "rebuild": _rebuild,
}
