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
