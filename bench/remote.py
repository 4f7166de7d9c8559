"""The remote store's figures: PostgreSQL + an S3 server (moto) against a local folder, in one run.

The servers are started here (``bench.backends``, the same code the tests' fixtures use) and
stopped at the end; where PostgreSQL or moto is missing every figure of the group says
"skipped: <why>". The S3 server runs on this machine, so the remote figures measure the store's
request pattern and the database round trips, not a network.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib

from bench.backends import Postgres, S3Server, StartFailed, Unavailable, start_postgres, start_s3
from bench.timing import Samples, time_many, time_pair
from core import Store

if TYPE_CHECKING:
    from bench.figures import Bench, Figure

#: Processes saving at once in the concurrency figure (started before the clock starts).
WRITERS = 8


@dataclass
class Remote:
    """The two servers, and how to open a fresh store on them."""

    postgres: Postgres
    s3: S3Server

    def settings(self) -> dict[str, Any]:
        bucket = self.s3.new_bucket()
        return {
            "index_url": self.postgres.new_database(),
            "artifacts_url": f"s3://{bucket}/shelf",
            "storage_options": self.s3.storage_options(),
        }

    def stop(self) -> None:
        self.s3.stop()
        self.postgres.stop()


def remote_figures(bench: Bench) -> None:
    """Save, load and list local vs remote; a 10,000-version list on PostgreSQL; 8 writers at once."""
    from bench.figures import Figure

    figures = []
    for key, target in (("pima", None), ("forest", 1.5)):
        figures.append(
            (
                Figure(
                    f"remote_save_{key}",
                    "save a version on PostgreSQL + S3 vs a local folder",
                    key,
                    "Store.save (remote)",
                    "Store.save (local folder)",
                    kind="at_most",
                    target=target,
                ),
                lambda f, r, key=key: _measure_pair(bench, f, r, key, "save"),
            )
        )
        figures.append(
            (
                Figure(
                    f"remote_load_{key}",
                    "load a version (sha256 checked) from PostgreSQL + S3 vs a local folder",
                    key,
                    "Store.load (remote)",
                    "Store.load (local folder)",
                    kind="at_most",
                ),
                lambda f, r, key=key: _measure_pair(bench, f, r, key, "load"),
            )
        )
    figures.append(
        (
            Figure(
                "remote_list",
                "list a store holding both models, PostgreSQL vs a local folder",
                "pima + forest",
                "Store.list() (remote)",
                "Store.list() (local folder)",
                kind="at_most",
            ),
            lambda f, r: _measure_pair(bench, f, r, "pima", "list"),
        )
    )
    figures.append(
        (
            Figure(
                "remote_list_page",
                "list: first page of 50 by accuracy + total count, on PostgreSQL",
                "10,000 versions",
                "Store.list(sort='accuracy', limit=50) + Store.count()",
                kind="under",
                target=0.05,
            ),
            lambda f, r: _measure_list_page(bench, f, r),
        )
    )
    figures.append(
        (
            Figure(
                "remote_save_8_writers",
                f"{WRITERS} processes (already started) saving the tutorial model at once vs one save",
                "pima",
                f"{WRITERS} saves at once, wall time",
                "1 save, wall time",
                kind="at_most",
                target=3.0,
            ),
            lambda f, r: _measure_writers(bench, f, r),
        )
    )
    try:
        postgres = start_postgres()
    except (Unavailable, StartFailed) as exc:
        _skip(bench, [f for f, _ in figures], str(exc))
        return
    try:
        remote = Remote(postgres, start_s3())
    except (Unavailable, StartFailed) as exc:
        postgres.stop()
        _skip(bench, [f for f, _ in figures], str(exc))
        return
    try:
        for figure, measure in figures:
            bench.add(figure, lambda f, measure=measure: measure(f, remote))
    finally:
        remote.stop()


def server_cpu(s3: S3Server) -> float | None:
    """CPU seconds the S3 server's process has used so far (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{s3.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_note(before: float | None, after: float | None, saves: int) -> str:
    if before is None or after is None or not saves:
        return ""
    return (
        f"the S3 server (moto, a Python process on the same cores) used {(after - before) / saves * 1e3:.0f} ms "
        "of CPU per remote save (see METHODS.md on what that costs the ratio)"
    )


def _skip(bench: Bench, figures: list[Figure], why: str) -> None:
    for figure in figures:
        figure.unavailable = f"skipped: {why}"
        bench.figures.append(figure)
        bench.log(f"- {figure.key}: {figure.unavailable}")


