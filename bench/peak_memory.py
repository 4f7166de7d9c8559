"""Peak extra memory of importing an uploaded model file, measured in a fresh process.

Usage: ``python -m bench.peak_memory FILE STORE_FOLDER``; prints one JSON line. The upload's
bytes are read first (an upload arrives as bytes) and the modules imported; then the peak
resident memory is reset to the current one (Linux ``/proc/self/clear_refs``) and read again
after ``Store.import_model``: the difference is the extra peak memory the import needed.
Without clear_refs, ``ru_maxrss`` before and after is used (an earlier peak may hide part of
the import, so that can only underestimate).
"""

from __future__ import annotations

import gc
import json
import resource
import sys
from pathlib import Path


def _status_bytes(field: str) -> int | None:
    """A memory line of ``/proc/self/status`` (Linux), in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Make the peak resident memory (VmHWM) start again from now (Linux 4.0+: clear_refs 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _max_rss() -> int:
    # ru_maxrss: the process's peak resident memory; Linux reports KiB, macOS bytes.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def main(argv: list[str]) -> int:
    path, folder = Path(argv[0]), Path(argv[1])
    from core import Store  # imported before measuring: import cost is not import memory
    from core.safety import LoadLimits

    store = Store(folder)
    data = path.read_bytes()
    # The deployment's upload limit may be below the benchmark's file: this measures memory, not policy.
    limits = LoadLimits(max_bytes=4 * len(data), max_decompressed_bytes=8 * len(data), timeout_s=600)
    gc.collect()
    now = _status_bytes("VmRSS")
    if now is not None and _reset_peak() and _status_bytes("VmHWM") is not None:
        method, before = "VmHWM after clear_refs, minus VmRSS before", now
        record = store.import_model(data, "upload", filename=path.name, limits=limits)
        after = _status_bytes("VmHWM") or 0
    else:
        method, before = "ru_maxrss after minus before", _max_rss()
        record = store.import_model(data, "upload", filename=path.name, limits=limits)
        after = _max_rss()
    result = {"file_bytes": len(data), "before": before, "after": after, "extra_bytes": after - before}
    print(json.dumps(result | {"method": method, "version": record["version"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
