"""The store package's boundaries: what it and its leaves may import, and how big a module may grow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "core"
STORE = sorted((CORE / "store").glob("*.py"))
LEAVES = [CORE / f"{name}.py" for name in ("refs", "record", "frames", "describe", "split")]
HEAVY = ("numpy", "pandas", "sklearn", "scipy", "pyarrow", "plotly")


def imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    """Modules ``path`` imports (``from core import x`` counts as ``core.x``); every level, or module level."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("path", STORE + LEAVES, ids=lambda p: p.relative_to(CORE).as_posix())
def test_the_store_and_its_leaves_import_no_cli_portable_or_training(path: Path) -> None:
    banned = ("core.cli", "core.portable", "core.training", "core.commands_doctor", "core.commands_import")
    assert not [m for m in imports(path) if _under(m, banned)]


@pytest.mark.parametrize("path", LEAVES, ids=lambda p: p.name)
def test_the_leaves_import_nothing_of_the_store(path: Path) -> None:
    assert not [m for m in imports(path) if _under(m, ("core.store",))]


@pytest.mark.parametrize("name", ["refs.py", "record.py", "store/index.py", "store/__init__.py"])
def test_index_only_modules_import_nothing_heavy_at_module_level(name: str) -> None:
    assert not [m for m in imports(CORE / name, top_level_only=True) if _under(m, HEAVY)]


def test_an_ast_walk_sees_the_imports_these_tests_rely_on() -> None:
    found = imports(CORE / "store" / "loading.py")
    assert {"core.safety", "core.safety.loader", "core.record.ref_of"} <= found  # function level included
    assert "core.safety" not in imports(CORE / "store" / "loading.py", top_level_only=True)


@pytest.mark.parametrize("path", STORE + LEAVES, ids=lambda p: p.relative_to(CORE).as_posix())
def test_no_store_module_is_over_500_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 500
