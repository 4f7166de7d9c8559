"""The race issue 12 found: a save of ``pima`` while the latest ``pima`` version is being deleted.

Two processes meet at a barrier before each of 1,000 rounds; then one saves and the other deletes
the latest version at the same instant. Before the fix the save could take the number being freed,
move its files into the folder being removed and report success: an acknowledged row without its
file. Now no acknowledged save may end without its file or with other bytes, no number may come
twice, and doctor must find nothing at all (no process was killed, so not even leftovers).
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.support import Ledger, doctor, index_is_sound, read_all
from tests.reliability.worker import Acks

pytestmark = pytest.mark.reliability

ROUNDS = 1000


def _race(role: str, store_path: str, model: Any, barrier: Any, fd: int) -> None:
    from core.errors import ModelShelfError
    from core.store import Store

    acks = Acks(fd)
    store = Store(store_path)
    fitted, X_test, y_test = model
    try:
        for _ in range(ROUNDS):
            barrier.wait(timeout=60)
            try:
                if role == "save":
                    nonce = uuid.uuid4().hex
                    acks.line("BEGIN", "save", "pima", nonce)
                    record = store.save(fitted, "pima", X_test=X_test, y_test=y_test, extra={"nonce": nonce})
                    acks.line("ACK", "save", f"pima:{record['version']}", nonce, record["sha256"])
                else:
                    versions = store.versions("pima")
                    if versions:
                        acks.line("BEGIN", "delete", f"pima:{versions[0]}")
                        store.delete(f"pima:{versions[0]}", force=True)
                        acks.line("ACK", "delete", f"pima:{versions[0]}")
            except ModelShelfError as exc:  # the saver's version deleted between lookup and delete
                acks.line("REFUSED", role, type(exc).__name__, str(exc).replace("\n", " | "))
            except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails with it
                acks.line("RAW", role, type(exc).__name__, str(exc).replace("\n", " | "))
    finally:
        store.close()


def _child(role: str, store_path: Path, model: Any, barrier: Any, fd: int) -> None:
    code = 0
    try:
        _race(role, str(store_path), model, barrier, fd)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as a line
        os.write(fd, f"CRASH {type(exc).__name__} {exc}\n".encode())
        code = 1
    finally:
        os._exit(code)


def test_save_racing_delete_of_the_latest_never_loses_a_save(tmp_path: Path, model: Any) -> None:
    store_path = tmp_path / "store"
    barrier = multiprocessing.get_context("fork").Barrier(2)
    children = []
    for role in ("save", "delete"):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            _child(role, store_path, model, barrier, write_end)
        os.close(write_end)
        children.append((pid, read_end))
    outputs = [read_all(fd) for _, fd in children]
    for pid, _ in children:
        os.waitpid(pid, 0)
    ledger = Ledger()
    ledger.absorb(outputs, "save/delete race")
    rows = len(ledger.check_store(store_path, "save/delete race"))
    index_is_sound(store_path / "index.sqlite")
    code, report = doctor(store_path)
    assert (code, report["problems"]) == (0, []), report
    saved, deleted = ledger.acked["save"], ledger.acked["delete"]
    print(f"\n{ROUNDS} rounds: {saved} saves, {deleted} deletes, {rows} versions left, refused {dict(ledger.refused)}")
    assert saved == ROUNDS, f"only {saved} of {ROUNDS} saves were acknowledged: {ledger.refused}"
    assert deleted > ROUNDS // 2, f"the deleter rarely raced: {deleted} deletes"


def test_a_delete_that_lost_its_version_never_hits_the_next_one(tmp_path: Path, model: Any) -> None:
    """The interleaving the mixed load found, made on purpose: B looks pima:2 up to delete it; C deletes
    it first; A saves iris:1 (SQLite gives it pima:2's freed row id); then B's delete goes on."""
    from core.errors import NotFoundError
    from core.store import Store

    store_path = tmp_path / "store"
    saver, deleter, other = Store(store_path), Store(store_path), Store(store_path)
    try:
        saver.save(model[0], "pima")
        saver.save(model[0], "pima")
        look_up = deleter._owned_row

        def then_others_move(ref: Any, owner: Any) -> Any:
            row = look_up(ref, owner)
            other.delete("pima:2")
            saved = saver.save(model[0], "iris")
            assert saved["version"] == 1
            return row

        deleter._owned_row = then_others_move  # type: ignore[method-assign]
        with pytest.raises(NotFoundError):
            deleter.delete("pima:2")
        assert [(r["name"], r["version"]) for r in saver.list()] == [("iris", 1), ("pima", 1)]
    finally:
        for store in (saver, deleter, other):
            store.close()
