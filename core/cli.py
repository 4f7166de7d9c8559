"""``python -m core``: the store from the command line.

Every command takes ``--store PATH`` (default ``$MODEL_STORE``, else ``./models``) and ``--json``
(one JSON value on stdout and nothing else there). Errors: exit code 1 and one line on stderr;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from core.catalog import CATALOG, get_spec, parse_param_args
from core.datasets import BUILTIN_DATASETS, BUILTIN_PREFIX, load_dataset, load_frame, parse_names, to_jsonable
from core.environment import compare_environment
from core.errors import ModelShelfError
from core.formats import FORMATS
from core.frames import predict_table
from core.store import Store, default_store_path
from core.store.index import SORTS
from core.text import human_bytes  # re-exported: callers used core.cli.human_bytes first
from core.training import train

Output = tuple[str, Any]
Handler = Callable[[argparse.Namespace], Output]
Setup = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    handler: Handler
    help: str
    setup: Setup | None


#: Every subcommand, in the order ``--help`` lists them. Modules add theirs with ``@command``.
COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, setup: Setup | None = None) -> Callable[[Handler], Handler]:
    """Register a subcommand: ``setup`` adds its arguments, the handler returns ``(text, json_payload)``."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(handler, help, setup)
        return handler

    return register


def _fmt_accuracy(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 1, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"error: {message} (see '{self.prog} --help')\n")


def _store(args: argparse.Namespace) -> Store:
    return Store(args.store or default_store_path())


def _data_args(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--data", required=required, help="builtin:NAME, a CSV path or a CSV URL")
    parser.add_argument("--names", help="comma-separated column names; given means the CSV has no header")
    parser.add_argument("--target", help="the label column (default: the last column; 'target' for built-ins)")


# -- commands -------------------------------------------------------------------------------------


def _train_args(p: argparse.ArgumentParser) -> None:
    _data_args(p, required=True)
    p.add_argument("--estimator", required=True, help="catalog key: " + ", ".join(CATALOG))
    p.add_argument("--param", action="append", metavar="K=V", help="hyperparameter (repeatable)")
    p.add_argument("--test-size", type=float, default=0.33, help="held-out fraction (default 0.33)")
    p.add_argument("--seed", type=int, default=7, help="random_state of the split and the estimator (default 7)")
    p.add_argument("--stratify", action="store_true", help="keep class proportions in the split")
    p.add_argument("--scale", action="store_true", help="standardise numeric features")
    p.add_argument("--name", required=True, help="model name")
    p.add_argument("--format", choices=FORMATS, default="joblib")
    p.add_argument("--compress", type=int, default=0, help="joblib compression level 0-9")
    p.add_argument("--tag", action="append", help="tag (repeatable)")
    p.add_argument("--note", help="free text kept with the version")


@command("train", "train a catalog estimator and save it as a new version", _train_args)
def _train(args: argparse.Namespace) -> Output:
    dataset = load_dataset(args.data, names=args.names, target=args.target)
    result = train(
        dataset,
        args.estimator,
        parse_param_args(args.param),
        test_size=args.test_size,
        seed=args.seed,
        stratify=args.stratify,
        scale=args.scale,
    )
    record = _store(args).save_trained(
        result, args.name, format=args.format, compress=args.compress, tags=args.tag or [], note=args.note or ""
    )
    lines = [
        f"Saved {record['name']}:{record['version']} ({record['format']}, {human_bytes(record['size_bytes'])}) "
        f"to {record['uri']}",
        f"  {get_spec(args.estimator).label} on {dataset.source}: held-out accuracy "
        f"{record['metrics']['accuracy']!r} ({result.split.n_test} rows), fit in {result.fit_seconds:.3f}s",
    ]
    lines += [f"  warning: {w}" for w in result.warnings]
    return "\n".join(lines), record


def _list_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="only names containing this text")
    p.add_argument("--tag", help="only versions with this tag")
    p.add_argument("--sort", choices=SORTS, default="created")
    p.add_argument("--limit", type=int, help="at most this many rows")


@command("list", "one row per version, newest first", _list_args)
def _list(args: argparse.Namespace) -> Output:
    store = _store(args)
    records = store.list(name=args.name, tag=args.tag, sort=args.sort, limit=args.limit)
    if not records:
        return f"No models in {store.location}" + (" match" if args.name or args.tag else ""), records
    header = ("MODEL", "ALIASES", "ESTIMATOR", "ACCURACY", "FORMAT", "SIZE", "SKLEARN", "CREATED (UTC)")
    rows = [
        (
            f"{r['name']}:{r['version']}",
            " ".join("@" + a for a in r["aliases"]) or "-",
            (r.get("estimator") or "-").rsplit(".", 1)[-1],
            _fmt_accuracy((r.get("metrics") or {}).get("accuracy")),
            r["format"],
            human_bytes(r["size_bytes"]),
            r["environment"]["packages"].get("scikit-learn", "-"),
            r["created_at"][:19].replace("T", " "),
        )
        for r in records
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    text = "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]
    )
    return text, records


