"""``python -m core index rebuild|upgrade``: make a lost or damaged index again from the store's own
files, or bring an index to this release's schema (the one way for an index on a database server)."""

from __future__ import annotations

import argparse

from core.cli.base import Output, store_of


def index_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        choices=["rebuild", "upgrade"],
        help="rebuild: from the marker and every version.json; upgrade: to this release's schema (Alembic)",
    )
    p.add_argument("--force", action="store_true", help="rebuild even a healthy index (it is moved aside, kept)")


def index_command(args: argparse.Namespace) -> Output:
    if args.action == "upgrade":
        return _upgrade(args)
    # Deferred: the store pulls in pandas and SQLAlchemy, which --help does not need.
    from core.store import default_store_path
    from core.store.rebuild import rebuild_index

    done = rebuild_index(args.store or default_store_path(), force=args.force)
    lines = [f"Rebuilt the index of {done['store']}: {done['versions']} version(s) of {done['names']} name(s)"]
    if done["moved_aside"]:
        lines.append(f"  the old index was moved to {done['moved_aside']}")
    lines += [f"  skipped {entry}" for entry in done["skipped"]]
    return "\n".join(lines), done


def _upgrade(args: argparse.Namespace) -> Output:
    store = store_of(args)  # a newer schema is refused here, in one line
    try:
        before, after = store.index.upgrade()
    finally:
        store.close()
    done = {"store": store.location, "from": before, "to": after, "upgraded": before != after}
    if before == after:
        return f"The index of {store.location} is already at schema {after}: nothing to do", done
    return f"Upgraded the index of {store.location} from schema {before} to {after}", done
