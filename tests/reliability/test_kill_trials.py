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


def unsettled_by(cut_short: list[str]) -> set[str]:
    """What a cut-short tag, note or alias move may have left in ``version.json`` files but not in the
    index: they are rewritten inside the transaction, before its commit (an alias: any version of
    the name, as ``NAME:*``). A cut-short save or delete leaves a folder that ``--repair`` removes."""
    if not cut_short:
        return set()
    words = cut_short[0].split(" ")
    if words[1] == "alias":
        return {f"{words[2].split(':')[0]}:*"}
    return {words[2]} if words[1] in ("tag", "note") else set()


def rebuilt_the_same(store_path: Path, unsettled: set[str], context: str) -> int:
    """Lose the index and rebuild it from the files: every version, tag, note, alias and next number
    comes back as the index had them, but for the changes that crashes cut short (never acknowledged;
    they may come back applied). Returns how many versions came back with such a change."""
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
    explained = {ref for ref in differ if ref in unsettled or f"{ref.split(':')[0]}:*" in unsettled}
    assert set(differ) == explained, f"{context}: index rebuild changed {differ} (cut short before: {unsettled})"
    return len(differ)


def test_random_kills_lose_no_acknowledged_save(tmp_path: Path, model: Any, trials: int) -> None:
    run_seed = seed_from_env()
    rng = random.Random(run_seed)
    store_path = tmp_path / "store"
    max_delay = calibrate(tmp_path / "calibration", model)
    ledger = Ledger()
    phases: Counter[str] = Counter()  # where the kills landed
    leftovers: Counter[str] = Counter()
    unsettled: set[str] = set()  # versions whose version.json a cut-short change may have rewritten
    resurrected = 0
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
        unsettled |= unsettled_by(cut_short)
        if trial % REBUILD_EVERY == REBUILD_EVERY - 1:
            resurrected += rebuilt_the_same(store_path, unsettled, context)
            unsettled.clear()
            ledger.check_store(store_path, f"{context}, after index rebuild")
    print(f"\n{trials} kills within {max_delay:.2f} s (seed {run_seed}): landed in {dict(phases)}")
    print(f"leftovers found and repaired: {dict(leftovers)}")
    print(f"{trials // REBUILD_EVERY} index rebuilds; versions back with a change a kill cut short: {resurrected}")
    print(f"acknowledged {dict(ledger.acked)}; refused {dict(ledger.refused)}; {len(ledger.alive)} saves alive")
    assert sum(ledger.acked.values()) > trials, "the workers hardly ran: the trials proved nothing"
    assert ledger.acked["save"] and ledger.acked["delete"], f"no save or no delete acknowledged: {ledger.acked}"
