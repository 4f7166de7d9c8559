"""The command line as a package: an explicit command table, commands imported when run, --verbose, --debug.

The flags are checked the way people use them: ``python -m core`` in a child process.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core import Store
from core.cli.base import COMMANDS, resolve
from tests.conftest import ROOT
from tests.portable_support import trained

LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) core(\.\w+)*: \S.*$")
#: What reports which of the CLI's modules a run imported (stderr, after the command's own output).
MODULES_CHILD = (
    "import sys\n"
    "from core.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('modules', *sorted(m for m in sys.modules if m.startswith('core.cli.')), file=sys.stderr)\n"
)


def run_core(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *argv], cwd=ROOT, capture_output=True, text=True, timeout=300)


def cli_modules(*argv: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", MODULES_CHILD, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    line = next(line for line in done.stderr.splitlines() if line.startswith("modules"))
    return line.split()[1:]


@pytest.fixture(scope="module")
def params_file(tmp_path_factory) -> Path:
    """JSON parameters of a decision tree: a file ``import`` takes in quickly, without a worker."""
    from core.portable.exports import export_version

    folder = tmp_path_factory.mktemp("sender")
    sender = Store(folder / "store")
    try:
        sender.save_trained(trained("builtin:iris", "decision_tree"), "tree")
        path = folder / "tree.json"
        path.write_bytes(export_version(sender, "tree:1", "json").data)
    finally:
        sender.close()
    return path


def test_every_command_in_the_table_resolves_to_its_module_in_core_cli():
    for name, spec in COMMANDS.items():
        for target in filter(None, (spec.handler, spec.setup)):
            assert target.startswith("core.cli.") and callable(resolve(target)), (name, target)


def test_help_lists_the_commands_in_the_tables_order():
    done = run_core("--help")
    assert done.returncode == 0
    listed = re.findall(r"^    ([\w-]+) ", done.stdout, flags=re.M)  # compare-estimators has a hyphen
    assert listed == list(COMMANDS)


def test_the_base_and_the_runner_import_no_command_and_no_heavy_library_at_module_level():
    allowed = {"argparse", "importlib", "collections.abc", "dataclasses", "typing", "json", "logging", "sys"}
    allowed |= {"contextlib", "__future__", "core.errors", "core.cli.base"}
    allowed |= {"errno", "os"}  # loaded by every interpreter before main runs: the broken-pipe and disk-full lines
    for module in ("base", "run"):
        tree = ast.parse((ROOT / "core" / "cli" / f"{module}.py").read_text())
        imported = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
        assert imported <= allowed, (module, imported - allowed)


@pytest.mark.parametrize(
    ("argv", "commands"),
    [
        (["--help"], []),
        (["no-such-command"], []),
        (["list", "--help"], ["core.cli.models"]),
        (["estimators", "--json"], ["core.cli.train"]),
        (["datasets"], ["core.cli.train"]),
    ],
)
def test_a_run_imports_only_the_command_it_runs(argv, commands):
    assert cli_modules(*argv) == sorted(["core.cli.base", "core.cli.run", *commands])


def test_list_imports_only_its_own_module(tmp_path):
    assert cli_modules("list", "--store", str(tmp_path / "store")) == [
        "core.cli.base",
        "core.cli.models",
        "core.cli.run",
    ]


def test_verbose_logs_one_line_per_record_on_stderr_and_leaves_stdout_alone(params_file, tmp_path):
    quiet = run_core("import", str(params_file), "--name", "tree", "--store", str(tmp_path / "quiet"))
    assert quiet.returncode == 0 and quiet.stderr == ""
    for argv in (["--verbose", "import"], ["import", "--verbose"]):
        store = tmp_path / "-".join(argv).strip("-")
        loud = run_core(*argv, str(params_file), "--name", "tree", "--store", str(store))
        assert loud.returncode == 0, loud.stderr
        assert loud.stdout == quiet.stdout  # the command's own output is unchanged
        lines = loud.stderr.splitlines()
        assert lines and all(LOG_LINE.match(line) for line in lines), loud.stderr
        assert f"INFO core.importing: {params_file.name}: JSON parameters, " in loud.stderr


def test_verbose_does_not_touch_json_output(params_file, tmp_path):
    done = run_core("--verbose", "--json", "import", str(params_file), "--name", "tree", "--store", str(tmp_path / "s"))
    assert done.returncode == 0
    assert json.loads(done.stdout)["name"] == "tree"
    assert "core.importing" in done.stderr


def _unreadable_file() -> str:
    """A path that is a file and fails with OSError when read (Linux: a process's own memory at offset 0)."""
    path = Path("/proc/self/mem")
    try:
        path.read_bytes()
    except OSError:
        if path.is_file():
            return str(path)
    pytest.skip("no file here that is a file and cannot be read")


def test_errors_are_one_line_and_debug_shows_the_chained_cause(tmp_path):
    path = _unreadable_file()
    store = ["--store", str(tmp_path / "store")]
    plain = run_core("import", path, "--name", "x", *store)
    assert plain.returncode == 1
    assert plain.stderr.splitlines() == [f"error: Could not read {path}: Input/output error"]
    debug = run_core("--debug", "import", path, "--name", "x", *store)
    assert debug.returncode == 1
    lines = debug.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    cause = "The above exception was the direct cause of the following exception:"
    assert cause in lines and any(line.startswith("OSError: [Errno 5]") for line in lines[: lines.index(cause)])
    assert lines[-1] == f"core.errors.InvalidParameterError: Could not read {path}: Input/output error"
