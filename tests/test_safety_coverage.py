"""Every refusal in the safety code runs in some test: ``coverage`` over the direct refusal tests,
then each module's ``raise`` statements found with ``ast`` and checked against the lines run.

A refusal is a ``raise`` statement, or a call (as a statement) of a module-level helper whose
whole body is one ``raise`` (``allowlist._refuse``). Code that only the sandboxed worker process
runs is invisible to coverage here; the refusal tests call those checks in-process instead.
A ``raise`` that cannot be reached is listed in ``UNREACHABLE`` with the reason; the list is kept
honest too (an entry that runs, or no longer exists, fails the test).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The safety modules, as globs under the project root.
SAFETY_MODULES = ("core/safety/*.py",)

#: The tests that must, between them, run every refusal in those modules (kept fast: in-process calls).
SAFETY_TESTS = (
    "tests/test_safety_refusals_loader.py",
    "tests/test_safety_refusals_policy.py",
    "tests/test_safety_refusals_structures.py",
    "tests/test_safety_refusals_worker.py",
)

#: ``raise`` statements no input can reach (the statement's text -> why), kept as defence in depth.
UNREACHABLE = {
    'raise _bad("decision tree", "its node arrays are missing")': (
        "Tree.__getstate__ always returns a structured 'nodes' array and a 'values' array"
    ),
    'raise _bad("decision tree", f"its value array has shape {values.shape}, expected {expected}")': (
        "Tree.__setstate__ already refuses a value array of another shape, and n_classes/max_n_classes "
        "are fixed by the checked constructor call"
    ),
    'raise _bad(what, "it has a cycle")': (
        "checked before: every non-root node has exactly one parent and the root none, so a walk from "
        "the root cannot meet a node twice; a cycle is always unreachable (the next refusal)"
    ),
    'raise _refuse(where, "a numpy record holding objects outside named fields")': (
        "numpy makes no np.void that holds objects without named fields; a crafted dtype flag is "
        "refused earlier by the unpickler's exact dtype-state check"
    ),
}


def _modules() -> list[Path]:
    found = sorted({path for pattern in SAFETY_MODULES for path in ROOT.glob(pattern)})
    assert found, f"no safety module matches {SAFETY_MODULES}"
    return found


def refusal_lines(source: str) -> dict[int, str]:
    """``line -> statement text`` of every ``raise`` and every call of a raise-only helper."""
    tree = ast.parse(source)
    helpers = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
            if len(body) == 1 and isinstance(body[0], ast.Raise):
                helpers.add(node.name)
    lines = source.splitlines()
    found: dict[int, str] = {}
    for node in ast.walk(tree):
        call = node.value if isinstance(node, ast.Expr) else None
        helper_call = isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in helpers
        if isinstance(node, ast.Raise) or helper_call:
            found[node.lineno] = lines[node.lineno - 1].strip()
    return found


def test_refusal_lines_finds_raises_and_raise_only_helpers() -> None:
    source = (
        "def _refuse(what):\n"
        '    """Why."""\n'
        "    raise ValueError(what)\n"
        "def check(x):\n"
        "    if x:\n"
        "        _refuse('x')\n"
        "    raise KeyError(x)\n"
    )
    assert refusal_lines(source) == {3: "raise ValueError(what)", 6: "_refuse('x')", 7: "raise KeyError(x)"}


def test_every_refusal_in_the_safety_modules_is_run_by_a_test(tmp_path: Path) -> None:
    try:
        import coverage
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("coverage is not installed (requirements-dev.txt)")
        pytest.skip("coverage is not installed (pip install -r requirements-dev.txt)")
    modules = _modules()
    data_file = tmp_path / ".coverage"
    command = [sys.executable, "-m", "coverage", "run", f"--data-file={data_file}"]
    command += [f"--include={','.join(str(m) for m in modules)}", "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
    run = subprocess.run([*command, *SAFETY_TESTS], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    measured = coverage.Coverage(data_file=str(data_file))
    measured.load()
    data = measured.get_data()
    missed, stale = [], dict(UNREACHABLE)
    for module in modules:
        executed = set(data.lines(str(module)) or ())
        for line, text in sorted(refusal_lines(module.read_text()).items()):
            known = stale.pop(text, None) is not None
            if known and line in executed:
                missed.append(f"{module.relative_to(ROOT)}:{line} is listed as unreachable but ran: {text}")
            elif not known and line not in executed:
                missed.append(f"{module.relative_to(ROOT)}:{line} {text}")
    assert not missed, "refusals no safety test runs:\n" + "\n".join(missed)
    assert not stale, f"UNREACHABLE lists statements no longer in the safety modules: {sorted(stale)}"
