"""Every command in docs/reliability.md runs: the store checks on a real store, the pytest runs as
the collection they select (a thousand trials would take the suite's whole budget several times).
The test files the page names exist."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.reliability

DOC = ROOT / "docs" / "reliability.md"


def commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]


def _split(command: str) -> tuple[dict[str, str], list[str]]:
    """``VAR=value ... program args`` as (environment, argv)."""
    words = shlex.split(command)
    env: dict[str, str] = {}
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    return env, words


def test_the_page_has_commands_and_names_real_test_files() -> None:
    assert len(commands()) >= 4
    named = set(re.findall(r"tests/reliability/\w+\.py", DOC.read_text()))
    assert len(named) >= 5
    assert all((ROOT / path).is_file() for path in named), named


@pytest.mark.parametrize("command", [c for c in commands() if "pytest" in c])
def test_pytest_commands_select_the_reliability_suite(command: str) -> None:
    env, argv = _split(command)
    assert argv[:3] == ["python", "-m", "pytest"], command
    assert all(key.startswith("MODELSHELF_RELIABILITY_") for key in env), env
    done = subprocess.run(
        [sys.executable, *argv[1:], "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    selected = [line for line in done.stdout.splitlines() if "::" in line]
    assert selected and all(line.startswith("tests/reliability/") for line in selected), selected[:5]


@pytest.mark.parametrize("command", [c for c in commands() if c.startswith("python -m core")])
def test_store_commands_run_on_a_store(command: str, tmp_path: Path, model: Any) -> None:
    from core.store import Store

    store_path = tmp_path / "models"
    store = Store(store_path)
    try:
        store.save(model[0], "pima")
    finally:
        store.close()
    env, argv = _split(command)
    done = subprocess.run(
        [sys.executable, *argv[1:]],
        cwd=ROOT,
        env={**os.environ, **env, "MODEL_STORE": str(store_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{command}: {done.stdout} {done.stderr}"
