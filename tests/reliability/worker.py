"""The process the reliability suite kills or races: random store operations, each one acknowledged.

Before an operation it writes ``BEGIN <op> <ref>``, after the store returned ``ACK <op> <ref> ...``,
one line per ``os.write`` on an unbuffered descriptor (so what the parent reads was acknowledged
before any kill). The parent forks it from a process that already imported scikit-learn (a fork
costs milliseconds, a fresh interpreter two seconds); ``python -m tests.reliability.worker STORE SEED``
replays the same sequence by hand from the seed a failure message prints.
"""

from __future__ import annotations

import os
import random
import sys
import time
import uuid
from typing import Any

from core.errors import ModelShelfError

NAMES = ("pima", "iris")
ALIASES = ("production", "staging")
TAGS = ("good", "bad", "checked")
# Weights: saves and deletes most (the race the issue found), alias moves, tags, notes, lists.
OPS = {"save": 5, "delete": 3, "alias": 2, "tag": 1, "note": 1, "list": 1}


def tiny_model(seed: int = 0) -> tuple[Any, Any, Any]:
    """A LogisticRegression fitted on 50 rows, with 20 held-out rows (kilobytes per version)."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.random((70, 3)), columns=["a", "b", "c"])
    y = pd.Series((X["a"] + rng.normal(0, 0.2, 70) > 0.5).astype(int), name="target")
    model = LogisticRegression().fit(X[:50], y[:50])
    return model, X[50:], y[50:]


class Acks:
    """Writes the BEGIN/ACK protocol to a file descriptor, one unbuffered write per line."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def line(self, *words: object) -> None:
        os.write(self.fd, (" ".join(str(w) for w in words) + "\n").encode())


def one_op(store: Any, rng: random.Random, acks: Acks, model: tuple[Any, Any, Any], ops: dict[str, int]) -> str:
    """Run one random operation; returns its name. ModelShelf's errors (a race lost) are fine."""
    op = rng.choices(list(ops), weights=list(ops.values()))[0]
    name = rng.choice(NAMES)
    try:
        if op == "save":
            nonce = uuid.uuid4().hex
            acks.line("BEGIN", op, name, nonce)
            fitted, X_test, y_test = model
            keep = rng.random() < 0.5  # half keep an evaluation set: a second file per version
            record = store.save(
                fitted,
                name,
                X_test=X_test if keep else None,
                y_test=y_test if keep else None,
                metrics={"accuracy": 0.5},
                extra={"nonce": nonce},
            )
            acks.line("ACK", op, f"{name}:{record['version']}", nonce, record["sha256"])
            return op
        if op == "list":
            acks.line("BEGIN", op, name)
            rows = store.list(name=name)
            acks.line("ACK", op, name, len(rows))
            return op
        versions = store.versions(name)
        if not versions:
            return "idle"
        # Deletes mostly hit the latest version: the one whose number a racing save could take again.
        version = versions[0] if op == "delete" and rng.random() < 0.8 else rng.choice(versions)
        ref = f"{name}:{version}"
        if op == "delete":
            acks.line("BEGIN", op, ref)
            store.delete(ref, force=True)
            acks.line("ACK", op, ref)
        elif op == "alias":
            alias = rng.choice(ALIASES)
            acks.line("BEGIN", op, ref, alias)
            store.set_alias(ref, alias)
            acks.line("ACK", op, ref, alias)
        elif op == "tag":
            tag = rng.choice(TAGS)
            acks.line("BEGIN", op, ref, tag)
            store.add_tag(ref, tag)
            acks.line("ACK", op, ref, tag)
        else:
            note = f"note-{uuid.uuid4().hex[:8]}"
            acks.line("BEGIN", op, ref, note)
            store.set_note(ref, note)
            acks.line("ACK", op, ref, note)
    except ModelShelfError as exc:  # lost a race with another process: one clear line, nothing changed
        acks.line("REFUSED", op, type(exc).__name__, str(exc).replace("\n", " | "))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test with it
        acks.line("RAW", op, type(exc).__name__, str(exc).replace("\n", " | "))
    return op


def run(
    store_path: str,
    seed: int,
    fd: int,
    model: tuple[Any, Any, Any],
    *,
    seconds: float = 3600.0,
    max_ops: int | None = None,
    ops: dict[str, int] | None = None,
) -> int:
    """Operations until killed, ``seconds`` pass or ``max_ops`` are done; returns how many ran."""
    from core.store import Store

    rng = random.Random(seed)
    acks = Acks(fd)
    store = Store(store_path)
    done = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and (max_ops is None or done < max_ops):
            one_op(store, rng, acks, model, ops or OPS)
            done += 1
    finally:
        store.close()
    acks.line("DONE", done)
    return done


if __name__ == "__main__":
    # Replay: python -m tests.reliability.worker STORE SEED [MAX_OPS]
    max_ops = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    run(sys.argv[1], int(sys.argv[2]), sys.stdout.fileno(), tiny_model(), max_ops=max_ops)
