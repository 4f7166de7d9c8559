"""The model store: save, list, get, load, re-score, predict, alias, tag and delete versions.

Two parts behind one small interface: a metadata index (SQLAlchemy, ``index``) and an artifact
store (fsspec, ``artifacts``). A version is written as a temporary file (hashed while written),
then, inside one write transaction, given the next number, moved into place and indexed
(``saving``). So versions are never lost or doubled under concurrent saves, and a crash never
leaves an index row without its file. Reads are checked against the recorded sha256
(``verified``); imported versions load only in the sandboxed worker (``loading``).

    >>> store = Store("models")
    >>> record = store.save(model, name="pima", X_test=X_test, y_test=y_test)
    >>> loaded = store.load("pima:1")        # sha256 checked, environment compared
    >>> store.evaluate("pima@production")    # re-scored on the kept evaluation set

The names below load on first use (PEP 562), so ``core.store.index`` can be imported without
pandas or scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from core.store.config import StoreSettings, resolve_store
    from core.store.facade import Store
    from core.store.loading import LoadedModel
    from core.store.paths import DEFAULT_STORE, INDEX_FILE, default_store_path
    from core.store.saving import Trained
    from core.store.scoring import Evaluation
    from core.store.visitors import Quota

_EXPORTS = {
    "DEFAULT_STORE": "core.store.paths",
    "INDEX_FILE": "core.store.paths",
    "Store": "core.store.facade",
    "Trained": "core.store.saving",
    "default_store_path": "core.store.paths",
    "LoadedModel": "core.store.loading",
    "Evaluation": "core.store.scoring",
    "Quota": "core.store.visitors",
    "StoreSettings": "core.store.config",
    "resolve_store": "core.store.config",
}

__all__ = [
    "DEFAULT_STORE",
    "INDEX_FILE",
    "Evaluation",
    "LoadedModel",
    "Quota",
    "Store",
    "StoreSettings",
    "Trained",
    "default_store_path",
    "resolve_store",
]


__getattr__, __dir__ = lazy_exports("core.store", globals(), _EXPORTS)
