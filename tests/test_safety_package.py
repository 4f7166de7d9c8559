"""core/safety/: its public door, the operations it runs by name, and errors that keep their cause.

(What it may import, and its modules' size, are checked for all of core in test_architecture.)
"""

from __future__ import annotations

import ast
import io
import pickle
import zipfile
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

import core
import core.safety
from core.errors import FormatError, InvalidParameterError
from core.safety import LoadLimits, WorkerModel, check_zip
from core.safety.loader import _load_untrusted

SAFETY = Path(__file__).resolve().parent.parent / "core" / "safety"
LIMITS = LoadLimits(max_bytes=100_000_000, max_decompressed_bytes=100_000_000, timeout_s=60)


def _imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` statement in ``path`` names, at module and function level."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_the_worker_operations_are_named_not_imported() -> None:
    """The worker child finds describe, score, the held-model operations and those holding none
    (a demo's fit, a parameter file's rebuild) in core.worker_ops by name, at run time."""
    from core.safety import worker_child
    from core.safety.protocol import FREE_OPERATIONS, HELD_OPERATIONS
    from core.worker_ops import OPERATIONS

    assert worker_child.OPERATIONS_MODULE == "core.worker_ops"
    assert worker_child._operations() is OPERATIONS
    assert set(OPERATIONS) == {"describe", "score", *FREE_OPERATIONS, *HELD_OPERATIONS}
    assert set(HELD_OPERATIONS) == {"convert", "formats", "diagram"} and set(FREE_OPERATIONS) == {"fit", "rebuild"}
    assert not any("worker_ops" in m for p in SAFETY.glob("*.py") for m in _imported_modules(p))


def test_the_public_load_untrusted_is_the_worker_backed_one() -> None:
    assert core.load_untrusted is core.safety.load_untrusted
    assert core.load_untrusted is not _load_untrusted
    assert "_load_untrusted" not in vars(core.safety) and "_load_untrusted" not in vars(core)
    with pytest.raises(InvalidParameterError, match="takes the file's bytes"):
        core.load_untrusted("model.pkl")  # type: ignore[arg-type]


def test_load_untrusted_returns_a_proxy_to_the_worker() -> None:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(X, y)
    loaded = core.load_untrusted(pickle.dumps(model), limits=LIMITS)
    assert isinstance(loaded, WorkerModel)
    assert loaded.estimator == "sklearn.linear_model.LogisticRegression"
    assert list(loaded.predict(X[:5])) == list(model.predict(X[:5]))


def test_a_damaged_zip_keeps_its_cause() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("schema.json", "{}")
    damaged = archive.getvalue()[:-10]  # the central directory's end cut off
    with pytest.raises(FormatError, match="damaged") as caught:
        check_zip(damaged, LIMITS)
    assert isinstance(caught.value.__cause__, zipfile.BadZipFile)


def test_the_in_process_loader_chains_the_failure_behind_its_message() -> None:
    truncated = pickle.dumps(LogisticRegression())[:-20]
    with pytest.raises(FormatError, match="damaged or cut short") as caught:
        _load_untrusted(truncated, limits=LIMITS)
    assert caught.value.__cause__ is not None
