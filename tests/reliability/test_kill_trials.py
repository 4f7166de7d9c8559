"""Kill trials: a worker saving, deleting, moving aliases, tagging and noting is SIGKILLed at random.

One store lives through every trial (so numbers freed by deletes in one trial would be handed out
again in the next). After each kill: doctor finds nothing but the leftovers a crash may leave and
``--repair`` clears them, every acknowledged save reads back with its hash, no version number was
ever handed out twice, the index opens and passes SQLite's integrity check.
``MODELSHELF_RELIABILITY_TRIALS`` sets the count (100 in CI); a failure names the run's seed, and
``MODELSHELF_RELIABILITY_SEED=<seed>`` replays the same operations and delays (the kill's exact
instant depends on the machine).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.support import (
    Ledger,
    doctor_after_crash,
    fork_worker,
    index_is_sound,
    kill_after,
    read_all,
    seed_from_env,
    store_state,
)

pytestmark = pytest.mark.reliability

CALIBRATION_OPS = 10
REBUILD_EVERY = 10  # every tenth trial, the index is lost and rebuilt from the files


def calibrate(store_path: Path, model: Any) -> float:
    """How long a worker takes to open the store and run ten operations on this machine (fsyncs cost
    milliseconds on one disk, tens on another): kills are spread over one and a half times that."""
    started = time.monotonic()
    pid, fd = fork_worker(store_path, 0, model, max_ops=CALIBRATION_OPS)
    lines = read_all(fd)
    assert os.waitpid(pid, 0)[1] == 0 and lines[-1] == f"DONE {CALIBRATION_OPS}", lines[-3:]
    return 1.5 * (time.monotonic() - started)


def phase(cut_short: list[str], found: Counter[str], present: dict[str, Any]) -> str:
    """Where a kill landed: between operations, in which one, and for a save how far it got."""
    if not cut_short:
        return "between operations"
    words = cut_short[0].split(" ")
    if words[1] != "save":
        return words[1]
    if any(record.get("nonce") == words[3] for record in present.values()):
        return "save: committed, not acknowledged"
    if found["files_without_row"]:
        return "save: its folder made, not committed"
    return "save: a file half written" if found["stale_temp"] else "save: nothing written yet"


def rebuilt_the_same(store_path: Path, context: str) -> None:
    """Lose the index and rebuild it from the files: every version, tag, note, alias and next number
    comes back as the index had them (a change a crash cut short after rewriting ``version.json``,
    before its commit, was found by ``doctor`` as ``metadata_stale`` and rewritten by ``--repair``)."""
    from core.store.rebuild import rebuild_index

    before, high_water = store_state(store_path)
    for index_file in store_path.glob("index.sqlite*"):
        index_file.unlink()
    rebuild_index(str(store_path))
    after, high_water_after = store_state(store_path)
    assert set(after) == set(before), f"{context}: index rebuild changed the versions {set(before) ^ set(after)}"
    assert high_water_after == high_water, (
        f"{context}: rebuild moved the next numbers {high_water} -> {high_water_after}"
    )
    differ = {ref: (before[ref], after[ref]) for ref in before if before[ref] != after[ref]}
    assert not differ, f"{context}: index rebuild changed {differ}"


def test_random_kills_lose_no_acknowledged_save(tmp_path: Path, model: Any, trials: int) -> None:
    run_seed = seed_from_env()
    rng = random.Random(run_seed)
    store_path = tmp_path / "store"
    max_delay = calibrate(tmp_path / "calibration", model)
    ledger = Ledger()
    phases: Counter[str] = Counter()  # where the kills landed
    leftovers: Counter[str] = Counter()
    for trial in range(trials):
        seed, delay = rng.randrange(2**32), rng.uniform(0.0, max_delay)
        context = f"trial {trial} (worker seed {seed}, delay {delay:.3f} s; MODELSHELF_RELIABILITY_SEED={run_seed})"
        pid, fd = fork_worker(store_path, seed, model)
        status = kill_after(pid, delay)
        lines = read_all(fd)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"{context}: {lines[-3:]}"
        cut_short = ledger.absorb([lines], context, sequential=True)
        if not (store_path / "modelshelf-store.json").exists():
            phases["before the store existed"] += 1
            continue
        found = doctor_after_crash(store_path, context)
        leftovers.update(found)
        phases[phase(cut_short, found, ledger.check_store(store_path, context))] += 1
        index_is_sound(store_path / "index.sqlite")
        if trial % REBUILD_EVERY == REBUILD_EVERY - 1:
            rebuilt_the_same(store_path, context)
            ledger.check_store(store_path, f"{context}, after index rebuild")
    print(f"\n{trials} kills within {max_delay:.2f} s (seed {run_seed}): landed in {dict(phases)}")
    print(f"leftovers found and repaired: {dict(leftovers)}")
    print(f"{trials // REBUILD_EVERY} index rebuilds, each the same as the index it replaced")
    print(f"acknowledged {dict(ledger.acked)}; refused {dict(ledger.refused)}; {len(ledger.alive)} saves alive")
    assert sum(ledger.acked.values()) > trials, "the workers hardly ran: the trials proved nothing"
    assert ledger.acked["save"] and ledger.acked["delete"], f"no save or no delete acknowledged: {ledger.acked}"
