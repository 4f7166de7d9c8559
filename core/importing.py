"""A file from outside into the store: one ``import_file`` for ``python -m core import`` and the Upload page.

The kind of file is told from its bytes, never its name (``file_kind``): a ModelShelf bundle
(``core.portable.bundle``: verified, its model loaded in the sandboxed worker, re-scored on the
evaluation set inside it), JSON parameters (``core.portable.params_json``: bounded and checked
before anything is built, nothing in it is run, rebuilt with this scikit-learn), or else a
model file (pickle, joblib or skops: ``Store.import_model``, loaded and scored in the worker).
Every front end goes through here, so each kind meets the same worker and the same limits
(the upload size limit, ``LoadLimits``) whichever front end it came through.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from core.errors import InvalidParameterError
from core.portable.bundle import BundleImport, import_bundle, is_bundle
from core.portable.params_json import import_params, is_params_json
from core.safety import LoadLimits
from core.text import human_bytes

if TYPE_CHECKING:
    from core.datasets import Dataset
    from core.record import VersionRecord
    from core.store import Store

log = logging.getLogger(__name__)

FileKind = Literal["bundle", "params", "model"]

#: How each kind is named to people (logs, messages).
KIND_LABELS: dict[FileKind, str] = {"bundle": "a bundle", "params": "JSON parameters", "model": "a model file"}


def file_kind(data: bytes) -> FileKind:
    """What the bytes are: a bundle, JSON parameters, or (anything else) a model file whose loader decides."""
    if is_bundle(data):
        return "bundle"
    if is_params_json(data):
        return "params"
    return "model"


@dataclass(frozen=True)
class ImportedFile:
    """What ``import_file`` did: the kind it found, the version it is now, and (bundles) whether it was new."""

    kind: FileKind
    record: VersionRecord
    bundle: BundleImport | None = None

    def to_dict(self) -> Mapping[str, Any]:
        """The JSON a front end shows: a bundle's import result, else the new version's record."""
        return self.bundle.to_dict() if self.bundle is not None else self.record


def import_file(
    store: Store,
    data: bytes,
    name: str | None = None,
    *,
    kind: FileKind | None = None,
    filename: str | None = None,
    dataset: Dataset | None = None,
    test_size: float = 0.33,
    seed: int | None = 7,
    stratify: bool = False,
    tags: Iterable[str] = (),
    note: str = "",
    owner: str | None = None,
    limits: LoadLimits | None = None,
    on_duplicate: str = "keep",
) -> ImportedFile:
    """Import a file from outside as a new version of ``name`` (a bundle brings its own when None).

    ``kind`` is what ``file_kind(data)`` said when the caller asked first (to check its own
    options before anything is stored); it is worked out here otherwise. ``dataset`` scores a
    model file on a held-out split (``test_size``, ``seed``, ``stratify``); a bundle carries its
    own evaluation set and JSON parameters none, so for those it is refused. Nothing is stored
    if any step fails. ``on_duplicate``: see ``Store.save`` (a bundle already there is never stored again).
    """
    kind = kind or file_kind(data)
    log.info("%s: %s, %s", filename or "upload", KIND_LABELS[kind], human_bytes(len(data)))
    limits = limits or LoadLimits.from_settings()
    if kind != "model" and dataset is not None:
        raise InvalidParameterError(
            f"A data set scores a model file; {KIND_LABELS[kind]} is imported without one "
            "(score the version once it is stored)"
        )
    if kind == "bundle":
        result = import_bundle(
            store, data, name or None, filename=filename, tags=tags, note=note, owner=owner, limits=limits
        )
        return ImportedFile(kind, result.record, result)
    if kind == "params":
        record = import_params(
            store,
            data,
            name or "",
            filename=filename,
            tags=tags,
            note=note,
            owner=owner,
            on_duplicate=on_duplicate,
            limits=limits,
        )
        return ImportedFile(kind, record)
    record = store.import_model(
        data,
        name or "",  # no name: refused by the store's name check, with its usual message
        filename=filename,
        dataset=dataset,
        test_size=test_size,
        seed=seed,
        stratify=stratify,
        tags=tags,
        note=note,
        owner=owner,
        limits=limits,
        on_duplicate=on_duplicate,
    )
    return ImportedFile(kind, record)
