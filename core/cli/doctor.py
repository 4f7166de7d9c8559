"""``python -m core doctor``: the model worker's sandbox layers, and the store's own health.

The sandbox: it starts a worker and asks it (a layer the kernel refuses shows as inactive, with
the reason), one line per layer. The store (``--store``): rows without files, files without rows,
stale temporary files, sizes (``--verify``: hashes), the marker; ``--repair`` fixes what is safe
(``core.store.checkup``). Exit code 0 only when every layer is active and the store has no problem.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.cli.base import Output


def doctor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verify", action="store_true", help="re-hash every file (default: compare sizes)")
    p.add_argument("--repair", action="store_true", help="remove stale leftovers, rewrite the marker and metadata")
    p.add_argument("--store-only", action="store_true", help="check the store only, not the sandbox layers")
    p.add_argument(
        "--stale-after", type=float, default=3600.0, metavar="SECONDS", help="leftovers older than this are problems"
    )


def _sandbox() -> tuple[list[str], dict[str, Any], bool]:
    # Looked up when the command runs (tests replace them on core.safety.proxy).
    from core.safety.proxy import sandbox_is_weak, sandbox_layers
    from core.settings import load_settings

    settings = load_settings()
    layers = sandbox_layers()
    if "deadline" in layers:  # the limit in force here, as the operator configured it
        layers["deadline"]["reason"] += f" (MODELSHELF_LOAD_TIMEOUT_S={settings.load_timeout_s:g} s)"
    active = all(entry["active"] for entry in layers.values())
    width = max(len(name) for name in layers)
    lines = [
        f"{name:<{width}}  {'active' if entry['active'] else 'INACTIVE':<8}  {entry['reason']}"
        for name, entry in layers.items()
    ]
    if not active:
        weak = sandbox_is_weak(layers)
        lines.append(
            "Some layers are not active"
            + ("; with neither the filesystem nor the network layer, demo mode refuses uploads" if weak else "")
        )
    return lines, layers, active


def doctor_command(args: argparse.Namespace) -> Output:
    # Deferred: the store pulls in pandas and SQLAlchemy, which --help does not need.
    from core.store.checkup import check_store
    from core.store.config import resolve_store

    lines: list[str] = []
    payload: dict[str, Any] = {}
    active = True
    if not getattr(args, "store_only", False):
        lines, payload["layers"], active = _sandbox()
        payload["all_active"] = active
    settings = resolve_store(args.store, getattr(args, "index_url", None), getattr(args, "artifacts_url", None))
    checkup = check_store(
        settings.path or settings.display,  # a folder, or the URLs redacted (never a password)
        index_url=settings.index_url,
        artifacts_url=settings.artifacts_url,
        storage_options=settings.storage_options,
        verify=getattr(args, "verify", False),
        repair=getattr(args, "repair", False),
        stale_after_s=getattr(args, "stale_after", 3600.0),
    )
    payload = checkup.as_dict() | payload
    mode = " (read-only snapshot)" if checkup.snapshot else " (read-only)" if checkup.read_only else ""
    if not checkup.exists:
        lines.append(f"store {checkup.store}: no store here, nothing to check")
    elif checkup.ok:
        lines.append(f"store {checkup.store}{mode}: ok, {checkup.versions} version(s) checked")
    else:
        lines.append(f"store {checkup.store}{mode}: {len(checkup.problems)} problem(s)")
    for label, found in (("problem", checkup.problems), ("repaired", checkup.repaired), ("pending", checkup.pending)):
        lines += [f"  {label:<8} {p.kind:<17} {p.ref or '-'}  {p.path or '-'}: {p.detail}" for p in found]
    args.exit_code = 0 if active and checkup.ok else 1
    return "\n".join(lines), payload
