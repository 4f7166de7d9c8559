"""``python -m core``: the store from the command line.

Every command takes ``--store PATH`` (default ``$MODEL_STORE``, else ``./models``) and ``--json``
(one JSON value on stdout and nothing else there). Errors: exit code 1 and one line on stderr;
``--debug`` shows the traceback instead, with the chain of causes behind it. ``--verbose`` logs
what core does to stderr (the ``core`` loggers at INFO, one line each).

``base`` holds the command table and what commands share; ``run`` parses and runs one command;
each other module holds the commands of one theme, imported only when one of them runs.
"""

from core.cli.run import main

__all__ = ["main"]
