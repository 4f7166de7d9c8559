"""ModelShelf core: train, save, version, list, reload and re-score scikit-learn models.

No Streamlit here: the same API serves the dashboard, the command line (``python -m core``),
scripts and notebooks.

    >>> from core import Store, load_dataset, train
    >>> result = train(load_dataset("builtin:iris"), "random_forest")
    >>> Store("models").save_trained(result, name="iris")

The names below load on first use (PEP 562): ``import core`` costs no numpy, pandas or
scikit-learn, so a command that only reads the index starts at once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from core.errors import (
    ConflictError,
    DatasetError,
    FormatError,
    IntegrityError,
    InvalidParameterError,
    ModelShelfError,
    NotFoundError,
    UnsafeModelError,
)
from core.lazy import lazy_exports

if TYPE_CHECKING:
    from core.catalog import CATALOG, get_spec
    from core.datasets import Dataset, load_dataset
    from core.importing import import_file
    from core.record import VersionRecord, ref_of
    from core.refs import parse_ref
    from core.safety import (
        LoadLimits,
        WorkerModel,
        check_zip,
        load_in_worker,
        load_untrusted,
        n_features_of,
        require_strong_sandbox,
        sandbox_layers,
    )
    from core.store import Evaluation, LoadedModel, Store
    from core.training import TrainResult, train

logging.getLogger("core").addHandler(logging.NullHandler())  # silent as a library; --verbose or the host logs

#: ``name -> module`` of each lazily loaded export.
_EXPORTS = {
    "CATALOG": "core.catalog",
    "get_spec": "core.catalog",
    "Dataset": "core.datasets",
    "load_dataset": "core.datasets",
    "import_file": "core.importing",
    "VersionRecord": "core.record",
    "ref_of": "core.record",
    "parse_ref": "core.refs",
    "LoadLimits": "core.safety",
    "WorkerModel": "core.safety",
    "check_zip": "core.safety",
    "load_in_worker": "core.safety",
    "load_untrusted": "core.safety",
    "n_features_of": "core.safety",
    "require_strong_sandbox": "core.safety",
    "sandbox_layers": "core.safety",
    "Evaluation": "core.store",
    "LoadedModel": "core.store",
    "Store": "core.store",
    "TrainResult": "core.training",
    "train": "core.training",
}

__all__ = [
    "CATALOG",
    "ConflictError",
    "Dataset",
    "DatasetError",
    "Evaluation",
    "FormatError",
    "IntegrityError",
    "InvalidParameterError",
    "LoadLimits",
    "LoadedModel",
    "ModelShelfError",
    "NotFoundError",
    "Store",
    "TrainResult",
    "UnsafeModelError",
    "VersionRecord",
    "WorkerModel",
    "check_zip",
    "get_spec",
    "import_file",
    "load_dataset",
    "load_in_worker",
    "load_untrusted",
    "n_features_of",
    "parse_ref",
    "ref_of",
    "require_strong_sandbox",
    "sandbox_layers",
    "train",
]


__getattr__, __dir__ = lazy_exports("core", globals(), _EXPORTS)
