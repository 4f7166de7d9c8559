"""The command line's skeleton: the command table, the parser, and what every command shares.

The table (``COMMANDS``) names each command's module and functions as ``"module:function"``
strings, in the order ``--help`` lists them, so this module imports no command: ``--help``
needs only the names and one-line helps here, and running a command imports its own module
(and so its dependencies) only. A command module holds a handler, ``(args) -> (text,
json_payload)``, and, if it takes arguments, a setup that adds them to its parser.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from core.store import Store

Output = tuple[str, Any]
Handler = Callable[[argparse.Namespace], Output]
Setup = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    """One subcommand: its help line, its handler and its setup, by ``"module:function"`` name."""

    help: str
    handler: str
    setup: str | None = None


#: Every subcommand, in the order ``--help`` lists them (the order they had before this table).
COMMANDS: dict[str, Command] = {
    "train": Command(
        "train a catalog estimator and save it as a new version",
        "core.cli.train:train_command",
        "core.cli.train:train_args",
    ),
    "compare-estimators": Command(
        "train several catalog estimators on one split: a leaderboard; --save one of them",
        "core.cli.workbench:compare_command",
        "core.cli.workbench:compare_args",
    ),
    "list": Command("one row per version, newest first", "core.cli.models:list_command", "core.cli.models:list_args"),
    "show": Command(
        "a version's metadata and environment check", "core.cli.models:show_command", "core.cli.base:ref_arg"
    ),
    "evaluate": Command(
        "re-score a version and compare with the record",
        "core.cli.scoring:evaluate_command",
        "core.cli.scoring:evaluate_args",
    ),
    "predict": Command(
        "predict on a CSV of raw rows", "core.cli.scoring:predict_command", "core.cli.scoring:predict_args"
    ),
    "alias": Command("point NAME@ALIAS at a version", "core.cli.models:alias_command", "core.cli.models:alias_args"),
    "tag": Command("add (or --remove) a tag", "core.cli.models:tag_command", "core.cli.models:tag_args"),
    "note": Command("replace a version's note", "core.cli.models:note_command", "core.cli.models:note_args"),
    "delete": Command(
        "delete a version's files and row; says how many bytes it freed",
        "core.cli.models:delete_command",
        "core.cli.models:delete_args",
    ),
    "estimators": Command(
        "the estimator catalog and hyperparameter schemas",
        "core.cli.train:estimators_command",
        "core.cli.train:estimators_args",
    ),
    "datasets": Command("the built-in data sets", "core.cli.train:datasets_command"),
    "doctor": Command(
        "the sandbox layers and the store's health (exit 1 unless all layers are active and the store is sound)",
        "core.cli.doctor:doctor_command",
        "core.cli.doctor:doctor_args",
    ),
    "index": Command(
        "index rebuild [--force]: make a lost index again from the store's files; index upgrade: to this schema",
        "core.cli.maintenance:index_command",
        "core.cli.maintenance:index_args",
    ),
    "import": Command(
        "add a model file (pickle, joblib, skops), a bundle or JSON parameters as a new version",
        "core.cli.imports:import_command",
        "core.cli.imports:import_args",
    ),
    "export": Command(
        "write a version as onnx, json, bundle, pickle, joblib or skops",
        "core.cli.portable:export_command",
        "core.cli.portable:export_args",
    ),
    "env": Command(
        "the pinned requirements of a version and how this environment differs",
        "core.cli.portable:env_command",
        "core.cli.base:ref_arg",
    ),
}


def resolve(target: str) -> Any:
    """The function a ``"module:function"`` entry of the table names (importing its module now)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def handler_of(name: str) -> Handler:
    """The handler of the command ``name`` (its module is imported here, not before)."""
    handler: Handler = resolve(COMMANDS[name].handler)
    return handler


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 1, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"error: {message} (see '{self.prog} --help')\n")


class _CommandParser(_Parser):
    """A subcommand's parser: its arguments are added when argparse picks it, not before.

    argparse hands the rest of the command line to the chosen subcommand's ``parse_known_args``,
    so only that command's module is imported, and its usage and ``--help`` are the same as if
    every parser had been built up front.
    """

    setup: str | None = None

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:  # argparse's own arguments, passed on
        if self.setup is not None:
            setup: Setup = resolve(self.setup)
            self.setup = None
            setup(self)
        return super().parse_known_args(*args, **kwargs)