def _ref_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", help="NAME (the latest version), NAME:VERSION or NAME@ALIAS")


@command("show", "a version's metadata and environment check", _ref_arg)
def _show(args: argparse.Namespace) -> Output:
    record = _store(args).get(args.ref)
    compatibility = compare_environment(record.get("environment"))
    metrics = record.get("metrics") or {}
    lines = [
        f"{record['name']}:{record['version']}"
        + (" " + " ".join("@" + a for a in record["aliases"]) if record["aliases"] else ""),
        f"  created      {record['created_at']}",
        f"  estimator    {record.get('estimator')}",
        f"  file         {record['format']}, {human_bytes(record['size_bytes'])}, sha256 {record['sha256']}",
        f"  uri          {record['uri']}",
        f"  accuracy     {metrics.get('accuracy')!r}",
    ]
    claimed = (record.get("claimed_metrics") or {}).get("accuracy")
    if claimed is not None and metrics.get("accuracy") is None:
        lines.append(f"  claimed      accuracy {claimed!r}: claimed by the bundle's sender, not measured here")
    for key in ("precision", "recall", "f1", "roc_auc"):
        if metrics.get(key) is not None:
            lines.append(f"  {key:<12} {metrics[key]:.4f}")
    if record.get("split"):
        s = record["split"]
        lines.append(
            f"  split        test_size={s['test_size']} random_state={s['random_state']} "
            f"stratify={s['stratify']} ({s['n_train']} train / {s['n_test']} test)"
        )
    if record.get("dataset"):
        d = record["dataset"]
        lines.append(f"  data         {d.get('source')} ({d.get('n_rows')} rows, {d.get('n_features')} features)")
        if d.get("fingerprint"):
            lines.append(f"  fingerprint  {d['fingerprint']}")
    lines.append("  params       " + ", ".join(f"{k}={v!r}" for k, v in (record.get("params") or {}).items()))
    lines.append(f"  environment  {compatibility.status}: {compatibility.summary()}")
    lines += [f"  warning      {w}" for w in record.get("warnings") or []]
    if record.get("tags"):
        lines.append("  tags         " + ", ".join(record["tags"]))
    if record.get("note"):
        lines.append(f"  note         {record['note']}")
    return "\n".join(lines), record | {"compatibility": compatibility.to_dict()}


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    _ref_arg(p)
    _data_args(p, required=False)


@command("evaluate", "re-score a version and compare with the record", _evaluate_args)
def _evaluate(args: argparse.Namespace) -> Output:
    evaluation = _store(args).evaluate(args.ref, data=args.data, names=args.names, target=args.target)
    result = evaluation.to_dict()
    verdict = {True: "yes", False: "NO", None: "nothing recorded"}[evaluation.reproduced]
    lines = [
        f"{evaluation.name}:{evaluation.version} re-scored on {evaluation.data} "
        f"({evaluation.metrics['n_samples']} rows)",
        f"  accuracy     {evaluation.accuracy!r}",
        f"  recorded     {evaluation.recorded_accuracy!r}",
        f"  reproduced   {verdict}",
        f"  environment  {evaluation.compatibility.status}: {evaluation.compatibility.summary()}",
    ]
    if evaluation.fingerprint_match is False:
        lines.append("  note         the data differs from the data set the model was trained on")
    lines += [f"  warning      {w}" for w in evaluation.warnings]
    return "\n".join(lines), result


def _predict_args(p: argparse.ArgumentParser) -> None:
    _ref_arg(p)
    p.add_argument("--data", required=True, help="a CSV path or URL (or builtin:NAME)")
    p.add_argument("--names", help="comma-separated column names; given means the CSV has no header")
    p.add_argument("-o", "--output", help="output CSV (default: stdout)")
    p.add_argument("--engine", choices=("sklearn", "onnx"), default="sklearn", help="onnx: run the ONNX export")


@command("predict", "predict on a CSV of raw rows", _predict_args)
def _predict(args: argparse.Namespace) -> Output:
    store = _store(args)
    frame = load_frame(args.data, parse_names(args.names))
    if args.engine == "onnx":
        from core.portable.exports import predict_with_onnx

        record = store.get(args.ref)
        ref = f"{record['name']}:{record['version']}"
        table = predict_with_onnx(store, ref, frame)
    else:
        loaded = store.load(args.ref)
        ref = loaded.ref
        table = predict_table(loaded.model, frame, loaded.record)
    if args.output in (None, "-"):
        if args.json:
            return "", json.loads(table.to_json(orient="records"))
        return table.to_csv(index=False).rstrip("\n"), None
    table.to_csv(args.output, index=False)
    counts = {str(to_jsonable(k)): int(v) for k, v in table["prediction"].value_counts().items()}
    summary = {"ref": ref, "engine": args.engine, "rows": len(table), "output": args.output, "predictions": counts}
    return f"Wrote {len(table)} predictions of {ref} to {args.output} ({counts})", summary


