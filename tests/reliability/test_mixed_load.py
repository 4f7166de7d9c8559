"""Mixed load: several processes save, delete, move aliases, tag, note and list one store at once.

For ``MODELSHELF_RELIABILITY_SECONDS`` (20 in CI); then the ledger's invariants (every acknowledged
save that was not deleted reads back with its hash, no number came twice) and doctor exits 0. A lost
race is one of ModelShelf's errors, never a raw one. And a busy store: while another process holds
the write lock, a ``list`` still answers at once and a write says "busy" within the busy timeout.
"""

from __future__ import annotations

import os
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
    rows = len(ledger.check_store(store_path, context))
    index_is_sound(store_path / "index.sqlite")
    code, report = doctor(store_path)
    assert (code, report["problems"]) == (0, []), f"{context}: {report}"
    operations = sum(ledger.acked.values()) + sum(ledger.refused.values())
    print(
        f"\n{WORKERS} workers, {elapsed:.1f} s: {operations} operations ({operations / elapsed:.0f}/s), "
        f"acknowledged {dict(ledger.acked)}, refused {dict(ledger.refused)}, {rows} versions left"
    )
    assert ledger.acked["save"] > 10 and ledger.acked["delete"] > 5, f"{context}: too little ran: {ledger.acked}"


HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.read()
"""


def test_a_held_write_lock_neither_blocks_reading_nor_hangs_a_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.errors import StoreBusyError
    from core.store import Store

    store_path = tmp_path / "store"
    store = Store(store_path)
    store.save(tiny_model()[0], "pima")
    store.close()
    monkeypatch.setenv("MODELSHELF_BUSY_TIMEOUT_S", "2")
    # Another process's write transaction, held until we close its stdin.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(store_path / "index.sqlite")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        started = time.monotonic()
        store = Store(store_path)
        try:
            assert [r["version"] for r in store.list(name="pima")] == [1]
            list_s = time.monotonic() - started
            started = time.monotonic()
            with pytest.raises(StoreBusyError, match="busy"):
                store.add_tag("pima:1", "checked")
            tag_s = time.monotonic() - started
        finally:
            store.close()
        listed = subprocess.run(
            [sys.executable, "-m", "core", "--store", str(store_path), "list"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0 and "pima" in listed.stdout, listed.stderr
    finally:
        holder.communicate("", timeout=30)
    assert list_s < 1.0, f"opening and listing waited {list_s:.1f} s for a writer"
    assert 1.9 < tag_s < 4.0, f"with MODELSHELF_BUSY_TIMEOUT_S=2 a write beside a writer ended after {tag_s:.1f} s"
    print(f"\nbeside a held write lock: open + list {list_s:.3f} s; a write said busy after {tag_s:.2f} s")
