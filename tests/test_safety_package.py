"""core/safety/: its boundary, its public door, and errors that keep their cause."""

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
FORBIDDEN = ("core.store", "core.index", "core.artifacts", "core.cli", "core.commands_", "core.portable")
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


def test_the_safety_package_imports_nothing_of_the_store_the_cli_or_portable() -> None:
    modules = sorted(SAFETY.glob("*.py"))
    assert len(modules) > 10
    offending = {path.name: sorted(m for m in _imported_modules(path) if m.startswith(FORBIDDEN)) for path in modules}
    assert not {name: found for name, found in offending.items() if found}


def test_no_safety_module_is_over_500_lines() -> None:
    sizes = {path.name: len(path.read_text().splitlines()) for path in SAFETY.glob("*.py")}
    assert not {name: n for name, n in sizes.items() if n > 500}


def test_the_worker_operations_are_named_not_imported() -> None:
    """The worker child finds describe/score/convert in core.worker_ops by name, at run time."""
    from core.safety import worker_child
    from core.worker_ops import OPERATIONS

    assert worker_child.OPERATIONS_MODULE == "core.worker_ops"
    assert worker_child._operations() is OPERATIONS
    assert set(OPERATIONS) == {"describe", "score", "convert"}
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
