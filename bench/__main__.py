"""``python -m bench [--quick | --tiny] [--output DIR] [--only GROUP ...]``.

Full mode (the default) is the reference run (a few minutes); ``--quick`` scales every
workload down to finish in under a minute; ``--tiny`` is for the tests (seconds).
Writes DIR/benchmarks.md (default: docs/), DIR/benchmarks/*.html and results.json, and prints
the README snippet.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.machine import describe_machine, package_versions
from bench.workloads import ROOT, SCALES

GROUPS = (
    "save",
    "load",
    "safe",
    "worker",
    "mlflow",
    "list",
    "mmap",
    "onnx",
    "import",
    "page",
    "remote",
    "cli",
    "format",
    "durable",
    "dash",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller workloads, fewer repeats (< 1 minute)")
    size.add_argument("--tiny", action="store_true", help="tiny workloads (for the tests: a few seconds)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs", help="folder for benchmarks.md (default docs/)")
    parser.add_argument("--only", nargs="+", choices=GROUPS, help="measure only these groups of figures")
    parser.add_argument("--scratch", type=Path, help="where temporary stores go (default: a fresh temp folder)")
    return parser


def _shown_args(argv: list[str]) -> str:
    """The options that shape the run (not where its files went), for the report's first line."""
    shown: list[str] = []
    skip = False
    for arg in argv:
        if skip or arg.split("=")[0] in ("--output", "--scratch"):
            skip = not skip and "=" not in arg
            continue
        shown.append(arg)
    return "".join(f" {a}" for a in shown)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    scale = SCALES[mode]
    from bench.figures import Bench

    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="modelshelf-bench-", dir=args.scratch))
    print(f"ModelShelf benchmark, {mode} mode; scratch folder {scratch}", flush=True)
    bench = Bench(scale, scratch, set(args.only) if args.only else None, log=lambda m: print(m, flush=True))
    run = {
        "mode": mode,
        "argv": _shown_args(sys.argv[1:] if argv is None else argv),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": describe_machine(),
        "packages": package_versions(),
        "repeats": scale.repeats,
        "only": sorted(args.only) if args.only else None,
    }
    try:
        figures = bench.run()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    run["workloads"] = [f"{w.key}: {w.label}, {w.joblib_bytes / 1e6:.1f} MB as joblib" for w in bench.works.values()]
    run["seconds"] = time.perf_counter() - started
    bench.notes.append(f"the whole run took {run['seconds']:.0f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    bench.notes.append(f"peak resident memory of the benchmark process: {peak / 2**30:.2f} GiB")
    target = report.write(figures, run, bench.notes, args.output)
    print(f"\nwrote {target} ({run['seconds']:.0f} s)\n\nREADME snippet:\n")
    print(report.readme_snippet(figures, run))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
