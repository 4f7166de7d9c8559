"""The README, checked: its quoted benchmark headline is the one the benchmark wrote, and its
examples (the tutorial from ``builtin:pima``, offline) run as written and print the figures quoted."""

import contextlib
import io
import re
import shlex
import shutil
from pathlib import Path

import pytest

from core.cli import main
from tests.conftest import ROOT


def _headline(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Measured by `python -m bench`"))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if line.startswith("- ") or not line.strip():
            block.append(line)
        else:
            break
    return [line for line in block if line.strip()]


def test_readme_quotes_the_benchmark_headline_verbatim():
    quoted = _headline((ROOT / "README.md").read_text())
    measured = _headline((ROOT / "docs" / "benchmarks.md").read_text())
    assert len(quoted) > 5
    assert quoted == measured


# -- the README's examples, run as written (offline: the tutorial's data is builtin:pima) ---------

#: A figure quoted in a comment (``# ... accuracy 0.7559055118110236``): the output must show it.
FIGURE = re.compile(r"\d+\.\d{6,}")
#: Set by a user's shell, they would point the commands at another store.
STORE_VARIABLES = ("MODEL_STORE", "MODELSHELF_INDEX_URL", "MODELSHELF_ARTIFACTS_URL", "MODELSHELF_DEMO")


def _section(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def _blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def _commands(block: str) -> list[tuple[str, list[str]]]:
    """Each ``python -m core ...`` of a bash block, with the figures its comments quote."""
    commands: list[tuple[str, list[str]]] = []
    for line in block.replace("\\\n", " ").splitlines():
        command, _, comment = line.partition("#")
        if command.strip().startswith("python -m core"):
            commands.append((command.strip(), FIGURE.findall(comment)))
        elif commands and comment:  # a comment line under a command: what it prints
            commands[-1][1].extend(FIGURE.findall(comment))
    return commands


@pytest.fixture
def readme_folder(tmp_path: Path, monkeypatch) -> Path:
    """A working folder as a reader's (the default store ``./models``), with the package's data beside it."""
    for name in STORE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    shutil.copytree(ROOT / "core" / "data", tmp_path / "core" / "data")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(commands: list[tuple[str, list[str]]], capsys) -> None:
    assert commands
    for command, figures in commands:
        code = main(shlex.split(command)[3:])
        out, err = capsys.readouterr()
        assert code == 0, f"{command}: {err}"
        for figure in figures:
            assert figure in out, f"{command} did not print {figure}: {out}"


def test_the_readme_command_line_examples_run_as_written(readme_folder: Path, capsys):
    commands = [c for block in _blocks(_section("The command line"), "bash") for c in _commands(block)]
    assert any("builtin:pima" in c and "0.7559055118110236" in f for c, f in commands)
    _run(commands, capsys)
    assert (readme_folder / "predictions.csv").is_file()


def test_the_readme_taking_elsewhere_examples_run_as_written(readme_folder: Path, capsys):
    tutorial = _commands(_blocks(_section("The command line"), "bash")[0])[0]
    _run([tutorial, *_commands(_blocks(_section("Taking a model elsewhere"), "bash")[0])], capsys)
    assert (readme_folder / "pima-v1.zip").is_file()


def test_the_readme_python_examples_run_as_written(readme_folder: Path):
    blocks = _blocks(_section("The Python API"), "python")
    assert len(blocks) == 2
    for block in blocks:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(block, "README.md", "exec"), {})
        expected = [FIGURE.findall(line) or re.findall(r"# (True|False)\b", line) for line in block.splitlines()]
        lines = printed.getvalue().splitlines()
        for figure in [f for found in expected for f in found]:
            assert any(line.startswith(figure) for line in lines), (figure, lines)
