"""Run one command: parse, call its handler, print its text or JSON, turn errors into one line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from core.cli.base import build_parser, handler_of
from core.errors import ModelShelfError

#: ``--verbose``: one line per log record, e.g. ``INFO core.importing: pima.json: JSON parameters, 3.1 kB``.
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


@contextmanager
def _logging_to_stderr(verbose: bool) -> Iterator[None]:
    """While a command runs with ``--verbose``, the ``core`` loggers write INFO and above to stderr."""
    if not verbose:
        yield
        return
    logger = logging.getLogger("core")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _jsonable(value: Any) -> Any:
    """``json.dumps``' fallback for numpy and pandas values in a payload."""
    from core.datasets import to_jsonable  # deferred: pandas, needed only when a payload holds such a value

    return to_jsonable(value)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit code (0 ok, 1 error)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # usage errors and --help: argparse has already printed
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    try:
        with _logging_to_stderr(args.verbose):
            text, payload = handler_of(args.command)(args)
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
        print(json.dumps(payload, default=_jsonable, indent=2))
    elif text:
        print(text)
    return int(getattr(args, "exit_code", 0))  # a command may report a finding with exit code 1 (doctor)