def _alias_args(p: argparse.ArgumentParser) -> None:
    _ref_arg(p)
    p.add_argument("alias")
    p.add_argument("--remove", action="store_true", help="remove the alias instead")


@command("alias", "point NAME@ALIAS at a version", _alias_args)
def _alias(args: argparse.Namespace) -> Output:
    store = _store(args)
    if args.remove:
        name = args.ref.split("@")[0].split(":")[0]
        removed = store.remove_alias(name, args.alias)
        return (f"Removed {name}@{args.alias}" if removed else f"{name} has no alias @{args.alias}"), {
            "removed": removed
        }
    record = store.set_alias(args.ref, args.alias)
    return f"{record['name']}@{args.alias} -> {record['name']}:{record['version']}", record


def _tag_args(p: argparse.ArgumentParser) -> None:
    _ref_arg(p)
    p.add_argument("tag")
    p.add_argument("--remove", action="store_true", help="remove the tag instead")


@command("tag", "add (or --remove) a tag", _tag_args)
def _tag(args: argparse.Namespace) -> Output:
    store = _store(args)
    if args.remove:
        removed = store.remove_tag(args.ref, args.tag)
        return (f"Removed tag {args.tag}" if removed else f"No tag {args.tag} to remove"), {"removed": removed}
    record = store.add_tag(args.ref, args.tag)
    return f"{record['name']}:{record['version']} tags: {', '.join(record['tags'])}", record


def _note_args(p: argparse.ArgumentParser) -> None:
    _ref_arg(p)
    p.add_argument("text")


@command("note", "replace a version's note", _note_args)
def _note(args: argparse.Namespace) -> Output:
    record = _store(args).set_note(args.ref, args.text)
    return f"{record['name']}:{record['version']} note saved", record


def _delete_args(p: argparse.ArgumentParser) -> None:
    _ref_arg(p)
    p.add_argument("--force", action="store_true", help="delete even if aliased (drops the aliases)")


@command("delete", "delete a version's files and row; says how many bytes it freed", _delete_args)
def _delete(args: argparse.Namespace) -> Output:
    store = _store(args)
    row = store.row(args.ref)
    freed = store.delete(args.ref, force=args.force)
    ref = f"{row.name}:{row.version}"
    return f"Deleted {ref}, freed {human_bytes(freed)}", {"deleted": ref, "freed_bytes": freed}


def _estimators_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", nargs="?", help="one catalog key")


@command("estimators", "the estimator catalog and hyperparameter schemas", _estimators_args)
def _estimators(args: argparse.Namespace) -> Output:
    specs = [CATALOG[args.key]] if args.key else list(CATALOG.values())
    if args.key:
        get_spec(args.key)
    lines = []
    for spec in specs:
        lines.append(f"{spec.key:<24} {spec.label}: {spec.description}")
        lines += [f"    {p.name:<20} default {p.default!r:<10} {p.describe()}" for p in spec.params]
    payload = [
        {"key": s.key, "label": s.label, "class": s.class_path, "params": [p.to_dict() for p in s.params]}
        for s in specs
    ]
    return "\n".join(lines), payload


@command("datasets", "the built-in data sets")
def _datasets(args: argparse.Namespace) -> Output:
    names = [BUILTIN_PREFIX + n for n in BUILTIN_DATASETS]
    return "\n".join(names) + "\n(or a CSV path or URL, with --names when it has no header)", names


# -- parser ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The parser for every registered command; ``--store/--json/--debug`` go before or after it."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", default=argparse.SUPPRESS, help="store folder (default: $MODEL_STORE or ./models)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON value")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")

    parser = _Parser(prog="python -m core", description="ModelShelf: train, save, list, reload and re-score models.")
    parser.add_argument("--store", default=None, help="store folder (default: $MODEL_STORE or ./models)")
    parser.add_argument("--json", action="store_true", default=False, help="print one JSON value on stdout")
    parser.add_argument("--debug", action="store_true", default=False, help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name, spec in COMMANDS.items():
        p = sub.add_parser(name, parents=[common], help=spec.help)
        if spec.setup is not None:
            spec.setup(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit code (0 ok, 1 error)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # usage errors and --help: argparse has already printed
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    try:
        text, payload = COMMANDS[args.command].handler(args)
    except ModelShelfError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, MemoryError) as exc:
        if args.debug:
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if args.debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(payload, default=to_jsonable, indent=2))
    elif text:
        print(text)
    return int(getattr(args, "exit_code", 0))  # a command may report a finding with exit code 1 (doctor)


from core import commands_doctor, commands_import  # noqa: E402,F401  (registers commands)
from core.portable import cli as _portable_cli  # noqa: E402,F401  (registers export and env)
