"""Shared by the reliability suite: how many trials and seconds, and the tiny model every worker saves."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.reliability.worker import tiny_model


@pytest.fixture(scope="session")
def model() -> tuple[Any, Any, Any]:
    """Fitted once in the parent: forked workers only pickle it (no BLAS threads after a fork)."""
    return tiny_model()


@pytest.fixture(scope="session")
def trials() -> int:
    """``MODELSHELF_RELIABILITY_TRIALS`` (default 100, CI's count)."""
    return int(os.environ.get("MODELSHELF_RELIABILITY_TRIALS", "100"))


@pytest.fixture(scope="session")
def load_seconds() -> float:
    """``MODELSHELF_RELIABILITY_SECONDS``: how long the mixed load runs (default 20, CI's)."""
    return float(os.environ.get("MODELSHELF_RELIABILITY_SECONDS", "20"))
