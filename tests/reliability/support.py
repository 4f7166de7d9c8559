"""What every reliability test checks after a kill, a race or a fault: the ledger of acknowledged work.

A ``Ledger`` reads the workers' BEGIN/ACK lines (see ``worker``) and the store itself, and fails on
what must never happen: an acknowledged save that is missing or whose bytes changed, a version
number handed out twice, an index that does not open. ``doctor`` runs ``python -m core doctor``'s
check on a store and returns its exit code and JSON report.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

# What a crash may leave behind by design: files nobody acknowledged. Everything else is a bug.
#: What a kill may leave: a folder no row points at, a half-written part file, a metadata file
#: rewritten for a change whose commit never came (all three repaired by `doctor --repair`).
SAFE_LEFTOVERS = {"files_without_row", "stale_temp", "metadata_stale"}

Report = tuple[int, dict[str, Any]]


def doctor(store_path: Path, *, verify: bool = False, repair: bool = False, stale_after_s: float = 3600.0) -> Report:
    """What ``python -m core doctor --store-only --json`` finds, called in process (the CLI costs 2 s
    of start-up a call): (its exit code, its JSON report)."""
    from core.store.checkup import check_store

    found = check_store(str(store_path), verify=verify, repair=repair, stale_after_s=stale_after_s)
    return (0 if found.ok else 1), found.as_dict()


def cli_doctor(store_path: Path, *flags: str) -> Report:
    """``python -m core doctor --store-only --json [flags]`` on this store: (exit code, report)."""
    done = subprocess.run(
        [sys.executable, "-m", "core", "--store", str(store_path), "doctor", "--store-only", "--json", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        printed = f"{done.stdout!r} {done.stderr!r}"
        raise AssertionError(f"doctor printed no JSON (exit {done.returncode}): {printed}") from exc
    return done.returncode, report


def kinds(report: dict[str, Any]) -> Counter[str]:
    return Counter(problem["kind"] for problem in report["problems"])


def age(path: Path, seconds: float) -> None:
    """Set a file's, or a folder's and everything in it, times ``seconds`` into the past."""
    past = time.time() - seconds
    for each in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(each, (past, past), follow_symlinks=False)


def doctor_after_crash(store_path: Path, context: str) -> Counter[str]:
    """Doctor finds nothing but safe leftovers, ``--repair`` clears those and a second doctor exits 0.

    No process runs on the store after a kill, so every leftover counts, however young
    (``--stale-after 0``; by default repair spares younger ones: they may be a save still running).
    """
    code, report = doctor(store_path, stale_after_s=0)
    found = kinds(report)
    unsafe = set(found) - SAFE_LEFTOVERS
    assert not unsafe, f"{context}: doctor found {dict(found)}: {report['problems']}"
    assert code == (1 if found else 0), f"{context}: doctor exit {code} with problems {dict(found)}"
    if found:
        code, report = doctor(store_path, repair=True, stale_after_s=0)
        assert code == 0 and len(report["repaired"]) == sum(found.values()), f"{context}: repair left {report}"
    code, report = doctor(store_path)
    assert (code, report["pending"]) == (0, []), f"{context}: after --repair doctor still finds {report}"
    return found


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def index_is_sound(index_file: Path) -> None:
    """SQLite's own check of the index file (pages, b-trees, foreign keys)."""
    with contextlib.closing(sqlite3.connect(f"file:{index_file}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


@dataclass
class Ledger:
    """Every version the suite ever saw, and the acknowledged saves that must still be there."""

    seen: dict[str, str] = field(default_factory=dict)  # ref -> nonce of the version that had that number
    alive: dict[str, str] = field(default_factory=dict)  # ref -> sha256 of acknowledged, undeleted saves
    highest: dict[str, int] = field(default_factory=dict)  # name -> highest number ever seen
    acked: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    raw: list[str] = field(default_factory=list)
    unloaded: set[str] = field(default_factory=set)  # acknowledged saves not yet loaded back
    lines: list[str] = field(default_factory=list)  # every worker's lines, "w<worker> <line>"

    def about(self, ref: str) -> list[str]:
        """The lines that name ``ref``, for a failure message."""
        return [line for line in self.lines if ref in line.split(" ")][-12:]

    def _sighted(self, ref: str, nonce: str | None, context: str) -> None:
        earlier = self.seen.setdefault(ref, nonce or "")
        assert earlier == (nonce or ""), f"{context}: {ref} was handed out twice (versions {earlier} and {nonce})"
        name, version = ref.rsplit(":", 1)
        self.highest[name] = max(self.highest.get(name, 0), int(version))

    def absorb(self, outputs: list[list[str]], context: str, sequential: bool = False) -> list[str]:
        """Take in the lines of workers that ran at the same time; returns the operations cut short.

        ``sequential``: one worker alone on the store, so each new number must be above every number
        that name ever had (a counter that is never lowered); with several, each worker's own saves
        of one name still rise.
        """
        cut_short: list[str] = []
        deleted: set[str] = set()
        for worker, lines in enumerate(outputs):
            begun: str | None = None
            mine: dict[str, int] = {}
            self.lines += [f"w{worker} {line}" for line in lines]
            for line in lines:
                words = line.split(" ", 4)
                if words[0] == "BEGIN":
                    begun = line
                elif words[0] == "ACK":
                    begun = None
                    op = words[1]
                    self.acked[op] += 1
                    if op == "save":
                        ref, nonce, sha = words[2], words[3], words[4]
                        name, version = ref.rsplit(":", 1)
                        floor = self.highest.get(name, 0) if sequential else mine.get(name, 0)
                        assert int(version) > floor, f"{context}: {ref} saved after {name}:{floor} (a number reused)"
                        mine[name] = int(version)
                        self._sighted(ref, nonce, context)
                        self.alive[ref] = sha
                        self.unloaded.add(ref)
                    elif op == "delete":
                        deleted.add(words[2])
                elif words[0] in ("REFUSED", "RAW"):
                    begun = None
                    self.refused[words[1]] += 1
                    if words[0] == "RAW":
                        self.raw.append(line)
                elif words[0] == "CRASH":
                    self.raw.append(line)
            if begun is not None:
                cut_short.append(begun)
                words = begun.split(" ")
                if words[1] == "delete":  # may or may not have happened
                    deleted.add(words[2])
        for ref in deleted:
            self.alive.pop(ref, None)
        assert not self.raw, f"{context}: errors that are not ModelShelf's: {self.raw[:5]}"
        return cut_short

    def check_store(self, store_path: Path, context: str) -> dict[str, Any]:
        """The index opens, every row's file is there, every acknowledged save reads back with its hash.

        Also records every version in the index (a save killed after its commit but before its ACK
        still took a number that must never come back). Returns the records by ref.
        """
        from core.store import Store

        store = Store(store_path)
        try:
            records = store.list()
            present = {f"{r['name']}:{r['version']}": r for r in records}
            for ref, record in present.items():
                self._sighted(ref, record.get("nonce"), context)
                model_file = store_path / record["path"]
                assert model_file.is_file(), f"{context}: {ref} has a row but no file {record['path']}"
                assert model_file.stat().st_size == record["size_bytes"], f"{context}: {ref} size changed"
            for ref, sha in self.alive.items():
                assert ref in present, f"{context}: acknowledged save {ref} is missing: {self.about(ref)}"
                record = present[ref]
                assert record["sha256"] == sha, f"{context}: {ref} is another version than the one acknowledged"
                assert file_sha256(store_path / record["path"]) == sha, f"{context}: {ref}'s bytes changed"
                evaluation = record.get("evaluation_set")
                if evaluation:
                    kept = store_path / evaluation["path"]
                    assert file_sha256(kept) == evaluation["sha256"], f"{context}: {ref}'s evaluation set changed"
            for ref in sorted(self.unloaded & set(self.alive)):  # each acknowledged save loaded once, in full
                loaded = store.load(ref, verify="full")
                assert loaded.ref == ref and hasattr(loaded.model, "predict"), f"{context}: {ref} loaded as {loaded}"
            self.unloaded.clear()
        finally:
            store.close()
        return present


def store_state(store_path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """Each version's bytes, tags, note and aliases, and the marker's high-water marks (next numbers)."""
    from core.store import Store

    store = Store(store_path)
    try:
        versions = {
            f"{r['name']}:{r['version']}": (r["sha256"], sorted(r["tags"]), r["note"], sorted(r["aliases"]))
            for r in store.list()
        }
    finally:
        store.close()
    marker = json.loads((store_path / "modelshelf-store.json").read_text())
    return versions, {str(k): int(v) for k, v in marker["high_water"].items()}


def read_all(fd: int) -> list[str]:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode().splitlines()


def fork_worker(store_path: Path, seed: int, model: Any, **options: Any) -> tuple[int, int]:
    """Fork a worker (see ``worker.run``) on the store: (pid, descriptor to read its lines from).

    Forked from a process that has scikit-learn loaded, so a trial costs milliseconds, not the two
    seconds of a fresh interpreter; the child leaves by ``os._exit`` and never returns into pytest.
    """
    from tests.reliability.worker import run

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 0
        try:
            os.close(read_end)
            run(str(store_path), seed, write_end, model, **options)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent as a line
            os.write(write_end, f"CRASH {type(exc).__name__} {exc}\n".encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    return pid, read_end


def kill_after(pid: int, delay: float) -> int:
    """SIGKILL the child after ``delay`` seconds (or reap it if it already ended); returns its status."""
    time.sleep(delay)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]


def seed_from_env(rng_seed: int | None = None) -> int:
    """``MODELSHELF_RELIABILITY_SEED`` replays a run; otherwise a fresh seed, printed on failure."""
    value = os.environ.get("MODELSHELF_RELIABILITY_SEED")
    if value:
        return int(value)
    return rng_seed if rng_seed is not None else int.from_bytes(os.urandom(4), "big")
