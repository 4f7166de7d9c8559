"""``python -m core index rebuild``: make a lost or damaged index again from the store's own files."""

from __future__ import annotations

import argparse

from core.cli.base import Output


def index_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["rebuild"], help="rebuild: from the marker and every version.json")
    p.add_argument("--force", action="store_true", help="rebuild even a healthy index (it is moved aside, kept)")


def index_command(args: argparse.Namespace) -> Output:
    # Deferred: the store pulls in pandas and SQLAlchemy, which --help does not need.
    from core.store import default_store_path
    from core.store.rebuild import rebuild_index

    done = rebuild_index(args.store or default_store_path(), force=args.force)
    lines = [f"Rebuilt the index of {done['store']}: {done['versions']} version(s) of {done['names']} name(s)"]
    if done["moved_aside"]:
        lines.append(f"  the old index was moved to {done['moved_aside']}")
    lines += [f"  skipped {entry}" for entry in done["skipped"]]
    return "\n".join(lines), done
