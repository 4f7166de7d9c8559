"""Take turns: short pieces of work run one after another instead of interleaved, and a long one
never holds the others up for more than its budget.

Why: a Streamlit server runs every session's script in a thread of one process, under one GIL.
Eight visitors whose page runs start together are served by time slices (each run lets go of the
GIL at every message it sends), so all eight finish near the end, at about eight times one
run's CPU. Run in turn, the first finishes after one run, the next after two, and the median
visitor waits about half as long; the last waits no longer than before. A turn that outlasts
``budget_s`` (a model being fitted, a slow store) stops being waited for: the others go ahead
interleaved, as they would without the gate.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator


class TurnGate:
    """One turn at a time; a waiter waits while the current turn is younger than ``budget_s``."""

    def __init__(self, budget_s: float = 0.5) -> None:
        self.budget_s = budget_s
        self._changed = threading.Condition()
        self._since: float | None = None  # when the current turn started; None: nobody's turn

    @contextlib.contextmanager
    def turn(self) -> Iterator[bool]:
        """Wait for a turn (yields True) or, past the current turn's budget, go ahead without one (False)."""
        mine = False
        with self._changed:
            while self._since is not None:
                overdue = self._since + self.budget_s - time.monotonic()
                if overdue <= 0:
                    break  # the current turn is a long one: do not wait behind it
                self._changed.wait(overdue)
            if self._since is None:
                self._since, mine = time.monotonic(), True
        try:
            yield mine
        finally:
            if mine:
                with self._changed:
                    self._since = None
                    self._changed.notify()
