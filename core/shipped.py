"""Data sets shipped inside the package (``core/data/``), so the tutorial runs without network.

Each has a CSV and a JSON provenance file beside it (source, licence note, sha256, column names
and meanings, default target). Paths are found from this file, so a checked-out tree and an
installed package read the same bytes.

The names of every built-in data set (these and scikit-learn's) are a static table here, so
``python -m core datasets`` lists them without importing pandas or scikit-learn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

#: A source string that names a built-in data set: ``builtin:iris``.
BUILTIN_PREFIX = "builtin:"
#: Every built-in data set: scikit-learn's (loaded by ``core.datasets``) and the ones shipped here.
BUILTIN_DATASETS: tuple[str, ...] = ("breast_cancer", "iris", "wine", "digits", "diabetes", "pima")

DATA_DIR = Path(__file__).resolve().parent / "data"
#: ``builtin:NAME`` -> the provenance file of a data set shipped here.
SHIPPED: dict[str, str] = {"pima": "pima-indians-diabetes.json"}


def provenance(name: str) -> dict[str, Any]:
    """The provenance record of a shipped data set (``columns`` hold each name and its meaning)."""
    document: dict[str, Any] = json.loads((DATA_DIR / SHIPPED[name]).read_text(encoding="utf-8"))
    return document


def csv_path(name: str) -> Path:
    """Where the shipped CSV of ``name`` is (inside the package)."""
    return DATA_DIR / provenance(name)["file"]


def load_shipped(name: str) -> pd.DataFrame:
    """The shipped table with the column names of its provenance file (the CSV has no header row)."""
    import pandas as pd  # only when a table is read: listing the names needs none

    about = provenance(name)
    names = [column["name"] for column in about["columns"]]
    return pd.read_csv(csv_path(name), header=None, names=names, skipinitialspace=True)


def default_target(name: str) -> str:
    """The column a shipped data set predicts when no ``target`` is given."""
    return str(provenance(name)["target"])
