"""Where a one-folder store lives and the names of its own files (a leaf: the facade and the config share it)."""

from __future__ import annotations

import os

STORE_ENV = "MODEL_STORE"
DEFAULT_STORE = "models"
INDEX_FILE = "index.sqlite"


def default_store_path() -> str:
    """``$MODEL_STORE`` if set, else ``./models``."""
    return os.environ.get(STORE_ENV) or DEFAULT_STORE
