"""A plain-parameter JSON file as it arrives: told apart from other uploads, and imported as a version.

The file format itself: written by ``params_export``, checked by ``params_checks.read_params``,
predicted from by ``params_predict`` (numpy alone), rebuilt into scikit-learn by
``params_rebuild``; docs/portable.md has the schema.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from core.formats import sha256_bytes
from core.portable.params_checks import read_params
from core.portable.params_predict import FORMAT
from core.portable.params_rebuild import to_sklearn

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
) -> VersionRecord:
    """Rebuild the model from its JSON with THIS scikit-learn and store it as a new version (joblib).

    The way back when a pickle no longer loads: nothing in the JSON is executed, only numbers
    and names are read. The version records where it came from; it has no evaluation set (the
    JSON carries none), so score it with ``Store.evaluate(ref, data=...)``.
    """
    params = read_params(data)
    model = to_sklearn(params)
    features = params["features"]
    dataset = {
        "source": filename or "params.json",
        "fingerprint": None,
        "n_rows": None,
        "n_features": len(features),
        "feature_names": [f["name"] for f in features],
        "feature_types": {f["name"]: f["kind"] for f in features},
        "target": None,
        "classes": params["classes"],
    }
    imported = {
        "filename": filename,
        "sha256": sha256_bytes(data),
        "size_bytes": len(data),
        "from": "json",
        "schema_version": params["schema_version"],
        "estimator": params["estimator"],
    }
    return store.save(
        model,
        name,
        tags=tags,
        note=note,
        dataset=dataset,
        owner=owner,
        extra={"origin": "imported", "imported": imported, "estimator_key": None},
        on_duplicate=on_duplicate,
    )
