"""The command line's answer time: whole processes, as a script that loops over the CLI pays them.

Each sample is one ``python -m core ...`` process from fork to exit, on a store whose index holds
the middle list size of the scale (10,000 versions at full scale); its peak resident memory comes
from the kernel's accounting of that one child (``os.wait4``). ``python -c pass`` is the floor:
what any Python command costs on this machine before it does anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bench.machine import cached_bytecode_env
from bench.timing import Samples

if TYPE_CHECKING:
    from bench.figures import Bench, Figure

#: Processes per figure (the issue's "10 runs, median"), after one unmeasured run.
RUNS = 10
ROOT = Path(__file__).resolve().parents[1]


#: Runs one command and reports it. A small launcher, because a child's peak resident memory
#: (``ru_maxrss``) includes what it shared with its parent before ``exec``: forked from the benchmark
#: (hundreds of MB of models), every command would seem that big.
_LAUNCHER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
_pid, status, usage = os.wait4(child.pid, 0)
took = time.perf_counter() - started
errors = child.stderr.read().decode(errors="replace")
code = os.waitstatus_to_exitcode(status)
print(json.dumps({"seconds": took, "peak": usage.ru_maxrss * 1024, "code": code, "errors": errors[-300:]}))
"""


def run_process(argv: list[str]) -> tuple[float, int]:
    """(wall seconds, peak resident bytes) of one process running ``argv`` to its end (Linux: KiB)."""
    launch = [sys.executable, "-c", _LAUNCHER, *argv]
    out = subprocess.run(launch, cwd=ROOT, capture_output=True, text=True, env=cached_bytecode_env())
    result = json.loads(out.stdout)
    if result["code"] != 0:
        raise RuntimeError(f"{' '.join(argv[2:])} exited {result['code']}: {result['errors'].strip()}")
    return float(result["seconds"]), int(result["peak"])


def _runs(argv: list[str], runs: int) -> tuple[Samples, Samples]:
    run_process(argv)  # unmeasured: page cache and bytecode caches warm
    measured = [run_process(argv) for _ in range(runs)]
    return Samples([t for t, _ in measured]), Samples([float(m) for _, m in measured])


def cli_figures(bench: Bench) -> None:
    """``cli_list_wall``, ``cli_show_wall`` and their peak memory, beside ``python -c pass``."""
    from bench.figures import Figure

    n = bench.scale.list_sizes[1]
    runs = RUNS if bench.scale.name == "full" else 3
    measured: dict[str, tuple[Samples, Samples]] = {}

    def measure(fig: Figure, memory: Figure, *command: str) -> None:
        if "floor" not in measured:
            measured["floor"] = _runs([sys.executable, "-c", "pass"], runs)
        folder = bench.index_store(n)
        fig.subject, memory.subject = _runs([sys.executable, "-m", "core", "--store", str(folder), *command], runs)
        fig.baseline, memory.baseline = measured["floor"]
        fig.note = memory.note = f"{runs} processes, median; the baseline is python -c pass"

    def copied(memory: Figure, wall: Figure) -> None:
        """The memory figure was measured with the wall one: only a failure is left to copy."""
        if wall.unavailable:
            raise RuntimeError(wall.unavailable)

    for key, command, title in (
        ("list", ("list",), "python -m core list (first page of 50)"),
        ("show", ("show", "model-000"), "python -m core show NAME"),
    ):
        memory = Figure(
            f"cli_{key}_memory",
            f"{title}: peak memory of the whole process",
            f"{n:,} versions",
            f"python -m core {' '.join(command)}",
            "python -c pass",
            kind="under",
            target=80e6 if key == "list" else None,
            unit="B",
        )
        wall = Figure(
            f"cli_{key}_wall",
            f"{title}: wall time of the whole process",
            f"{n:,} versions",
            f"python -m core {' '.join(command)}",
            "python -c pass",
            kind="under",
            target=0.3 if key == "list" else None,
        )
        bench.add(wall, lambda f, memory=memory, command=command: measure(f, memory, *command))
        bench.add(memory, lambda f, wall=wall: copied(f, wall))
