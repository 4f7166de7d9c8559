"""``export``, ``env``: take a version elsewhere, re-create its environment.

A bundle or JSON parameters come back in with ``import`` (``core.cli.imports``); ``predict
--engine onnx`` lives with the predict command (``core.cli.scoring``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from core.cli.base import Output, ref_arg, store_of
from core.errors import InvalidParameterError
from core.portable.how_to_load import DOWNLOAD_FORMATS
from core.portable.requirements import environment_report
from core.text import human_bytes


def write_file_atomically(path: str | Path, data: bytes) -> None:
    """Write to a temporary name beside ``path``, then rename: never a half-written file under ``path``."""
    target = Path(path)
    if target.is_dir():
        raise InvalidParameterError(f"{target} is a folder; give a file name with -o")
    if not target.parent.exists():
        raise InvalidParameterError(f"The folder {target.parent} does not exist")
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temp.write_bytes(data)
        os.replace(temp, target)
    finally:
        if temp.exists():
            temp.unlink()


def export_args(p: argparse.ArgumentParser) -> None:
    ref_arg(p)
    p.add_argument("--to", required=True, choices=DOWNLOAD_FORMATS, help="the format to write")
    p.add_argument("-o", "--output", help="file to write (default: NAME-vN.EXT in the current folder)")


def export_command(args: argparse.Namespace) -> Output:
    from core.portable.exports import export_version  # deferred: the ONNX and JSON converters; env needs none

    exported = export_version(store_of(args), args.ref, args.to)
    output = args.output or exported.filename
    write_file_atomically(output, exported.data)
    info = exported.info
    lines = [f"Wrote {exported.ref} as {args.to} to {output} ({human_bytes(len(exported.data))})"]
    if info.get("sha256"):
        lines.append(f"  sha256       {info['sha256']}")
    parity = info.get("parity")
    if args.to == "onnx" and parity and parity.get("max_value_diff") is not None:
        lines.append(
            f"  parity       predictions within {parity['tolerance']:g} x max(1, |value|) on {parity['rows']} "
            f"evaluation rows, max difference {parity['max_value_diff']:.2e}"
            if parity["passed"]
            else "  parity       FAILED"
        )
    elif args.to == "onnx" and parity:
        lines.append(
            f"  parity       labels equal on {parity['rows']} evaluation rows, max probability difference "
            f"{parity['max_proba_diff']:.2e} (tolerance {parity['tolerance']:g})"
            if parity["passed"]
            else "  parity       FAILED"
        )
    if args.to == "onnx" and not parity:
        lines.append("  parity       not checked: the version has no evaluation set")
    if args.to == "json":
        lines.append(
            f"  exact        numpy predictor matches scikit-learn on {info['rows_checked']} evaluation rows"
            if info.get("rows_checked")
            else "  exact        not checked: the version has no evaluation set"
        )
    if args.to == "bundle":
        lines.append("  files        " + ", ".join(sorted(info.get("files", {}))))
        lines += [f"  left out     {fmt}: {reason}" for fmt, reason in info.get("omitted", {}).items()]
    if info.get("same_file") is False:
        lines.append(f"  note         re-written from the stored {info.get('converted_from')} file")
    return "\n".join(lines), {"output": output, "format": args.to, "size_bytes": len(exported.data), **info}


def env_command(args: argparse.Namespace) -> Output:
    record = store_of(args).get(args.ref)
    report = environment_report(record)
    lines = [report["requirements"].rstrip("\n"), ""]
    differences = report["compatibility"]["differences"]
    if not differences:
        lines.append(f"This environment matches the one {report['ref']} was saved in.")
    else:
        lines.append(f"This environment differs ({report['status']}):")
        for d in differences:
            lines.append(
                f"  {d['package']:<14} saved {d['saved'] or 'absent':<10} "
                f"running {d['current'] or 'absent':<10} {d['severity']}"
            )
    return "\n".join(lines), report
