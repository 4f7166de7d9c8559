"""``python -m core import FILE --name NAME [--data ...]``: add a model file from outside.

The file is read once (refused before reading if over the upload limit) and handed to
``Store.import_model``, which tells its format from its bytes (never its name) and loads it
through the restricted loader. ``_import`` is the branch point where other kinds of file
(bundles) get their own handler.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli import Output, _data_args, _store, command
from core.datasets import load_dataset
from core.errors import DatasetError, InvalidParameterError
from core.text import human_bytes


def _import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a pickle, joblib or skops model file, a ModelShelf bundle .zip or JSON parameters")
    p.add_argument("--name", help="model name to add the file under (a bundle's own name by default)")
    _data_args(p, required=False)
    p.add_argument("--test-size", type=float, default=0.33, help="held-out fraction to score on (default 0.33)")
    p.add_argument("--seed", type=int, default=7, help="random_state of the split (default 7)")
    p.add_argument("--stratify", action="store_true", help="keep class proportions in the split")
    p.add_argument("--tag", action="append", help="tag (repeatable)")
    p.add_argument("--note", help="free text kept with the version")


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
        raise InvalidParameterError(f"Could not read {path}: {exc.strerror or exc}") from None


def _import_model_file(args: argparse.Namespace, data: bytes) -> Output:
    from core.safety import LoadLimits

    dataset = None
    if args.data:
        dataset = load_dataset(args.data, names=args.names, target=args.target)
    elif args.names or args.target:
        raise DatasetError("--names and --target describe --data; give --data too")
    record = _store(args).import_model(
        data,
        args.name,
        filename=Path(args.file).name,
        dataset=dataset,
        test_size=args.test_size,
        seed=args.seed,
        stratify=args.stratify,
        tags=args.tag or [],
        note=args.note or "",
        limits=LoadLimits.from_settings(),
    )
    imported = record["imported"]
    lines = [
        f"Imported {args.file} as {record['name']}:{record['version']} "
        f"({record['format']}{', ' + record['compression'] if record.get('compression') else ''}, "
        f"{human_bytes(record['size_bytes'])}, sha256 {record['sha256'][:16]}...)",
        f"  estimator    {record['estimator']}",
        f"  saved with   scikit-learn {imported['sklearn_version'] or 'unknown'}",
    ]
    if record["metrics"]:
        lines.append(
            f"  accuracy     {record['metrics']['accuracy']!r} on {record['split']['n_test']} held-out rows "
            f"of {record['dataset']['source']}"
        )
    lines += [f"  warning      {w}" for w in record.get("warnings") or []]
    return "\n".join(lines), record


@command(
    "import", "add a model file (pickle, joblib, skops), a bundle or JSON parameters as a new version", _import_args
)
def _import(args: argparse.Namespace) -> Output:
    from core.settings import load_settings

    data = read_input_file(args.file, load_settings().max_upload_bytes)
    # Branch point: recognise other kinds of file here (a bundle .zip, say) and hand them to their
    # own handler; everything else is a model file, whose format is told from its bytes.
    from core.portable.bundle import is_bundle

    if is_bundle(data):
        from core.portable.cli import import_bundle_file

        return import_bundle_file(args, data)
    from core.portable.params_json import is_params_json

    if is_params_json(data):
        from core.portable.cli import import_params_file

        return import_params_file(args, data)
    if not args.name:
        raise InvalidParameterError(
            "--name is required to import a model file or JSON parameters (a bundle brings its own)"
        )
    return _import_model_file(args, data)
