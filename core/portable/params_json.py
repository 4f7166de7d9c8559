"""A plain-parameter JSON file as it arrives: told apart from other uploads, and imported as a version.

The file format itself: written by ``params_export``, checked by ``params_checks.read_params``,
predicted from by ``params_predict`` (numpy alone), rebuilt into scikit-learn by
``params_rebuild``; docs/portable.md has the schema.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from typing import TYPE_CHECKING, Any

from core.environment import capture_environment, package_version
from core.errors import FormatError
from core.formats import sha256_bytes
from core.portable.params_checks import read_params
from core.portable.params_predict import FORMAT
from core.safety import LoadLimits, default_pool, require_strong_sandbox

if TYPE_CHECKING:
    from core.record import VersionRecord


def is_params_json(data: bytes) -> bool:
    """True when the bytes are a ModelShelf plain-parameter document (by content, not by name)."""
    if data.lstrip()[:1] != b"{":
        return False
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return False
    # Only the marker: a parameter file with a newer schema must reach read_params and say so.
    return isinstance(document, dict) and document.get("format") == FORMAT


def import_params(
    store: Any,
    data: bytes,
    name: str,
    *,
    filename: str | None = None,
    tags: Any = (),
    note: str = "",
    owner: str | None = None,
    on_duplicate: str = "keep",
    limits: LoadLimits | None = None,
) -> VersionRecord:
    """Rebuild the model from its JSON with THIS scikit-learn and store it as a new version.

    The way back when a pickle no longer loads: nothing in the JSON is executed, only numbers
    and names are read. The document is checked here (``read_params``), then rebuilt in a
    sandboxed worker under ``limits`` (the rebuild fits scikit-learn's private state first, at a
    cost the file's classes and features set), which sends back a model file in the store's default
    format (``formats.default_format``); that file is kept
    as it came, like any upload, so this process never holds the model. The version records
    where it came from; it has no evaluation set (the JSON carries none), so score it with
    ``Store.evaluate(ref, data=...)``.
    """
    params = read_params(data)
    limits = limits or LoadLimits.from_settings()
    require_strong_sandbox()
    reply = default_pool().task("rebuild", limits.timeout_s, data=bytes(data))
    try:
        model_file = base64.b64decode(str(reply["model"]), validate=True)
    except (KeyError, TypeError, binascii.Error, ValueError) as exc:
        raise FormatError("The model worker sent a malformed rebuild") from exc
    features = params["features"]
    fields = {
        # Rebuilt by this scikit-learn, in a worker running this interpreter and these packages.
        "environment": capture_environment(),
        "dataset": {
            "source": filename or "params.json",
            "fingerprint": None,
            "n_rows": None,
            "n_features": len(features),
            "feature_names": [f["name"] for f in features],
            "feature_types": {f["name"]: f["kind"] for f in features},
            "target": None,
            "classes": params["classes"],
        },
        "imported": {
            "filename": filename,
            "sha256": sha256_bytes(data),
            "size_bytes": len(data),
            "from": "json",
            "schema_version": params["schema_version"],
            "estimator": params["estimator"],
            "sklearn_version": package_version("scikit-learn"),
            "classes": params["classes"],
            "n_features_in": len(features),
        },
    }
    bigger = dataclasses.replace(limits, max_bytes=max(limits.max_bytes, len(model_file)))  # ours, not the upload
    return store.import_model(
        model_file,
        name,
        filename=filename,
        tags=tags,
        note=note,
        owner=owner,
        limits=bigger,
        on_duplicate=on_duplicate,
        fields=fields,
    )
