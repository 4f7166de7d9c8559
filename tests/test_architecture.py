"""The shape of the code, checked: no import cycle, layers that depend one way, small modules.

Imports are read with ``ast`` (module level and inside functions both; an ``if TYPE_CHECKING:``
block is skipped, since it never runs), so a cycle hidden in a function-level import fails here
just as one at the top of a file does.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

CORE = ROOT / "core"
MAX_LINES = 500
#: Modules that commands which only read the index import: they must start without these.
LIGHT_MODULES = ("core", "core.refs", "core.record", "core.store.index", "core.cli.base", "core.errors")
HEAVY = ("numpy", "pandas", "sklearn", "pyarrow", "plotly", "scipy", "joblib", "streamlit")
#: ``package: packages it may not import`` (each a prefix of dotted module names).
FORBIDDEN = {
    "core.safety": ("core.store", "core.cli", "core.portable", "core.importing"),
    "core.store": ("core.cli", "core.portable", "core.training", "core.importing"),
    "core.refs": ("core.store", "core.cli", "core.portable", "core.safety"),
    "core.record": ("core.store", "core.cli", "core.portable", "core.safety"),
    "core.frames": ("core.store", "core.cli", "core.portable", "core.safety"),
    "core.describe": ("core.store", "core.cli", "core.portable", "core.safety"),
    "core.split": ("core.store", "core.cli", "core.portable", "core.safety"),
    "core.cli.base": ("core.cli.",),  # the registry names its commands; it imports none of them
    "core": ("streamlit",),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path, package: str | None = None) -> Iterator[tuple[ast.stmt, str, bool]]:
    """``(node, imported module, inside a function)`` for each import that runs."""
    tree = ast.parse(path.read_text(), filename=str(path))
    if package is None:
        package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]

    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.stmt, str, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                yield from (item for stmt in child.orelse for item in walk_one(stmt, in_function))
                continue
            yield from walk_one(child, in_function)

    def walk_one(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.stmt, str, bool]]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name, in_function
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node, base, in_function
            for alias in node.names:  # ``from core import store``: the submodule, when it is one
                yield node, f"{base}.{alias.name}", in_function
        else:
            yield from walk(node, in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)))

    yield from walk(tree, False)


def import_graph() -> dict[str, set[str]]:
    known = {module_name(p) for p in core_files()}
    graph: dict[str, set[str]] = {}
    for path in core_files():
        name = module_name(path)
        edges = graph.setdefault(name, set())
        for _, target, _ in imports(path):
            if target in known and target != name:
                edges.add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_walker_sees_function_level_imports_and_the_finder_reports_their_cycle(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from core import c\n\n"
        "def later():\n    from core import b  # deferred\n    return b\n"
    )
    found = [(target, inside) for _, target, inside in imports(probe, "core")]
    assert ("os", False) in found and ("core.b", True) in found
    assert all(target != "core.c" for target, _ in found)  # only for the type checker: never runs
    assert cycles({"core.a": {"core.b"}, "core.b": {"core.a"}, "core.c": {"core.a"}}) == [["core.a", "core.b"]]
    assert cycles({"core.a": {"core.b"}, "core.b": set()}) == []


def test_core_has_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles in core/ (module or function level): " + "; ".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_depend_one_way(package: str) -> None:
    bad = []
    for path in core_files():
        name = module_name(path)
        if name != package and not name.startswith(package + "."):
            continue
        for node, target, _ in imports(path):
            if any(target == f or target.startswith(f if f.endswith(".") else f + ".") for f in FORBIDDEN[package]):
                if target.startswith(name + "."):
                    continue
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {target}")
    assert not bad, f"{package} may not import {', '.join(FORBIDDEN[package])}:\n" + "\n".join(sorted(set(bad)))


#: Packages whose inside is theirs alone: the pages use what their ``__init__`` exports.
FACADES = ("core.safety", "core.store", "core.cli")


def test_pages_use_only_the_public_api_of_core() -> None:
    """The dashboard is a view over core's public API: the facades of its packages (never a module
    inside ``core.safety``, ``core.store`` or ``core.cli``), and no private name anywhere."""
    bad = []
    for path in [ROOT / "streamlit_app.py", *sorted((ROOT / "app_pages").glob("*.py"))]:
        for node, target, _ in imports(path):
            if not target.startswith("core"):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            names = [a.name for a in node.names]
            if any(n.startswith("_") for n in names) or any(part.startswith("_") for part in target.split(".")):
                bad.append(f"{where} imports a private name ({target})")
            for facade in FACADES:
                if target.startswith(facade + ".") and isinstance(node, ast.ImportFrom):
                    module = node.module or ""
                    if module != facade:  # ``from core.store import Store`` is the facade itself
                        bad.append(f"{where} reaches inside {facade} ({module})")
    assert not bad, "pages reach past core's public API:\n" + "\n".join(sorted(set(bad)))


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_core_module_is_over_500_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_LINES})"


def test_function_level_imports_say_why() -> None:
    """A function-level import defers a heavy or optional dependency, with a one-line why: a comment
    on its line or above its block of imports. An import that dodges a cycle has no why to give."""
    bad = []
    for path in core_files():
        lines = path.read_text().splitlines()
        for node, _, in_function in imports(path):
            if not in_function:
                continue
            first = node.lineno - 1
            while first > 0 and lines[first - 1].strip().startswith(("import ", "from ")):
                first -= 1  # the block of imports this one belongs to
            block = lines[first : node.end_lineno or node.lineno]
            above = lines[first - 1].strip() if first > 0 else ""
            if not above.startswith("#") and not any("#" in line for line in block):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not bad, f"{len(set(bad))} function-level imports without a why:\n" + "\n".join(sorted(set(bad)))


def test_light_modules_import_no_numerical_stack() -> None:
    """Reading the index must not pay for numpy, pandas or scikit-learn at start-up."""
    code = (
        "import importlib, sys\n"
        f"for name in {LIGHT_MODULES!r}: importlib.import_module(name)\n"
        f"print(' '.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"importing {LIGHT_MODULES} loaded: {done.stdout.strip()}"


def test_core_exports_lazily() -> None:
    """``import core`` is cheap and every name in ``core.__all__`` resolves (PEP 562)."""
    code = (
        "import sys, core\n"
        "light = 'sklearn' not in sys.modules and 'pandas' not in sys.modules\n"
        "missing = [n for n in core.__all__ if getattr(core, n, None) is None]\n"
        "print(light, missing)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True []", done.stdout
