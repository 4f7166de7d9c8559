"""ModelShelf core: train, save, version, list, reload and re-score scikit-learn models.

No Streamlit here: the same API serves the dashboard, the command line (``python -m core``),
scripts and notebooks.
"""

import logging

from core.catalog import CATALOG, get_spec
from core.datasets import Dataset, load_dataset
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
    "WorkerModel",
    "check_zip",
    "get_spec",
    "load_dataset",
    "load_in_worker",
    "load_untrusted",
    "n_features_of",
    "parse_ref",
    "require_strong_sandbox",
    "sandbox_layers",
    "train",
]