def store_of(args: argparse.Namespace) -> Store:
    """The store the flags, the environment or the secrets file name (``core.store.config``), opened."""
    from core.store.config import resolve_store  # deferred: the store pulls in pandas and SQLAlchemy

    found = resolve_store(args.store, args.index_url, args.artifacts_url)
    return found.open()


def _store_args(parser: argparse.ArgumentParser, default: Any) -> None:
    """``--store``, or ``--index-url`` with ``--artifacts-url``: which store a command works on."""
    parser.add_argument("--store", default=default, help="store folder (default: $MODEL_STORE or ./models)")
    parser.add_argument(
        "--index-url", default=default, help="index, a SQLAlchemy URL (with --artifacts-url; $MODELSHELF_INDEX_URL)"
    )
    parser.add_argument(
        "--artifacts-url",
        default=default,
        help="model files, an fsspec URL such as s3://bucket/prefix (with --index-url; $MODELSHELF_ARTIFACTS_URL)",
    )


def data_args(parser: argparse.ArgumentParser, required: bool, target: bool = True) -> None:
    """``--data``, how its first row reads (``csv_header_args``) and ``--target``, the label column."""
    parser.add_argument("--data", required=required, help="builtin:NAME, a CSV path or a CSV URL")
    csv_header_args(parser)
    if target:
        parser.add_argument(
            "--target", help="the label column (default: a built-in's own, e.g. class for builtin:pima; else the last)"
        )


def csv_header_args(parser: argparse.ArgumentParser) -> None:
    """``--names``, ``--header``, ``--no-header`` (one at most): every command taking ``--data`` has them.

    Without one, a first row that looks like data is refused, never guessed (``core.csvheader``).
    """
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--names", help="comma-separated column names; given means the CSV's first row is data")
    group.add_argument(
        "--header", dest="header", action="store_const", const="first-row", help="the CSV's first row is column names"
    )
    group.add_argument(
        "--no-header",
        dest="header",
        action="store_const",
        const="none",
        help="the CSV's first row is data: columns column_1 ... column_N, the target the last",
    )
    parser.set_defaults(header="auto")


def duplicate_args(p: argparse.ArgumentParser) -> None:
    """``--no-duplicates``: bytes identical to a version of the name are not stored again (``train``, ``import``)."""
    p.add_argument(
        "--no-duplicates",
        dest="on_duplicate",
        action="store_const",
        const="refuse",
        default="keep",
        help="store nothing when the name already has a version with the same bytes (sha256); exit 0 naming it",
    )


def duplicate_line(record: Any) -> str | None:
    """What a save says about an identical earlier version: refused (nothing stored) or kept anyway."""
    same = record.get("duplicate_of")
    if same is None:
        return None
    if record.get("stored") is False:
        return f"Not stored: identical to {same} (same sha256); nothing was changed"
    return f"  identical to {same} (same sha256); --no-duplicates stores nothing in that case"


def ref_arg(p: argparse.ArgumentParser) -> None:
    """The positional ``ref`` of a command about one version."""
    p.add_argument("ref", help="NAME (the latest version), NAME:VERSION or NAME@ALIAS")


def build_parser() -> argparse.ArgumentParser:
    """The parser for every command in the table; the store flags and ``--json/--debug/--verbose`` go before or
    after it."""
    common = argparse.ArgumentParser(add_help=False)
    _store_args(common, argparse.SUPPRESS)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON value")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    common.add_argument(
        "--verbose", action="store_true", default=argparse.SUPPRESS, help="log what core does to stderr"
    )

    parser = _Parser(prog="python -m core", description="ModelShelf: train, save, list, reload and re-score models.")
    _store_args(parser, None)
    parser.add_argument("--json", action="store_true", default=False, help="print one JSON value on stdout")
    parser.add_argument("--debug", action="store_true", default=False, help="show tracebacks on errors")
    parser.add_argument(
        "--verbose", action="store_true", default=False, help="log what core does to stderr, one line each"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_CommandParser)
    for name, spec in COMMANDS.items():
        # typeshed wants parents of the subparsers' own class; argparse takes any parser.
        p = sub.add_parser(name, parents=[common], help=spec.help)  # type: ignore[list-item]
        p.setup = spec.setup
    return parser