def _measure_pair(bench: Bench, fig: Figure, remote: Remote, key: str, what: str) -> None:
    """The same operation on a local folder (baseline) and on the remote store (subject), interleaved."""
    from bench.figures import save_workload

    work = bench.work(key)
    fig.workload = work.label if what != "list" else fig.workload
    folder = bench.fresh_dir(f"remote-{what}")
    local, far = Store(folder / "store"), Store(**remote.settings())
    try:
        if what == "save":

            def pair(store: Store) -> Any:
                return lambda: save_workload(store, work, "bench")

            def teardown(store: Store) -> Any:
                return lambda record: store.delete(f"bench:{record['version']}")

            before = server_cpu(remote.s3)
            fig.baseline, fig.subject = time_pair(
                pair(local),
                pair(far),
                bench.scale.repeats,
                baseline_teardown=teardown(local),
                subject_teardown=teardown(far),
            )
            fig.note = _server_note(before, server_cpu(remote.s3), bench.scale.repeats + 1)
            return
        for store in (local, far):
            save_workload(store, work, "bench")
            if what == "list":
                save_workload(store, bench.work("forest"), "bench-forest")
        if what == "load":
            fig.baseline, fig.subject = time_pair(
                lambda: local.load("bench:1"), lambda: far.load("bench:1"), bench.scale.repeats
            )
        else:
            fig.baseline, fig.subject = time_pair(local.list, far.list, max(bench.scale.repeats, 9), warmup=2)
    finally:
        local.close()
        far.close()
        shutil.rmtree(folder, ignore_errors=True)


def _measure_list_page(bench: Bench, fig: Figure, remote: Remote) -> None:
    from bench.figures import populate_index

    n = 10_000 if bench.scale.name != "tiny" else 1_000
    fig.workload = f"{n:,} versions"
    settings = remote.settings()
    store = Store(**settings)
    try:
        populate_index(None, n, bench._template_record(), store=store)
        assert store.count() == n
        fig.subject = time_many(
            lambda: (store.list(sort="accuracy", limit=50), store.count()), max(bench.scale.repeats, 9), warmup=2
        )
    finally:
        store.close()
    fig.note = "synthetic index rows (listing never opens a model file)"


def _writer(settings: dict[str, Any], work_file: str, pipe: Connection) -> None:
    """A saving process: ready once its store is open and the model loaded; one save per "go"."""
    from bench.figures import save_workload

    work = joblib.load(work_file)
    store = Store(**settings)
    try:
        pipe.send("ready")
        while pipe.recv() == "go":
            started = time.perf_counter()
            try:
                record = save_workload(store, work, "bench")
            except Exception as exc:  # noqa: BLE001 - said to the parent, which fails the figure with it
                pipe.send(("error", f"{type(exc).__name__}: {exc}"))
                continue
            pipe.send((record["version"], time.perf_counter() - started))
    finally:
        store.close()


def save_first(store: Store, work_file: str) -> None:
    from bench.figures import save_workload

    save_workload(store, joblib.load(work_file), "bench")


def _rounds(settings: dict[str, Any], work_file: str, repeats: int) -> tuple[Samples, Samples, list[int]]:
    """Wall times of one process saving, and of all ``WRITERS`` saving at once (interleaved rounds
    after a warm-up), with the numbers handed out. The same processes serve both: no start-up twice."""
    primer = Store(**settings)  # the name exists before the clock starts, as in a store in use
    try:
        save_first(primer, work_file)
    finally:
        primer.close()
    context = multiprocessing.get_context("spawn")  # s3fs runs an event-loop thread: no fork
    pipes, processes = [], []
    for _ in range(WRITERS):
        mine, theirs = context.Pipe()
        process = context.Process(target=_writer, args=(settings, work_file, theirs), daemon=True)
        process.start()
        pipes.append(mine)
        processes.append(process)
    numbers: list[int] = []
    walls: dict[int, list[float]] = {1: [], WRITERS: []}

    def round_(saving: list[Connection]) -> float:
        started = time.perf_counter()
        for pipe in saving:
            pipe.send("go")
        answers = [pipe.recv() for pipe in saving]
        failed = [str(text) for version, text in answers if version == "error"]
        if failed:  # a writer's own error, not a broken pipe after it died
            raise RuntimeError(f"a saving process failed: {failed[0]}")
        numbers.extend(version for version, _ in answers)
        return time.perf_counter() - started

    try:
        for pipe in pipes:
            if pipe.recv() != "ready":
                raise RuntimeError("a saving process did not start")
        for i in range(repeats + 1):
            for size in (1, WRITERS):
                took = round_(pipes[:size])
                if i:  # the first round warms each process up
                    walls[size].append(took)
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):  # a process that died already has no pipe to read
                pipe.send("stop")
        for process in processes:
            process.join(30)
    return Samples(walls[1]), Samples(walls[WRITERS]), numbers


def _measure_writers(bench: Bench, fig: Figure, remote: Remote) -> None:
    work = bench.work("pima")
    fig.workload = work.label
    folder = bench.fresh_dir("remote-writers")
    work_file = str(Path(folder) / "work.joblib")
    joblib.dump(work, work_file)
    repeats = max(2, bench.scale.repeats)
    before = server_cpu(remote.s3)
    try:
        one, many, numbers = _rounds(remote.settings(), work_file, repeats)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if sorted(numbers) != list(range(2, len(numbers) + 2)):
        raise RuntimeError(f"{WRITERS} writers got versions {sorted(numbers)}, not 2..{len(numbers) + 1}")
    fig.baseline, fig.subject = one, many
    fig.note = f"the {len(numbers)} concurrent saves got versions 2..{len(numbers) + 1}, none lost or repeated"
    spent = _server_note(before, server_cpu(remote.s3), len(numbers) + 1)
    fig.note += f"; {spent}" if spent else ""
