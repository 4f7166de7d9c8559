"""Each figure of the benchmark: what is timed, against which baseline, and the target.

A figure whose API is not on this branch (or whose peer is not installed) is reported as
"not available: <reason>" instead of stopping the run; a figure that fails is reported as
"failed: <error>" (the tests check that none does).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from bench import workloads
from bench.cli import cli_figures
from bench.dash import dash_figures
from bench.formats import durable_figures, format_figures
from bench.remote import remote_figures
from bench.timing import Samples, time_many, time_pair
from bench.workloads import Scale, Workload
from core import Store
from core.frames import as_frame
from core.store.artifacts import SETTLE_NS

#: Seconds a model file must have been left alone before its stat may vouch for its hash
#: (core.store.artifacts.SETTLE_NS): the benchmark waits that long after saving before timing loads.
SETTLE_SECONDS = SETTLE_NS / 1e9 + 0.1


def _dumper(model: Any, folder: Path) -> Callable[[], Path]:
    """``joblib.dump`` of ``model`` to a new file in ``folder`` per call (the save figures' baseline)."""
    counter = iter(range(10**6))

    def dump() -> Path:
        path = folder / f"model-{next(counter)}.joblib"
        joblib.dump(model, path)
        return path

    return dump


@dataclass
class Figure:
    """One row of the report.

    ``kind`` says how the ratio reads: ``at_most`` (subject / baseline, lower is better),
    ``faster`` (baseline / subject: how many times faster), ``under`` (an absolute limit in
    seconds, no baseline) or ``report`` (shown without a target).
    """

    key: str
    title: str
    workload: str
    subject_label: str
    baseline_label: str = ""
    kind: str = "report"
    target: float | None = None
    unit: str = "s"
    subject: Samples | None = None
    baseline: Samples | None = None
    unavailable: str | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.subject is None or self.baseline is None:
            return None
        if self.kind == "faster":
            return self.baseline.median / self.subject.median if self.subject.median else None
        return self.subject.median / self.baseline.median if self.baseline.median else None

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "report"
        if self.kind == "at_most":
            return f"<= {self.target:g}x"
        if self.kind == "faster":
            return f">= {self.target:g}x faster"
        if self.unit == "B":
            return f"< {self.target / 1e6:g} MB"
        return f"< {self.target * 1000:g} ms" if self.target < 1 else f"< {self.target:g} s"

    @property
    def status(self) -> str:
        if self.unavailable:
            return "n/a"
        if self.target is None or self.subject is None:
            return "report"
        if self.kind == "under":
            return "PASS" if self.subject.median < self.target else "MISS"
        ratio = self.ratio
        if ratio is None:
            return "report"
        ok = ratio <= self.target if self.kind == "at_most" else ratio >= self.target
        return "PASS" if ok else "MISS"

    def to_dict(self) -> dict[str, Any]:
        def samples(s: Samples | None) -> dict[str, Any] | None:
            return None if s is None else {"median": s.median, "min": s.min, "max": s.max, "values": s.values}

        return {
            "key": self.key,
            "title": self.title,
            "workload": self.workload,
            "subject_label": self.subject_label,
            "baseline_label": self.baseline_label,
            "kind": self.kind,
            "unit": self.unit,
            "subject": samples(self.subject),
            "baseline": samples(self.baseline),
            "ratio": self.ratio,
            "target": self.target_text,
            "status": self.status,
            "unavailable": self.unavailable,
            "note": self.note,
        }


class NotAvailable(Exception):
    """A figure cannot be measured here (API not on this branch, peer not installed)."""


# -- network guard: MLflow runs offline, and the report says how many connections it tried ----

_NETWORK: dict[str, Any] = {"on": False, "hooked": False, "events": []}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _NETWORK["on"] and event in ("socket.connect", "socket.getaddrinfo", "urllib.Request"):
        _NETWORK["events"].append(f"{event} {args[1:2] if event == 'socket.connect' else args[:1]}")


def _watch_network() -> None:
    """Count connection attempts from here on (an audit hook cannot be removed: added once)."""
    if not _NETWORK["hooked"]:
        sys.addaudithook(_audit)
        _NETWORK["hooked"] = True


#: MLflow 3's default (skops) refuses to reload a scikit-learn Pipeline without a list of trusted
#: types; cloudpickle was its default before and saves anything, so it is the fair peer.
MLFLOW_FORMAT = "cloudpickle"

OFFLINE_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_TRACKING_URI": "",  # set per run to a file: URI inside the temp dir
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


@dataclass
class Bench:
    """The run: its scale, a scratch folder, the workloads (built once) and the figures so far."""

    scale: Scale
    scratch: Path
    only: set[str] | None = None
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    log: Callable[[str], None] = print
    works: dict[str, Workload] = field(default_factory=dict)
    stored: dict[str, tuple[Store, str, Path]] = field(default_factory=dict)
    mlflow_saved: dict[str, Path] = field(default_factory=dict)
    _counter: int = 0

    # -- plumbing ---------------------------------------------------------------------------

    def work(self, key: str) -> Workload:
        if key not in self.works:
            started = time.perf_counter()
            builder = {
                "pima": workloads.pima_logistic,
                "forest": lambda: workloads.forest(self.scale),
                "big": lambda: workloads.big_forest(self.scale),
                "hgb": lambda: workloads.hist_gradient_boosting(self.scale),
                "knn": lambda: workloads.nearest_neighbours(self.scale),
            }[key]
            self.works[key] = builder()
            w, took = self.works[key], time.perf_counter() - started
            self.log(f"  built {w.label} ({w.joblib_bytes / 1e6:.1f} MB joblib) in {took:.1f}s")
        return self.works[key]

    def fresh_dir(self, stem: str) -> Path:
        self._counter += 1
        path = self.scratch / f"{stem}-{self._counter}"
        path.mkdir(parents=True)
        return path

    def add(self, figure: Figure, measure: Callable[[Figure], None]) -> Figure:
        """Measure one figure; a missing API becomes "not available", an error "failed"."""
        self.log(f"- {figure.key}: {figure.title} [{figure.workload}]")
        started = time.perf_counter()
        try:
            measure(figure)
        except NotAvailable as exc:
            figure.unavailable = f"not available: {exc}"
        except Exception as exc:  # noqa: BLE001 - one broken figure must not hide the others
            figure.unavailable = f"failed: {type(exc).__name__}: {exc}"
        self.figures.append(figure)
        if figure.unavailable:
            self.log(f"    {figure.unavailable}")
        else:
            ratio = f" ratio {figure.ratio:.2f}x" if figure.ratio is not None else ""
            took = time.perf_counter() - started
            self.log(f"    median {_short(figure.subject, figure.unit)}{ratio} {figure.status} ({took:.1f}s)")
        return figure

    def wanted(self, group: str) -> bool:
        return self.only is None or group in self.only

    # -- the figures --------------------------------------------------------------------------

    def run(self) -> list[Figure]:
        groups = [
            ("save", self.save_figures),
            ("load", self.load_figures),
            ("safe", self.safe_load_figures),
            ("worker", self.worker_figures),
            ("mlflow", self.mlflow_figures),
            ("list", self.list_figures),
            ("mmap", self.mmap_figures),
            ("onnx", self.onnx_figures),
            ("import", self.import_figures),
            ("page", self.page_figures),
            ("remote", lambda: remote_figures(self)),
            ("cli", lambda: cli_figures(self)),
            ("format", lambda: format_figures(self)),
            ("durable", lambda: durable_figures(self)),
            ("dash", lambda: dash_figures(self)),
        ]
        try:
            for group, method in groups:
                if self.wanted(group):
                    method()
        finally:
            for store, _ref, _path in self.stored.values():
                store.close()
        return self.figures

    def save_figures(self) -> None:
        for key, target in (("pima", None), ("forest", 1.25), ("hgb", None)):
            fig = Figure(
                f"save_{key}",
                "save a version (file + sha256 + index row + evaluation set)",
                key,
                "Store.save",
                "joblib.dump to a file",
                kind="at_most",
                target=target,
            )
            self.add(fig, lambda f, key=key: self._measure_save(f, key))
        fig = Figure(
            "fsync_forest",
            "of which making it durable (the same dump, fsynced with its folder)",
            "forest",
            "joblib.dump to a file + fsync",
            "joblib.dump to a file",
        )
        self.add(fig, self._measure_fsync)
        fig = Figure(
            "sha256_forest",
            "of which the sha256 alone (the same bytes, hashed in memory)",
            "forest",
            "hashlib.sha256 of the file's bytes",
            "joblib.dump to a file",
        )
        self.add(fig, self._measure_hash)

    def _measure_hash(self, fig: Figure) -> None:
        import hashlib
        import io

        work = self.work("forest")
        fig.workload = work.label
        buffer = io.BytesIO()
        joblib.dump(work.model, buffer)
        data = buffer.getvalue()
        folder = self.fresh_dir("hash")
        try:
            fig.baseline, fig.subject = time_pair(
                lambda: joblib.dump(work.model, folder / "model.joblib"),
                lambda: hashlib.sha256(data).hexdigest(),
                self.scale.repeats,
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _measure_fsync(self, fig: Figure) -> None:
        """What the store's durable commit costs on this disk: a save fsyncs its files and folders."""
        import os

        work = self.work("forest")
        fig.workload = work.label
        folder = self.fresh_dir("fsync")
        dump = _dumper(work.model, folder)

        def durable() -> Path:
            path = dump()
            with open(path, "rb+") as handle:
                os.fsync(handle.fileno())
            descriptor = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            return path

        try:
            fig.baseline, fig.subject = time_pair(
                dump,
                durable,
                self.scale.repeats,
                baseline_teardown=lambda path: path.unlink(),
                subject_teardown=lambda path: path.unlink(),
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _measure_save(self, fig: Figure, key: str) -> None:
        work = self.work(key)
        fig.workload = work.label
        folder = self.fresh_dir("save")
        store = Store(folder / "store")
        raw = folder / "raw"
        raw.mkdir()
        dump = _dumper(work.model, raw)

        def save() -> dict[str, Any]:
            return save_workload(store, work, "bench")

        try:
            fig.baseline, fig.subject = time_pair(
                dump,
                save,
                self.scale.repeats,
                baseline_teardown=lambda path: path.unlink(),
                subject_teardown=lambda record: store.delete(f"bench:{record['version']}"),
            )
        finally:
            store.close()
            shutil.rmtree(folder, ignore_errors=True)

    def _saved(self, key: str, *together: str) -> tuple[Store, str, Path]:
        """A store holding one version of a workload, settled so a stat can vouch for its hash.

        ``together`` names workloads saved at the same time, so they share one settling pause.
        """
        missing = [k for k in (key, *together) if k not in self.stored]
        for k in missing:
            work = self.work(k)
            store = Store(self.fresh_dir(f"stored-{k}"))
            # the mapped workloads are joblib files: a memory-mapped load maps joblib's arrays only
            record = save_workload(store, work, "bench", "joblib" if k in ("big", "knn") else None)
            ref = f"bench:{record['version']}"
            self.stored[k] = (store, ref, Path(store.artifacts.local_path(store.row(ref).path) or ""))
        if missing:
            time.sleep(SETTLE_SECONDS)
        return self.stored[key]

    def load_figures(self) -> None:
        for key, target in (("pima", None), ("forest", 1.25), ("hgb", None)):
            fig = Figure(
                f"load_{key}",
                "load a version with integrity check",
                key,
                "Store.load",
                "joblib.load of the same file",
                kind="at_most",
                target=target,
            )
            self.add(fig, lambda f, key=key: self._measure_load(f, key, verify=None))
        fig = Figure(
            "load_forest_full_hash",
            "load a version, re-hashing the whole file (verify='full')",
            "forest",
            "Store.load(verify='full')",
            "joblib.load of the same file",
        )
        self.add(fig, lambda f: self._measure_load(f, "forest", verify="full"))

    def _measure_load(self, fig: Figure, key: str, verify: str | None, mmap: bool = False) -> None:
        work = self.work(key)
        fig.workload = work.label
        if verify is not None and not _supports_verify():
            raise NotAvailable("Store.load has no verify option on this branch")
        store, ref, path = self._saved(key, *(("big", "knn") if mmap else ("pima", "forest", "hgb")))
        options: dict[str, Any] = {"mmap": True} if mmap else {}
        if verify is not None:
            options["verify"] = verify
        fig.baseline, fig.subject = time_pair(
            lambda: joblib.load(path),
            lambda: store.load(ref, **options),
            self.scale.repeats,
        )
        rows = np.asarray(work.X_test[:5]) if not hasattr(work.X_test, "iloc") else work.X_test.iloc[:5]
        loaded = store.load(ref, **options).model
        if not np.array_equal(loaded.predict(rows), work.model.predict(rows)):
            raise AssertionError("the loaded model predicts differently from the saved one")

    def safe_load_figures(self) -> None:
        for key, target in (("pima", None), ("forest", 2.0), ("hgb", None)):
            fig = Figure(
                f"safe_load_{key}",
                "safe load of an uploaded joblib file (restricted unpickler)",
                key,
                "read + core.safety.loader._load_untrusted",
                "joblib.load of the same file",
                kind="at_most",
                target=target,
            )
            self.add(fig, lambda f, key=key: self._measure_safe_load(f, key))

    def _measure_safe_load(self, fig: Figure, key: str) -> None:
        try:
            from core.safety.loader import _load_untrusted as load_untrusted
        except ImportError:
            raise NotAvailable("core.safety.loader (issue 4) is not on this branch yet") from None
        work = self.work(key)
        fig.workload = work.label
        folder = self.fresh_dir("safe")
        path = folder / "upload.joblib"
        joblib.dump(work.model, path)
        try:
            fig.baseline, fig.subject = time_pair(
                lambda: joblib.load(path),
                lambda: load_untrusted(path.read_bytes()),
                self.scale.repeats,
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def worker_figures(self) -> None:
        fig = Figure(
            "safe_load_forest_worker",
            "safe load of an uploaded joblib file in the sandboxed worker (warm)",
            "forest",
            "read + core.safety.load_in_worker (warm worker)",
            "joblib.load of the same file",
            kind="at_most",
            target=2.5,
        )
        cold = Figure(
            "safe_load_forest_worker_cold",
            "the same, in a worker started for it (process start, sandbox, imports)",
            "forest",
            "new WorkerPool + load_in_worker",
        )
        self.add(fig, lambda f: self._measure_worker_load(f, cold))
        self.add(cold, lambda f: None if f.subject is not None else self._measure_worker_load(fig, f))

    def _measure_worker_load(self, fig: Figure, cold: Figure) -> None:
        from core.safety import LoadLimits, WorkerPool, load_in_worker

        work = self.work("forest")
        fig.workload = cold.workload = work.label
        folder = self.fresh_dir("worker")
        path = folder / "upload.joblib"
        joblib.dump(work.model, path)
        limits = LoadLimits(max_bytes=2**31, max_decompressed_bytes=2**32, timeout_s=600)
        cold_times = []
        try:
            for _ in range(max(1, min(3, self.scale.repeats))):
                pool = WorkerPool(size=1, max_models=0)  # a new process each time: the cold start
                started = time.perf_counter()
                load_in_worker(path.read_bytes(), limits, pool=pool)
                cold_times.append(time.perf_counter() - started)
                pool.close()
            cold.subject = Samples(cold_times)
            # max_models=0: the worker keeps nothing, so every load really loads (no warm cache hit).
            pool = WorkerPool(size=1, max_models=0)
            try:
                fig.baseline, fig.subject = time_pair(
                    lambda: joblib.load(path),
                    lambda: load_in_worker(path.read_bytes(), limits, pool=pool),
                    self.scale.repeats,
                )
            finally:
                pool.close()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def mlflow_figures(self) -> None:
        for key in ("pima", "forest", "hgb"):
            if key not in self.scale.mlflow_models:
                continue
            fig = Figure(
                f"mlflow_save_{key}",
                "save a version vs MLflow",
                key,
                "Store.save",
                "mlflow.sklearn.save_model",
                kind="faster",
                target=10.0,  # issue 16: >= 10x faster on all three workloads
            )
            self.add(fig, lambda f, key=key: self._measure_mlflow(f, key, "save"))
            fig = Figure(
                f"mlflow_load_{key}",
                "load a version vs MLflow",
                key,
                "Store.load",
                "mlflow.sklearn.load_model",
                kind="at_most",
                target=None if key == "hgb" else 1.1,  # issue 16: the forest and the tutorial model
            )
            self.add(fig, lambda f, key=key: self._measure_mlflow(f, key, "load"))

    def _mlflow(self) -> Any:
        for name, value in OFFLINE_ENV.items():
            os.environ[name] = value
        os.environ["MLFLOW_TRACKING_URI"] = (self.scratch / "mlruns").as_uri()
        logging.getLogger("mlflow").setLevel(logging.ERROR)  # its advice on pickle formats, once per save
        try:
            import mlflow.sklearn
        except ImportError:
            raise NotAvailable("mlflow not installed (pip install -r bench/requirements.txt)") from None
        return mlflow.sklearn

    def _keep_one_mlflow_model(self, key: str, path: Path) -> None:
        """Keep the first model MLflow saved (the load figure reads it); remove the others."""
        if key in self.mlflow_saved:
            shutil.rmtree(path)
        else:
            self.mlflow_saved[key] = path.rename(self.fresh_dir("mlflow-kept") / "model")

    def _measure_mlflow(self, fig: Figure, key: str, what: str) -> None:
        if "mlflow" in sys.modules and sys.modules["mlflow"] is None:
            raise NotAvailable("mlflow not installed (pip install -r bench/requirements.txt)")
        mlflow_sklearn = self._mlflow()
        work = self.work(key)
        fig.workload = work.label
        folder = self.fresh_dir("mlflow")
        counter = iter(range(10**6))
        repeats = self.scale.mlflow_repeats
        _watch_network()
        seen_before = len(_NETWORK["events"])
        _NETWORK["on"] = True
        try:
            if what == "save":
                store = Store(folder / "store")

                def mlflow_save() -> Path:
                    target = folder / f"mlflow-{next(counter)}"
                    mlflow_sklearn.save_model(work.model, str(target), serialization_format=MLFLOW_FORMAT)
                    return target

                fig.baseline, fig.subject = time_pair(
                    mlflow_save,
                    lambda: save_workload(store, work, "bench"),
                    repeats,
                    warmup=0,
                    baseline_teardown=lambda p: self._keep_one_mlflow_model(key, p),
                    subject_teardown=lambda r: store.delete(f"bench:{r['version']}"),
                )
                store.close()
            else:
                target = self.mlflow_saved.get(key) or folder / "mlflow-model"
                if not target.exists():
                    mlflow_sklearn.save_model(work.model, str(target), serialization_format=MLFLOW_FORMAT)
                store, ref, _path = self._saved(key)
                fig.baseline, fig.subject = time_pair(
                    lambda: mlflow_sklearn.load_model(str(target)),
                    lambda: store.load(ref),
                    max(repeats, self.scale.repeats),  # a load is cheap: as many repeats as the other loads
                )
        finally:
            _NETWORK["on"] = False
            shutil.rmtree(folder, ignore_errors=True)
        tried = _NETWORK["events"][seen_before:]
        fig.note = f"MLflow offline: {len(tried)} network attempt(s) seen in-process"
        if tried:
            fig.note += " (" + "; ".join(tried[:3]) + ")"

    def list_figures(self) -> None:
        small, middle, large = self.scale.list_sizes
        fig = Figure(
            "list_page",
            "list: first page of 50 by accuracy + total count",
            f"{middle:,} versions",
            "Store.list(sort='accuracy', limit=50) + Store.count()",
            kind="under",
            target=0.05,
        )
        self.add(fig, lambda f: self._measure_list(f, [middle]))
        fig = Figure(
            "list_scaling",
            "list: the same page, largest vs smallest index",
            f"{large:,} vs {small:,} versions",
            f"list at {large:,}",
            f"list at {small:,}",
            kind="at_most",
            target=2.0,
        )
        self.add(fig, lambda f: self._measure_list(f, [large, small]))

    def index_store(self, n: int) -> Path:
        """A store folder whose index holds ``n`` synthetic versions (built once per size)."""
        folder = self.scratch / f"index-{n}"
        if not folder.exists():
            started = time.perf_counter()
            populate_index(folder, n, self._template_record())
            self.log(f"  indexed {n:,} synthetic versions in {time.perf_counter() - started:.1f}s")
        return folder

    def _template_record(self) -> str:
        """The JSON record of a real saved version, reused for every synthetic row."""
        folder = self.fresh_dir("template")
        store = Store(folder)
        try:
            work = self.work("forest")
            record = save_workload(store, work, "template")
            return store.index.find("template", version=record["version"]).record_json  # type: ignore[union-attr]
        finally:
            store.close()
            shutil.rmtree(folder, ignore_errors=True)

    def _measure_list(self, fig: Figure, sizes: list[int]) -> None:
        results = []
        for n in sizes:
            store = Store(self.index_store(n))
            try:
                assert store.count() == n
                results.append(
                    time_many(
                        lambda store=store: (store.list(sort="accuracy", limit=50), store.count()),
                        max(self.scale.repeats, 9),
                        warmup=2,
                    )
                )
            finally:
                store.close()
        fig.subject = results[0]
        if len(results) > 1:
            fig.baseline = results[1]
        fig.note = "synthetic index rows (listing never opens a model file)"

    def mmap_figures(self) -> None:
        for key in ("big", "knn"):
            fig = Figure(
                f"mmap_load_{key}",
                "load a 300 MB+ uncompressed joblib version for prediction (memory-mapped)",
                key,
                "Store.load(mmap=True)",
                "joblib.load of the same file",
                kind="faster",
                target=5.0 if key == "knn" else None,  # a forest's target is retired (METHODS.md says why)
            )
            self.add(fig, lambda f, key=key: self._measure_load(f, key, verify=None, mmap=True))
            fig = Figure(
                f"mmap_load_{key}_full_hash",
                "the same, re-hashing the whole file first (verify='full')",
                key,
                "Store.load(mmap=True, verify='full')",
                "joblib.load of the same file",
                kind="faster",
            )
            self.add(fig, lambda f, key=key: self._measure_load(f, key, verify="full", mmap=True))

    def onnx_figures(self) -> None:
        fig = Figure(
            "onnx_predict_forest",
            "1-row predict via ONNX runtime",
            "forest",
            "core.portable run_onnx (onnxruntime), 1 row",
            "scikit-learn predict, 1 row",
            kind="faster",
            target=50.0,
        )
        self.add(fig, self._measure_onnx)

    def _measure_onnx(self, fig: Figure) -> None:
        work = self.work("forest")
        fig.workload = work.label
        run = onnx_predictor(work.model, as_frame(work.X_test[:50]))
        row, frame = np.asarray(work.X_test[:1]), as_frame(work.X_test[:1])
        for i in range(50):  # the same answers first
            one = as_frame(work.X_test[i : i + 1])
            if not np.array_equal(np.asarray(run(one)).ravel(), work.model.predict(one.to_numpy()).ravel()):
                raise AssertionError(f"ONNX and scikit-learn disagree on row {i}")
        fig.baseline, fig.subject = time_pair(
            lambda: work.model.predict(row), lambda: run(frame), max(self.scale.repeats, 9), warmup=1, number=20
        )
        fig.note = (
            "ONNX: core.portable.onnx_runtime.run_onnx on a 1-row DataFrame (session cached by sha256); "
            "each sample is the mean of 20 back-to-back calls on both sides (warm caches)"
        )

    def import_figures(self) -> None:
        fig = Figure(
            "import_memory_big",
            "import (upload) of the big joblib file: peak extra memory",
            "big",
            "peak RSS growth during Store.import_model",
            "file size",
            kind="at_most",
            target=2.5,
            unit="B",
        )
        self.add(fig, self._measure_import_memory)

    def _measure_import_memory(self, fig: Figure) -> None:
        from core.store import Store as StoreClass

        if not hasattr(StoreClass, "import_model"):
            raise NotAvailable("Store.import_model (issue 4) is not on this branch yet")
        work = self.work("big")
        fig.workload = work.label
        folder = self.fresh_dir("import")
        path = folder / "upload.joblib"
        joblib.dump(work.model, path)
        size = path.stat().st_size
        extra: list[float] = []
        measured: dict[str, Any] = {}
        try:
            for i in range(self.scale.memory_repeats):
                out = subprocess.run(
                    [sys.executable, "-m", "bench.peak_memory", str(path), str(folder / f"store-{i}")],
                    capture_output=True,
                    text=True,
                    timeout=600,
                    cwd=workloads.ROOT,
                    check=False,
                )
                if out.returncode != 0:
                    raise RuntimeError((out.stderr.strip().splitlines() or ["no output"])[-1])
                measured = json.loads(out.stdout.strip().splitlines()[-1])
                extra.append(float(measured["extra_bytes"]))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        fig.subject = Samples(extra)
        fig.baseline = Samples([float(size)])
        fig.note = f"fresh process, upload bytes already in memory; {measured['method']}"

    def page_figures(self) -> None:
        n = self.scale.page_versions
        fig = Figure(
            "models_page_render",
            "Models page render (AppTest, server side)",
            f"{n:,} versions",
            "AppTest.run of the Models page",
            kind="under",
            target=1.0,
        )
        self.add(fig, lambda f: self._measure_page(f, n))

    def _measure_page(self, fig: Figure, n: int) -> None:
        try:
            from streamlit.testing.v1 import AppTest
        except ImportError:
            raise NotAvailable("streamlit is not installed") from None
        page, label = models_page()
        folder = self.index_store(n)
        previous = os.environ.get("MODEL_STORE")
        os.environ["MODEL_STORE"] = str(folder)
        app_file = str(workloads.ROOT / "streamlit_app.py")

        def check(app: Any) -> Any:
            if app.exception:
                raise RuntimeError(f"the page raised: {app.exception[0].message}")
            return app

        def render(app: Any) -> Any:
            return check(app.switch_page(page).run() if page else app.run())

        def opened() -> Any:
            app = AppTest.from_file(app_file, default_timeout=120)
            return check(app.run()) if page else app  # the app's default page first, not timed

        samples = []
        try:
            shown = render(opened())
            if not len(shown.dataframe) or (page and not any(f"of {n}" in c.value for c in shown.caption)):
                raise RuntimeError(f"the Models page did not show a table of the {n:,} versions")
            for i in range(max(self.scale.repeats, 3) + 1):
                app = opened()
                took = time_many(lambda app=app: render(app), 1, warmup=0).values[0]
                if i:  # the first round warms imports and caches
                    samples.append(took)
            fig.subject = Samples(samples)
        finally:
            if previous is None:
                os.environ.pop("MODEL_STORE", None)
            else:
                os.environ["MODEL_STORE"] = previous
        fig.note = f"page: {label}; synthetic index rows"


# -- helpers shared with the tests --------------------------------------------------------------


def save_workload(store: Store, work: Workload, name: str, format: str | None = None) -> dict[str, Any]:
    """Save as an app would: the trained result, or the model with its held-out rows and metrics."""
    if work.result is not None:
        return store.save_trained(work.result, name, format=format)
    return store.save(work.model, name, X_test=work.X_test, y_test=work.y_test, metrics=work.metrics, format=format)


def _supports_verify() -> bool:
    import inspect

    return "verify" in inspect.signature(Store.load).parameters


def populate_index(folder: Path | None, n: int, record_json: str, store: Store | None = None) -> None:
    """Write ``n`` synthetic versions straight into a store's index (the folder's, or ``store``'s):
    one transaction, executemany."""
    from sqlalchemy import insert

    from core.store.index import tags, versions

    rng = np.random.default_rng(0)
    accuracy = rng.uniform(0.5, 1.0, n)
    accuracy[rng.random(n) < 0.02] = np.nan  # a few versions saved without an evaluation set
    names = 200
    start = 1_700_000_000
    columns = [c.name for c in versions.columns if c.name != "id"]
    rows = []
    for i in range(n):
        name = f"model-{i % names:03d}"
        version = i // names + 1
        row = {
            "name": name,
            "version": version,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + i)) + ".000000+00:00",
            "format": "joblib",
            "path": f"{name}/v{version}/model.joblib",
            "size_bytes": 44_000_000,
            "sha256": "0" * 64,
            "estimator": "sklearn.ensemble._forest.RandomForestClassifier",
            "accuracy": None if np.isnan(accuracy[i]) else float(accuracy[i]),
            "sklearn_version": "1.9.1",
            "origin": "trained",
            "owner": None,
            "note": "",
            "record": record_json,
            "stored_bytes": 44_000_000 + len(record_json),
            "task": "classification",
            "score": None if np.isnan(accuracy[i]) else float(accuracy[i]),
            "score_name": None if np.isnan(accuracy[i]) else "accuracy",
        }
        rows.append(tuple(row[c] for c in columns))
    sql = f"INSERT INTO versions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    own = store is None
    if store is None:
        store = Store(folder)
    try:
        with store.index.writing() as conn:  # one transaction; executemany on the index's connection
            if own:  # SQLite's driver takes the rows as they are: the fastest way in
                conn.exec_driver_sql(sql, rows)
            else:
                conn.execute(insert(versions), [dict(zip(columns, row, strict=True)) for row in rows])
            ids = [r for (r,) in conn.exec_driver_sql("SELECT id FROM versions ORDER BY id")]
            conn.execute(insert(tags), [{"version_id": i, "tag": "candidate"} for i in ids[::10]])
    finally:
        if own:
            store.close()


def onnx_predictor(model: Any, sample: Any) -> Callable[[Any], Any]:
    """``run(frame) -> labels`` through ModelShelf's ONNX export and runtime (issue 5)."""
    try:
        from core.portable.onnx_export import convert
        from core.portable.onnx_runtime import run_onnx
    except ImportError:
        raise NotAvailable("core.portable ONNX export (issue 5) is not on this branch yet") from None
    from core.formats import sha256_bytes

    data, _layout = convert(model, sample)
    sha = sha256_bytes(data)
    return lambda frame: run_onnx(data, frame, sha)[0]


def models_page() -> tuple[str | None, str]:
    """The Models page to switch to inside streamlit_app.py (None: the app itself lists the models)."""
    if (workloads.ROOT / "app_pages" / "models.py").exists():
        return "app_pages/models.py", "app_pages/models.py, opened from streamlit_app.py"
    return None, "streamlit_app.py (no separate Models page on this branch)"


def _short(samples: Samples | None, unit: str) -> str:
    if samples is None:
        return "-"
    value = samples.median
    if unit == "B":
        return f"{value / 1e6:.1f} MB"
    return f"{value * 1000:.2f} ms" if value < 1 else f"{value:.2f} s"
