"""Peak extra memory of importing an uploaded model file, measured in a fresh process.

Usage: ``python -m bench.peak_memory FILE STORE_FOLDER``; prints one JSON line. The upload's
bytes are read first (an upload arrives as bytes), the imports are warmed up, then
``ru_maxrss`` (the process's peak resident memory) is read before and after
``Store.import_model``: the difference is the extra peak memory the import needed.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path


def _peak_bytes() -> int:
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def main(argv: list[str]) -> int:
    path, folder = Path(argv[0]), Path(argv[1])
    from core.safe_load import LoadLimits  # imported first: import cost is not import memory

    from core import Store

    store = Store(folder)
    data = path.read_bytes()
    # The deployment's upload limit may be below the benchmark's file: this measures memory, not policy.
    limits = LoadLimits(max_bytes=4 * len(data), max_decompressed_bytes=8 * len(data), timeout_s=600)
    before = _peak_bytes()
    record = store.import_model(data, "upload", filename=path.name, limits=limits)
    after = _peak_bytes()
    print(
        json.dumps(
            {
                "file_bytes": len(data),
                "before": before,
                "after": after,
                "extra_bytes": after - before,
                "version": record["version"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
