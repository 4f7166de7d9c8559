"""``python -m core doctor``: which sandbox layers the model worker really has on this machine.

It starts a worker and asks it (a layer the kernel refuses shows as inactive, with the reason),
prints one line per layer (or ``--json``) and exits 0 only when every layer is active.
"""

from __future__ import annotations

import argparse

from core.cli.base import Output


def doctor_command(args: argparse.Namespace) -> Output:
    # Looked up when the command runs (tests replace them on core.safety.worker).
    from core.safety.worker import sandbox_is_weak, sandbox_layers
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
    args.exit_code = 0 if active else 1
    return "\n".join(lines), {"layers": layers, "all_active": active}
