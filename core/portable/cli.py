"""``python -m core export|env``: take a version elsewhere, re-create its environment.

Registered into ``core.cli`` (imported at the bottom of it). ``import`` (``core.commands_import``)
hands a bundle to ``import_bundle_file`` here; ``predict --engine onnx`` lives with the predict
command and calls ``core.portable.exports.predict_with_onnx``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from core.cli import Output, _ref_arg, _store, command
from core.errors import InvalidParameterError
from core.portable.how_to_load import DOWNLOAD_FORMATS
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


def _export_args(p: argparse.ArgumentParser) -> None:
    _ref_arg(p)
    p.add_argument("--to", required=True, choices=DOWNLOAD_FORMATS, help="the format to write")
    p.add_argument("-o", "--output", help="file to write (default: NAME-vN.EXT in the current folder)")


@command("export", "write a version as onnx, json, bundle, pickle, joblib or skops", _export_args)
def _export(args: argparse.Namespace) -> Output:
    from core.portable.exports import export_version

    exported = export_version(_store(args), args.ref, args.to)
    output = args.output or exported.filename
    write_file_atomically(output, exported.data)
    info = exported.info
    lines = [f"Wrote {exported.ref} as {args.to} to {output} ({human_bytes(len(exported.data))})"]
    if info.get("sha256"):
        lines.append(f"  sha256       {info['sha256']}")
    parity = info.get("parity")
    if args.to == "onnx" and parity:
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


def _no_data_options(args: argparse.Namespace, why: str) -> None:
    given = [f"--{o}" for o in ("data", "names", "target") if getattr(args, o, None)]
    if given:
        raise InvalidParameterError(f"{', '.join(given)} apply to model files only: {why}")


def import_bundle_file(args: argparse.Namespace, data: bytes) -> Output:
    """Import bundle bytes for the ``import`` command (used by it when the file is a bundle)."""
    from core.portable.bundle import import_bundle
    from core.safety import LoadLimits

    _no_data_options(args, "a bundle carries its own evaluation set")
    result = import_bundle(
        _store(args),
        data,
        getattr(args, "name", None),
        filename=Path(args.file).name,
        tags=getattr(args, "tag", None) or (),
        note=getattr(args, "note", None) or "",
        limits=LoadLimits.from_settings(),
    )
    lines = [result.message] + [f"  warning: {w}" for w in result.warnings]
    return "\n".join(lines), result.to_dict()


def import_params_file(args: argparse.Namespace, data: bytes) -> Output:
    """Import a plain-parameter JSON for the ``import`` command: rebuilt with this scikit-learn."""
    from core.portable.params_json import import_params

    _no_data_options(args, "JSON parameters are imported as they are; score the version with evaluate --data")
    if not getattr(args, "name", None):
        raise InvalidParameterError("--name is required to import JSON parameters")
    record = import_params(
        _store(args),
        data,
        args.name,
        filename=Path(args.file).name,
        tags=getattr(args, "tag", None) or (),
        note=getattr(args, "note", None) or "",
    )
    text = (
        f"Rebuilt {record['imported']['estimator']} from {args.file} with this scikit-learn and saved it as "
        f"{record['name']}:{record['version']} (joblib, {human_bytes(record['size_bytes'])}); "
        "score it with: python -m core evaluate REF --data ..."
    )
    return text, record


@command("env", "the pinned requirements of a version and how this environment differs", _ref_arg)
def _env(args: argparse.Namespace) -> Output:
    from core.portable.requirements import environment_report

    record = _store(args).get(args.ref)
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
