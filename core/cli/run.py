"""Run one command: parse, call its handler, print its text or JSON, turn errors into one line."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
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


def error_line(exc: BaseException) -> str:
    """The one line the command line prints for a failure: ModelShelf's own message as it is, the
    first line of anything else (SQLAlchemy adds SQL and a link below), never a traceback."""
    if isinstance(exc, ModelShelfError):
        text = " ".join(str(exc).split())
        return f"error: {text or type(exc).__name__}"
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" holding {exc.filename}" if exc.filename else ""
        return f"error: no space left on the device{where}: the command did not finish"
    if isinstance(exc, (OSError, MemoryError)):
        return f"error: {type(exc).__name__}: {first}"
    return f"error: unexpected {type(exc).__name__}: {first} (run with --debug for details)"


def _print_quietly(text: str) -> int:
    """Print to stdout; a reader that stopped reading (``| head -1``) ends the command quietly.

    The recipe of Python's ``signal`` docs: the rest of the output goes to devnull, so the flush at
    exit finds no broken pipe either; exit 0, since the command itself did its work.
    """
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit code (0 ok, 1 error)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # usage errors and --help: argparse has already printed
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    try:
        with _logging_to_stderr(args.verbose):
            text, payload = handler_of(args.command)(args)
    except Exception as exc:
        if args.debug:
            raise
        with contextlib.suppress(BrokenPipeError):  # stderr closed as well: nobody left to tell
            print(error_line(exc), file=sys.stderr)
        return 1
    if args.json:
        _print_quietly(json.dumps(payload, default=_jsonable, indent=2))
    elif text:
        _print_quietly(text)
    return int(getattr(args, "exit_code", 0))  # a command may report a finding with exit code 1 (doctor)
