"""The skops path: a skops file may ask to trust only what ModelShelf's allowlist names.

``skops.io.get_untrusted_types`` lists what the file needs beyond skops' own defaults; every entry
must be in ``core.safety.allowlist`` (never a list from the file), and the load is told to trust
exactly those.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import core.safety.allowlist as allowlist
from core.errors import FormatError, ModelShelfError, UnsafeModelError
from core.safety.archives import check_zip
from core.safety.limits import _Guard
from core.safety.unpickler import _too_deep


def _skops_version(data: bytes) -> str | None:
    """The scikit-learn version skops recorded for the top-level object (in schema.json)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
        raw = schema["content"]["content"]["_sklearn_version"]["content"]
        return str(json.loads(raw))
    except Exception:  # noqa: BLE001 - only a label: any damage means "unknown"
        return None


def _load_skops(data: bytes, guard: _Guard) -> Any:
    import skops.io  # deferred: ~0.5 s over scikit-learn, which only skops files (not each worker start) pay

    check_zip(data, guard.limits)
    try:
        needed = skops.io.get_untrusted_types(data=data)
    except Exception as exc:  # skops raises many kinds on a malformed schema
        detail = " ".join(str(exc).split())[:200]
        raise FormatError(f"The skops file is damaged ({detail or 'its schema is malformed'})") from exc
    allowed = allowlist.skops_type_names()
    refused = [name for name in needed if name not in allowed]
    for name in refused:
        if missing := allowlist.missing_message(*name.rsplit(".", 1)):
            raise FormatError(missing)
    if refused:
        shown = ", ".join(refused[:5]) + (" ..." if len(refused) > 5 else "")
        verb = "is" if len(refused) == 1 else "are"
        raise UnsafeModelError(f"{shown} {verb} not allowed: the skops file was not loaded")
    guard.tick()
    try:
        return skops.io.loads(data, trusted=[name for name in needed if name in allowed])
    except (ModelShelfError, MemoryError, ImportError):
        raise  # ImportError: a module this release lacks, which _as_error names for the user
    except RecursionError as exc:
        raise _too_deep() from exc
    except Exception as exc:  # skops and zipfile raise many kinds on a damaged file
        raise FormatError("The skops file is damaged: its contents could not be read as a model") from exc
