"""Which file format a save should write, and what a durable save costs beside a raw dump.

``format_*``: a protocol-5 ``pickle.dump``/``pickle.load`` against ``joblib.dump``/``joblib.load``
of the same model to and from a file (interleaved, median), the file's size, and the peak memory
a load allocates (``tracemalloc``: Python's own and numpy's allocations). The store's default
format (``core.formats.DEFAULT_FORMAT``) follows these figures.

``durable_save_*``: ``Store.save`` (file + sha256 + index row + evaluation set, every fsync it
makes) against a raw dump of the store's default format to a file followed by an fsync of the
file and of its folder; ``durable_save_*_no_fsync`` is the same pair on a tmpfs (``/dev/shm``),
where an fsync costs nothing, so what is left is the store's own work.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib

from bench.timing import Samples, time_pair
from core import Store
from core.formats import DEFAULT_FORMAT, PICKLE_PROTOCOL

if TYPE_CHECKING:
    from bench.figures import Bench, Figure

WORKLOADS = ("pima", "forest", "hgb")
TMPFS = Path("/dev/shm")


def _dump(fmt: str, model: Any, path: Path) -> Path:
    with open(path, "wb") as handle:
        if fmt == "pickle":
            pickle.dump(model, handle, protocol=PICKLE_PROTOCOL)
        else:
            joblib.dump(model, handle)
    return path


def _load(fmt: str, path: Path) -> Any:
    with open(path, "rb") as handle:
        return pickle.load(handle) if fmt == "pickle" else joblib.load(handle)


def _peak_bytes(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        fn()
        return float(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


def _fsync_path(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _count_fsyncs(fn: Callable[[], Any]) -> int:
    """How many ``os.fsync`` calls ``fn`` makes (SQLite's own, in C, are not seen)."""
    real, calls = os.fsync, [0]

    def counted(fd: int) -> None:
        calls[0] += 1
        real(fd)

    os.fsync = counted
    try:
        fn()
    finally:
        os.fsync = real
    return calls[0]


def format_figures(bench: Bench) -> None:
    """``format_save_*``, ``format_load_*``, ``format_size_*``, ``format_memory_*``: pickle 5 vs joblib."""
    from bench.figures import Figure

    made: dict[str, tuple[Path, Path]] = {}
    for key in WORKLOADS:

        def files(key: str = key) -> tuple[Path, Path]:
            if key not in made:
                folder = bench.fresh_dir(f"format-{key}")
                model = bench.work(key).model
                made[key] = (_dump("pickle", model, folder / "m.pkl"), _dump("joblib", model, folder / "m.joblib"))
            return made[key]

        def save(fig: Figure, key: str = key) -> None:
            work = bench.work(key)
            fig.workload = work.label
            folder = bench.fresh_dir(f"format-save-{key}")
            try:
                fig.baseline, fig.subject = time_pair(
                    lambda: _dump("joblib", work.model, folder / "m.joblib"),
                    lambda: _dump("pickle", work.model, folder / "m.pkl"),
                    bench.scale.repeats,
                )
            finally:
                shutil.rmtree(folder, ignore_errors=True)

        def load(fig: Figure, key: str = key) -> None:
            fig.workload = bench.work(key).label
            pkl, jbl = files()
            fig.baseline, fig.subject = time_pair(
                lambda: _load("joblib", jbl), lambda: _load("pickle", pkl), bench.scale.repeats
            )

        def size(fig: Figure, key: str = key) -> None:
            fig.workload = bench.work(key).label
            pkl, jbl = files()
            fig.baseline, fig.subject = Samples([float(jbl.stat().st_size)]), Samples([float(pkl.stat().st_size)])

        def memory(fig: Figure, key: str = key) -> None:
            fig.workload = bench.work(key).label
            pkl, jbl = files()
            runs = bench.scale.memory_repeats
            fig.baseline = Samples([_peak_bytes(lambda: _load("joblib", jbl)) for _ in range(runs)])
            fig.subject = Samples([_peak_bytes(lambda: _load("pickle", pkl)) for _ in range(runs)])

        for what, title, measure, unit in (
            ("save", "dump to a file", save, "s"),
            ("load", "load from a file", load, "s"),
            ("size", "file size", size, "B"),
            ("memory", "peak memory allocated by a load (tracemalloc)", memory, "B"),
        ):
            fig = Figure(
                f"format_{what}_{key}",
                f"format: {title}, pickle protocol 5 vs joblib",
                key,
                f"pickle (protocol {PICKLE_PROTOCOL})",
                "joblib",
                kind="at_most",
                unit=unit,
            )
            bench.add(fig, measure)


def durable_figures(bench: Bench) -> None:
    """``durable_save_*``: Store.save vs a raw dump with the same fsyncs; ``*_no_fsync``: on a tmpfs."""
    from bench.figures import Figure, NotAvailable, save_workload

    def measure(fig: Figure, key: str, where: Path | None) -> None:
        if where is not None and not where.is_dir():
            raise NotAvailable(f"no tmpfs at {where}: the no-fsync ratio needs one")
        work = bench.work(key)
        fig.workload = work.label
        folder = Path(tempfile.mkdtemp(prefix="durable-", dir=where)) if where else bench.fresh_dir("durable")
        store = Store(folder / "store")
        raw = folder / "raw"
        raw.mkdir()
        counter = iter(range(10**6))

        def dump() -> Path:
            path = _dump(DEFAULT_FORMAT, work.model, raw / f"model-{next(counter)}")
            _fsync_path(path)
            _fsync_path(raw)
            return path

        # Earlier groups leave hundreds of MB of files to write back: flushed now, so that the
        # writeback does not land in this pair's fsyncs (a journal commit waits for it).
        os.sync()
        try:
            synced = _count_fsyncs(lambda: store.delete(f"bench:{save_workload(store, work, 'bench')['version']}"))
            fig.note = f"Store.save made {synced} os.fsync calls per save, plus SQLite's durable commit; the dump 2"
            fig.baseline, fig.subject = time_pair(
                dump,
                lambda: save_workload(store, work, "bench"),
                bench.scale.repeats,
                baseline_teardown=lambda path: path.unlink(),
                subject_teardown=lambda record: store.delete(f"bench:{record['version']}"),
            )
        finally:
            store.close()
            shutil.rmtree(folder, ignore_errors=True)

    for key in WORKLOADS:
        target = 1.25 if key == "forest" else None
        for suffix, where, title in (
            ("", None, "durable save (every fsync) vs a raw dump + fsync of the file and its folder"),
            ("_no_fsync", TMPFS, "the same pair on a tmpfs, where fsync costs nothing"),
        ):
            fig = Figure(
                f"durable_save_{key}{suffix}",
                title,
                key,
                "Store.save",
                f"{DEFAULT_FORMAT} dump to a file + fsync file and folder",
                kind="at_most",
                target=target if not suffix else None,
            )
            bench.add(fig, lambda f, key=key, where=where: measure(f, key, where))
