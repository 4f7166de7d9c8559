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
from core.store import Evaluation, LoadedModel, Store, parse_ref
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
    "LoadedModel",
    "ModelShelfError",
    "NotFoundError",
    "Store",
    "TrainResult",
    "UnsafeModelError",
    "get_spec",
    "load_dataset",
    "parse_ref",
    "train",
]
