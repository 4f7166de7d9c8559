"""A bounded fuzz run of the safe loader, in a child process so that a crash shows as a failure.

Mutated bytes of real model files (every format, and one file with a payload hidden inside)
must each end as a loaded model or a ModelShelfError: never another exception, never a crash,
never the payload's marker file. The longer run is documented in docs/safety.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "fuzz_safe_load.py"


def test_mutated_model_files_never_crash_or_run_code() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--iterations", "300", "--seed", "2026", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode in (0, 1), f"the fuzzer's process died ({result.returncode}): {result.stderr[-2000:]}"
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["bad"] == [], summary["bad"]
    assert summary["marker_created"] is False
    assert result.returncode == 0
    outcomes = summary["outcomes"]
    assert sum(outcomes.get(k, 0) for k in ("refused", "loaded")) == 300
    # Both outcomes occur: the mutations are neither all harmless nor all rejected at the door.
    assert outcomes.get("refused", 0) > 0 and outcomes.get("loaded", 0) > 0


STRUCTURE_SCRIPT = Path(__file__).resolve().parent / "fuzz_structure.py"


def test_mutated_model_structures_through_the_worker_never_reach_this_process() -> None:
    """Fitted models with broken shapes, indices, node links and feature counts, for a bounded time.

    ``MODELSHELF_FUZZ_SECONDS`` (CI sets 60; 20 when unset). Every outcome must be a refusal, a
    loaded model or a crash contained in the worker; nothing else may reach the fuzzing process.
    """
    import os

    seconds = float(os.environ.get("MODELSHELF_FUZZ_SECONDS", "20"))
    result = subprocess.run(
        [sys.executable, str(STRUCTURE_SCRIPT), "--seconds", str(seconds), "--seed", "2026", "--json"],
        capture_output=True,
        text=True,
        timeout=seconds + 240,
    )
    assert result.returncode in (0, 1), f"the fuzzing process died ({result.returncode}): {result.stderr[-2000:]}"
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    bad = [p for p in summary["problems"] if p["outcome"] == "bad"]
    assert bad == [], bad
    assert result.returncode == 0
    outcomes = summary["outcomes"]
    assert set(outcomes) <= {"refused", "loaded", "contained"}, outcomes
    assert outcomes.get("refused", 0) > 0 and outcomes.get("loaded", 0) > 0, outcomes
    contained = [p for p in summary["problems"] if p["outcome"] == "contained"]
    print(f"structural fuzz: {outcomes}; crashes contained by the worker: {contained}")
