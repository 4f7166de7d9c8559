"""Mixed load: several processes save, delete, move aliases, tag, note and list one store at once.

For ``MODELSHELF_RELIABILITY_SECONDS`` (20 in CI); then the ledger's invariants (every acknowledged
save that was not deleted reads back with its hash, no number came twice) and doctor exits 0. A lost
race is one of ModelShelf's errors, never a raw one. And a busy store: while another process holds
the write lock, a ``list`` still answers at once and a write says "busy" within the busy timeout.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.reliability.support import Ledger, doctor, fork_worker, index_is_sound, read_all, seed_from_env
from tests.reliability.worker import tiny_model

pytestmark = pytest.mark.reliability

WORKERS = 4


def test_mixed_load_keeps_every_acknowledged_save(tmp_path: Path, model: Any, load_seconds: float) -> None:
    pytest.skip("needs store12: doctor")
    run_seed = seed_from_env()
    store_path = tmp_path / "store"
    context = f"mixed load (MODELSHELF_RELIABILITY_SEED={run_seed})"
    started = time.monotonic()
    children = [fork_worker(store_path, run_seed + i, model, seconds=load_seconds) for i in range(WORKERS)]
    outputs = [read_all(fd) for _, fd in children]
    statuses = [os.waitpid(pid, 0)[1] for pid, _ in children]
    elapsed = time.monotonic() - started
    ledger = Ledger()
    ledger.absorb(outputs, context)
    assert statuses == [0] * WORKERS, f"{context}: a worker failed: {[lines[-1:] for lines in outputs]}"
    rows = ledger.check_store(store_path, context)
    index_is_sound(store_path / "index.sqlite")
    code, report = doctor(store_path)
    assert (code, report["problems"]) == (0, []), f"{context}: {report}"
    operations = sum(ledger.acked.values()) + sum(ledger.refused.values())
    print(
        f"\n{WORKERS} workers, {elapsed:.1f} s: {operations} operations ({operations / elapsed:.0f}/s), "
        f"acknowledged {dict(ledger.acked)}, refused {dict(ledger.refused)}, {rows} versions left"
    )
    assert ledger.acked["save"] > 10 and ledger.acked["delete"] > 5, f"{context}: too little ran: {ledger.acked}"


def _cli(store_path: Path, *args: str, busy_s: str = "2") -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "MODELSHELF_BUSY_TIMEOUT_S": busy_s}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "core", "--store", str(store_path), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done, time.monotonic() - started


def test_a_held_write_lock_neither_blocks_reading_nor_hangs_a_writer(tmp_path: Path) -> None:
    pytest.skip("needs store12: busy stores")
    from core.store import Store

    store_path = tmp_path / "store"
    store = Store(store_path)
    store.save(tiny_model()[0], "pima")
    store.close()
    # Time a CLI start-up that needs no lock, to subtract it from the timings below.
    baseline = min(_cli(store_path, "list")[1] for _ in range(2))
    holder = sqlite3.connect(store_path / "index.sqlite", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process's write transaction, never finished
        listed, list_s = _cli(store_path, "list")
        assert listed.returncode == 0 and "pima" in listed.stdout, listed.stderr
        assert list_s < baseline + 1.0, f"list waited {list_s - baseline:.1f} s for a writer"
        tagged, tag_s = _cli(store_path, "tag", "pima:1", "checked")
        assert tagged.returncode == 1, tagged.stdout
        assert "busy" in tagged.stderr and len(tagged.stderr.strip().splitlines()) == 1, tagged.stderr
        # MODELSHELF_BUSY_TIMEOUT_S=2: it waited for the writer, then gave up (with a second's slack).
        assert 1.5 < tag_s - baseline < 3.0, f"a write beside a writer gave up after {tag_s - baseline:.1f} s"
    finally:
        holder.rollback()
        holder.close()
    print(f"\nCLI start-up {baseline:.2f} s; list beside a writer {list_s:.2f} s; busy write ends {tag_s:.2f} s")
