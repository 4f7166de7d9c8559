"""The pages keep their shared state explicit: every ``st.session_state`` key is a name from
``app_pages/state.py``, never a string spelled out on a page.

Read with ``ast``: a key given to ``st.session_state[...]``, ``.get``, ``.pop``, ``.setdefault``,
``in`` or read as an attribute (``st.session_state.owner``), also through a local alias
(``state = st.session_state``), must be a constant imported from ``app_pages.state``, a call of
one of its key functions, or a local variable set from such a call.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app_pages import state
from tests.conftest import ROOT

PAGE_FILES = [ROOT / "streamlit_app.py", *sorted((ROOT / "app_pages").glob("*.py"))]
KEYED_METHODS = {"get", "pop", "setdefault", "__getitem__", "__setitem__", "__delitem__", "__contains__"}
#: Methods of ``st.session_state`` that take no key (reading them as attributes names no key).
PLAIN_METHODS = {"keys", "values", "items", "clear", "update", "to_dict"}


def _state_names(tree: ast.Module) -> set[str]:
    """Names this file imports from ``app_pages.state`` (constants and key functions)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "app_pages.state":
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "app_pages":
            names |= {alias.asname or alias.name for alias in node.names if alias.name == "state"}
    return names


def _is_session_state(node: ast.AST, aliases: set[str]) -> bool:
    if isinstance(node, ast.Attribute) and node.attr == "session_state":
        return True
    return isinstance(node, ast.Name) and node.id in aliases


def _uses_state(node: ast.AST, names: set[str]) -> bool:
    """A constant or key function of app_pages.state: ``NAME``, ``state.NAME`` or ``picker_name(...)``."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id in names
    return isinstance(node, ast.Name) and node.id in names


def literal_keys(source: str, filename: str = "<page>") -> list[str]:
    """``line: code`` for each session-state key that is not a name from app_pages.state."""
    tree = ast.parse(source, filename=filename)
    names = _state_names(tree)
    aliases: set[str] = set()
    made: set[str] = set()  # locals set from a key function: ``name_key = picker_name(key)``
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if _is_session_state(node.value, set()):
                aliases.add(node.targets[0].id)
            elif isinstance(node.value, ast.Call) and _uses_state(node.value, names):
                made.add(node.targets[0].id)

    keys: list[tuple[ast.AST, ast.AST]] = []  # (where, key)
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_session_state(node.value, aliases):
            keys.append((node, node.slice))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in KEYED_METHODS and _is_session_state(node.func.value, aliases):
                keys.append((node, node.args[0] if node.args else ast.Constant(None)))
        elif isinstance(node, ast.Compare):
            for op, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, (ast.In, ast.NotIn)) and _is_session_state(right, aliases):
                    keys.append((node, node.left))
        elif (
            isinstance(node, ast.Attribute)
            and _is_session_state(node.value, aliases)
            and node.attr not in KEYED_METHODS | PLAIN_METHODS
        ):
            keys.append((node, ast.Constant(node.attr)))  # st.session_state.owner: a literal key

    bad = [
        (where.lineno, ast.unparse(where))
        for where, key in keys
        if not (_uses_state(key, names) or (isinstance(key, ast.Name) and key.id in made))
    ]
    return [f"{line}: {code}" for line, code in sorted(set(bad))]


def test_the_checker_catches_literal_keys_and_accepts_the_named_ones() -> None:
    source = (
        "import streamlit as st\n"
        "from app_pages.state import OWNER, picker_name\n"
        "st.session_state['owner'] = 1\n"
        "st.session_state.get('owner')\n"
        "st.session_state.pop(f'{x}_name', None)\n"
        "st.session_state.setdefault('rescores', {})\n"
        "'owner' in st.session_state\n"
        "st.session_state.owner\n"
        "state = st.session_state\n"
        "state.get('deleted')\n"
        "st.session_state[OWNER] = 1\n"
        "st.session_state.get(OWNER)\n"
        "key = picker_name('detail')\n"
        "state[key] = 2\n"
        "state[picker_name(x)]\n"
        "OWNER in st.session_state\n"
    )
    bad = literal_keys(source)
    assert [line.split(":")[0] for line in bad] == ["3", "4", "5", "6", "7", "8", "10"], bad


@pytest.mark.parametrize("path", PAGE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_name_their_session_state_keys_in_app_pages_state(path: Path) -> None:
    bad = literal_keys(path.read_text(), str(path))
    assert not bad, f"{path.relative_to(ROOT)} spells session-state keys out (use app_pages/state.py):\n" + "\n".join(
        bad
    )


def test_every_key_in_app_pages_state_is_distinct_and_used() -> None:
    constants = {n: v for n, v in vars(state).items() if n.isupper() and isinstance(v, str)}
    assert len(set(constants.values())) == len(constants), constants
    functions = {n for n, v in vars(state).items() if callable(v) and getattr(v, "__module__", "") == state.__name__}
    used: set[str] = set()
    for path in PAGE_FILES:
        if path.name != "state.py":
            tree = ast.parse(path.read_text())
            used |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
            used |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert set(constants) | functions <= used, f"unused in the pages: {sorted((set(constants) | functions) - used)}"
