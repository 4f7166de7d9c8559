"""Reading a version's model back: integrity first (nothing is unpickled on a mismatch), then the model.

A trained version is loaded here by its format's loader. An imported one (a stranger's bytes) never
is: it goes to a sandboxed worker, or, with ``trust=True`` outside demo mode, to the restricted
loader in this process. In demo mode every version goes to the worker: a visitor chooses the rows a
model is called on and the model (a k-NN fitted in a moment predicts for minutes), so each call is
bounded there by ``load_timeout_s``, off the server's cores and out of its memory.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from core import formats
from core.environment import Compatibility, compare_environment, fold_version_warnings
from core.errors import InvalidParameterError
from core.record import VersionRecord, environment_of, ref_of
from core.settings import load_settings
from core.store.artifacts import ArtifactStore
from core.store.index import MetadataIndex, Row
from core.store.verified import verified_bytes, verified_model

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A model read back from the store, with what the reload found out."""

    model: Any
    record: VersionRecord
    compatibility: Compatibility
    warnings: list[str] = field(default_factory=list)
    load_seconds: float = 0.0

    @property
    def ref(self) -> str:
        return ref_of(self.record)


def load_version(
    index: MetadataIndex,
    artifacts: ArtifactStore,
    row: Row,
    record: VersionRecord,
    *,
    mmap: bool,
    verify: str,
    trust: bool,
) -> LoadedModel:
    """The model behind ``row`` (see ``Store.load``; ``verify`` already checked), its file verified first."""
    started = time.perf_counter()
    local = artifacts.local_path(row.path)
    use_mmap = mmap and row.format == "joblib" and not record.get("compression") and local is not None
    source = verified_model(index, artifacts, row, verify=verify, use_mmap=use_mmap)
    settings = load_settings()
    if row.origin == "imported" or settings.demo:  # the worker (or the restricted loader), every time
        # Deferred: the safe loader and the worker are needed only for imported versions and demos.
        from core.safety import LoadLimits, load_in_worker
        from core.safety.loader import _load_untrusted as load_untrusted  # trust=True only: in this process

        if trust and settings.demo:
            raise InvalidParameterError(f"{row.ref}: in demo mode a model is only used through its sandboxed worker")
        data = source if isinstance(source, bytes) else artifacts.read_bytes(row.path)
        # The upload size limit applied when it came in; lowering it later must not lock it out.
        limits = dataclasses.replace(LoadLimits.from_settings(settings), max_bytes=max(len(data), 1))
        if trust:
            untrusted = load_untrusted(data, limits=limits)
            model, folded = untrusted.model, untrusted.warnings
        else:
            model = load_in_worker(
                data, limits, fetch=lambda: verified_bytes(artifacts, row, row.path, row.sha256, "model")
            )
            folded = list(model.facts.get("warnings") or [])
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = formats.load_trusted(source, row.format, mmap=use_mmap)
        folded = fold_version_warnings(caught)
    loaded = LoadedModel(
        model=model,
        record=record,
        compatibility=compare_environment(dict(environment_of(record))),
        warnings=folded,
        load_seconds=time.perf_counter() - started,
    )
    log.info("loaded %s (%s, %s, %.3f s)", row.ref, row.format, row.origin, loaded.load_seconds)
    return loaded
