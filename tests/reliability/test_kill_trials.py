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
)

pytestmark = pytest.mark.reliability

# Most kills land inside an operation: a trial's worker lives a random 0-300 ms (each operation
# takes about 10 ms), long enough for a dozen operations, short enough for a hundred trials.
MAX_DELAY_S = 0.3


def test_random_kills_lose_no_acknowledged_save(tmp_path: Path, model: Any, trials: int) -> None:
    pytest.skip("needs store12: doctor")
    run_seed = seed_from_env()
    rng = random.Random(run_seed)
    store_path = tmp_path / "store"
    ledger = Ledger()
    phases: Counter[str] = Counter()  # where the kills landed
    leftovers: Counter[str] = Counter()
    for trial in range(trials):
        seed, delay = rng.randrange(2**32), rng.uniform(0.0, MAX_DELAY_S)
        context = f"trial {trial} (worker seed {seed}, delay {delay:.3f} s; MODELSHELF_RELIABILITY_SEED={run_seed})"
        pid, fd = fork_worker(store_path, seed, model)
        status = kill_after(pid, delay)
        lines = read_all(fd)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"{context}: {lines[-3:]}"
        cut_short = ledger.absorb([lines], context, sequential=True)
        phases[cut_short[0].split(" ")[1] if cut_short else "between operations"] += 1
        if not store_path.exists():
            continue  # killed before the store was created
        leftovers.update(doctor_after_crash(store_path, context))
        ledger.check_store(store_path, context)
        index_is_sound(store_path / "index.sqlite")
    print(f"\n{trials} kills (seed {run_seed}): landed in {dict(phases)}; leftovers {dict(leftovers)}")
    print(f"acknowledged {dict(ledger.acked)}; refused {dict(ledger.refused)}; {len(ledger.alive)} saves alive")
    assert sum(ledger.acked.values()) > trials, "the workers hardly ran: the trials proved nothing"
    assert ledger.acked["save"] and ledger.acked["delete"], f"no save or no delete acknowledged: {ledger.acked}"
