"""``python -m core import FILE [--name NAME] [--data ...]``: add a file from outside as a new version.

The file is read once (refused before reading if over the upload limit) and handed to
``core.importing.import_file``, the import the Upload page uses too: it tells a bundle, JSON
parameters and a model file apart from the bytes (never the name). Here: the command's options,
checked against that kind before the store is opened, and the lines printed for each kind.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.cli.base import Output, data_args, duplicate_args, duplicate_line, store_of
from core.datasets import Dataset, load_dataset
from core.errors import DatasetError, InvalidParameterError
from core.importing import FileKind, ImportedFile, file_kind, import_file
from core.record import ref_of
from core.safety import LoadLimits
from core.settings import load_settings
from core.text import human_bytes


def import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a pickle, joblib or skops model file, a ModelShelf bundle .zip or JSON parameters")
    p.add_argument("--name", help="model name to add the file under (a bundle's own name by default)")
    data_args(p, required=False)
    p.add_argument("--test-size", type=float, default=0.33, help="held-out fraction to score on (default 0.33)")
    p.add_argument("--seed", type=int, default=7, help="random_state of the split (default 7)")
    p.add_argument("--stratify", action="store_true", help="keep class proportions in the split")
    p.add_argument("--tag", action="append", help="tag (repeatable)")
    p.add_argument("--note", help="free text kept with the version")
    duplicate_args(p)


def read_input_file(path: str, max_bytes: int) -> bytes:
    """The file's bytes, refusing one over the size limit before reading it."""
    file = Path(path)
    if not file.is_file():
        raise InvalidParameterError(f"No such file: {path}")
    size = file.stat().st_size
    if size > max_bytes:
        raise InvalidParameterError(f"{path} is {human_bytes(size)}; the limit is {human_bytes(max_bytes)}")
    try:
        return file.read_bytes()
    except OSError as exc:
        raise InvalidParameterError(f"Could not read {path}: {exc.strerror or exc}") from exc


def _no_data_options(args: argparse.Namespace, why: str) -> None:
    given = [f"--{o}" for o in ("data", "names", "target") if getattr(args, o, None)]
    given += {"first-row": ["--header"], "none": ["--no-header"]}.get(getattr(args, "header", "auto"), [])
    if given:
        raise InvalidParameterError(f"{', '.join(given)} apply to model files only: {why}")


def _checked_options(args: argparse.Namespace, kind: FileKind) -> Dataset | None:
    """The options that fit this kind of file (else one line saying why), and the data set to score on."""
    if kind == "bundle":
        _no_data_options(args, "a bundle carries its own evaluation set")
        return None
    if kind == "params":
        _no_data_options(args, "JSON parameters are imported as they are; score the version with evaluate --data")
        if not getattr(args, "name", None):
            raise InvalidParameterError("--name is required to import JSON parameters")
        return None
    if not args.name:
        raise InvalidParameterError(
            "--name is required to import a model file or JSON parameters (a bundle brings its own)"
        )
    dataset = None
    if args.data:
        dataset = load_dataset(args.data, names=args.names, target=args.target, header=args.header)
    elif args.names or args.target or args.header != "auto":
        raise DatasetError("--names, --header, --no-header and --target describe --data; give --data too")
    return dataset


def _model_file_text(args: argparse.Namespace, record: Mapping[str, Any]) -> str:
    imported = record["imported"]
    lines = [
        f"Imported {args.file} as {ref_of(record)} "
        f"({record['format']}{', ' + record['compression'] if record.get('compression') else ''}, "
        f"{human_bytes(record['size_bytes'])}, sha256 {record['sha256'][:16]}...)",
        f"  estimator    {record['estimator']}",
        f"  saved with   scikit-learn {imported['sklearn_version'] or 'unknown'}",
    ]
    if record["metrics"]:
        primary = record["metrics"].get("primary") or "accuracy"  # r2 for a regressor
        lines.append(
            f"  {primary:<12} {record['metrics'].get(primary)!r} on {record['split']['n_test']} held-out rows "
            f"of {record['dataset']['source']}"
        )
    lines += [f"  warning      {w}" for w in record.get("warnings") or []]
    return "\n".join(lines)


def _params_text(args: argparse.Namespace, record: Mapping[str, Any]) -> str:
    return (
        f"Rebuilt {record['imported']['estimator']} from {args.file} with this scikit-learn and saved it as "
        f"{ref_of(record)} (joblib, {human_bytes(record['size_bytes'])}); "
        "score it with: python -m core evaluate REF --data ..."
    )


def _text(args: argparse.Namespace, imported: ImportedFile) -> str:
    same = None if imported.bundle is not None else duplicate_line(imported.record)
    if same and imported.record.get("stored") is False:
        return same
    return "\n".join(filter(None, [_stored_text(args, imported), same]))


def _stored_text(args: argparse.Namespace, imported: ImportedFile) -> str:
    if imported.bundle is not None:
        result = imported.bundle
        return "\n".join([result.message] + [f"  warning: {w}" for w in result.warnings])
    if imported.kind == "params":
        return _params_text(args, imported.record)
    return _model_file_text(args, imported.record)


def import_command(args: argparse.Namespace) -> Output:
    data = read_input_file(args.file, load_settings().max_upload_bytes)
    kind = file_kind(data)
    dataset = _checked_options(args, kind)
    imported = import_file(
        store_of(args),
        data,
        args.name,
        kind=kind,
        filename=Path(args.file).name,
        dataset=dataset,
        test_size=args.test_size,
        seed=args.seed,
        stratify=args.stratify,
        tags=args.tag or [],
        note=args.note or "",
        limits=LoadLimits.from_settings(),
        on_duplicate=args.on_duplicate,
    )
    return _text(args, imported), imported.to_dict()
