"""Compare this checkout's benchmark ratios with another commit's, run in the same session.

    python -m bench.compare PARENT [--runs 3] [--scale quick] [--tolerance 0.10]

Checks ``PARENT`` out into a temporary git worktree, then runs ``python -m bench --SCALE`` there
and here in turn, ``--runs`` times each (alternating, so a slow minute hurts both), and keeps each
figure's best cost: its ratio to its baseline (inverted for "x faster" figures, so lower is
always better), or its median when it has no baseline. A figure whose best cost here is more
than ``tolerance`` above the parent's is a regression: the table says which, and the exit code
is 1. ``--only GROUP ...`` passes through to the benchmark.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _figures(folder: Path) -> dict[str, float]:
    """``key -> cost`` from one run: lower is better. A ratio of subject over baseline; for a
    "faster" figure (baseline over subject) its inverse; without a ratio, the subject's median."""
    data = json.loads((folder / "benchmarks" / "results.json").read_text())
    values: dict[str, float] = {}
    for figure in data["figures"]:
        if figure.get("unavailable"):
            continue
        value = figure.get("ratio")
        if value and figure.get("kind") == "faster":
            value = 1 / value  # "28x faster" is stored as 28: lower cost is a higher ratio
        if value is None and figure.get("subject"):
            value = figure["subject"]["median"]
        if isinstance(value, int | float) and value > 0:
            values[figure["key"]] = float(value)
    return values


def _run(checkout: Path, scale: str, output: Path, only: list[str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "bench", f"--{scale}", "--output", str(output), *(["--only", *only] if only else [])],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"python -m bench failed in {checkout}:\n{done.stderr[-2000:]}")
    return _figures(output)


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = set().union(*runs) if runs else set()
    return {k: min(r[k] for r in runs if k in r) for k in keys}


def compare(parent: dict[str, float], here: dict[str, float], tolerance: float) -> tuple[list[str], list[str]]:
    """The table's lines and the keys that got worse by more than ``tolerance``."""
    lines = [f"{'figure (cost: lower is better)':<34} {'parent':>10} {'here':>10} {'change':>8}"]
    worse = []
    for key in sorted(set(parent) & set(here)):
        change = here[key] / parent[key] - 1
        flag = ""
        if change > tolerance:
            worse.append(key)
            flag = "  WORSE"
        lines.append(f"{key:<34} {parent[key]:>10.3g} {here[key]:>10.3g} {change:>+7.0%}{flag}")
    return lines, worse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("parent", help="the commit to compare with (e.g. HEAD~1)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each side; the best ratio counts")
    parser.add_argument("--scale", choices=("quick", "tiny"), default="quick")
    parser.add_argument("--tolerance", type=float, default=0.10, help="allowed rise of a cost (0.10: 10%%)")
    parser.add_argument("--only", nargs="+", default=[], help="measure only these groups (as python -m bench)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelshelf-compare-") as scratch:
        tree = Path(scratch) / "parent"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.parent], cwd=ROOT, check=True)
        try:
            parent_runs, here_runs = [], []
            for i in range(max(1, args.runs)):
                parent_runs.append(_run(tree, args.scale, Path(scratch) / f"parent-{i}", args.only))
                here_runs.append(_run(ROOT, args.scale, Path(scratch) / f"here-{i}", args.only))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
            shutil.rmtree(tree, ignore_errors=True)
    lines, worse = compare(_best(parent_runs), _best(here_runs), args.tolerance)
    print("\n".join(lines))
    if worse:
        print(f"{len(worse)} figure(s) more than {args.tolerance:.0%} worse than {args.parent}: {', '.join(worse)}")
        return 1
    print(f"no figure more than {args.tolerance:.0%} worse than {args.parent} (best of {args.runs} each)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
