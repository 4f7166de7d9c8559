"""How a data set is cut into training and held-out parts, and cut again the same way later.

Training records a ``Split``; re-scoring a version on fresh data cuts it the recorded way. A leaf,
so the store can re-cut without importing training.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.datasets import Dataset
from core.errors import DatasetError, InvalidParameterError


@dataclass(frozen=True)
class Split:
    """How a data set was cut into training and held-out parts (enough to cut it again)."""

    test_size: float
    random_state: int | None
    stratify: bool
    n_train: int = 0
    n_test: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "test_size": self.test_size,
            "random_state": self.random_state,
            "stratify": self.stratify,
            "n_train": self.n_train,
            "n_test": self.n_test,
        }

    def apply(self, dataset: Dataset) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
        """``X_train, X_test, y_train, y_test`` exactly as ``train_test_split`` gives them."""
        from sklearn.model_selection import train_test_split  # deferred: reading a version needs no splitter

        if not 0.0 < self.test_size < 1.0:
            raise InvalidParameterError(f"Invalid value {self.test_size!r} for test_size: expected a number in (0, 1)")
        try:
            return train_test_split(
                dataset.X,
                dataset.y,
                test_size=self.test_size,
                random_state=self.random_state,
                stratify=dataset.y if self.stratify else None,
            )
        except ValueError as exc:
            raise DatasetError(f"Cannot split {dataset.source}: {exc}") from exc


def held_out(dataset: Dataset, split: Mapping[str, Any] | None) -> tuple[pd.DataFrame, pd.Series]:
    """The held-out part of ``dataset`` cut the way the version's training cut it (all rows if unknown)."""
    if not split:
        return dataset.X, dataset.y
    cut = Split(float(split["test_size"]), split.get("random_state"), bool(split.get("stratify")))
    _, X_test, _, y_test = cut.apply(dataset)
    return X_test, y_test
