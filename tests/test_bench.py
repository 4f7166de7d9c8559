"""The benchmark runs end to end on a tiny workload and reports every figure (timings never asserted)."""

from __future__ import annotations

import json
import os
import sys

import pytest

from bench.figures import Figure
from bench.report import fmt_ratio, fmt_value, readme_snippet
from bench.timing import Samples

FIGURES = (
    "save_pima",
    "save_forest",
    "save_hgb",
    "fsync_forest",
    "sha256_forest",
    "load_pima",
    "load_forest",
    "load_hgb",
    "load_forest_full_hash",
    "safe_load_pima",
    "safe_load_forest",
    "safe_load_hgb",
    "safe_load_forest_worker",
    "safe_load_forest_worker_cold",
    "mlflow_save_pima",
    "mlflow_load_pima",
    "list_page",
    "list_scaling",
    "mmap_load_big",
    "mmap_load_big_full_hash",
    "mmap_load_knn",
    "mmap_load_knn_full_hash",
    "onnx_predict_forest",
    "import_memory_big",
    "models_page_render",
    "cli_list_wall",
    "cli_list_memory",
    "cli_show_wall",
    "cli_show_memory",
    "remote_save_pima",
    "remote_load_pima",
    "remote_save_forest",
    "remote_load_forest",
    "remote_list",
    "remote_list_page",
    "remote_save_8_writers",
    *(f"format_{what}_{key}" for what in ("save", "load", "size", "memory") for key in ("pima", "forest", "hgb")),
    *(f"durable_save_{key}{tail}" for key in ("pima", "forest", "hgb") for tail in ("", "_no_fsync")),
    "dash_train_cold",
    "dash_detail_cold",
    "dash_detail_fresh",
    "dash_detail_8_browser",
    "dash_detail_after_upload",
    "dash_detail_8_visitors",
)


@pytest.fixture
def without_mlflow(monkeypatch):
    """As in CI, where only requirements-dev.txt is installed."""
    for name in [m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.sklearn", None)


def test_a_tiny_run_reports_every_figure(tmp_path, without_mlflow, capsys):
    from bench.__main__ import main

    assert main(["--tiny", "--output", str(tmp_path)]) == 0
    report = (tmp_path / "benchmarks.md").read_text()
    assert report.startswith("# Benchmarks (TINY run")
    for key in FIGURES:
        assert f"| `{key}` |" in report, key
    assert "failed:" not in report
    assert "not available: mlflow not installed" in report
    for heading in ("## Machine", "- CPU: ", "- packages: scikit-learn ", "## Workloads", "## Headline"):
        assert heading in report
    results = json.loads((tmp_path / "benchmarks" / "results.json").read_text())
    measured = {f["key"]: f for f in results["figures"]}
    assert set(FIGURES) <= set(measured)
    for key in set(FIGURES) - {"mlflow_save_pima", "mlflow_load_pima"}:
        figure = measured[key]
        skipped = (figure["unavailable"] or "").startswith("skipped:")
        if key.startswith(("remote_", "dash_")) and skipped and not os.environ.get("CI"):
            continue  # no PostgreSQL, S3 server or Chromium on this machine (under CI they must run)
        assert figure["unavailable"] is None, (key, figure["unavailable"])
        assert figure["status"] in (("PASS", "MISS") if figure["target"] != "report" else ("report",))
        assert figure["subject"]["min"] <= figure["subject"]["median"] <= figure["subject"]["max"]
    for chart in ("times.html", "ratios.html"):
        assert "plotly" in (tmp_path / "benchmarks" / chart).read_text()
    out = capsys.readouterr().out
    assert "README snippet:" in out and "Measured by `python -m bench` (tiny run" in out


def test_the_mlflow_figures_measure_mlflow_when_it_is_installed(tmp_path):
    pytest.importorskip("mlflow.sklearn")
    from bench.__main__ import main

    assert main(["--tiny", "--only", "mlflow", "--output", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "benchmarks" / "results.json").read_text())
    figures = {f["key"]: f for f in results["figures"]}
    assert set(figures) == {"mlflow_save_pima", "mlflow_load_pima"}
    for figure in figures.values():
        assert figure["unavailable"] is None and figure["baseline"]["median"] > 0
        assert "MLflow offline: 0 network attempt(s)" in figure["note"]


def _figure(kind: str, subject: list[float], baseline: list[float] | None, target: float | None) -> Figure:
    return Figure(
        "k",
        "t",
        "w",
        "s",
        "b",
        kind=kind,
        target=target,
        subject=Samples(subject),
        baseline=Samples(baseline) if baseline else None,
    )


def test_ratios_read_the_way_their_targets_say():
    overhead = _figure("at_most", [1.2, 1.1, 5.0], [1.0, 0.9, 1.1], 1.25)
    assert overhead.ratio == pytest.approx(1.2) and overhead.status == "PASS" and fmt_ratio(overhead) == "1.20x"
    assert _figure("at_most", [1.3], [1.0], 1.25).status == "MISS"
    faster = _figure("faster", [0.1], [1.0], 5.0)
    assert faster.ratio == pytest.approx(10) and faster.status == "PASS" and fmt_ratio(faster) == "10.0x faster"
    assert _figure("faster", [0.5], [1.0], 5.0).status == "MISS"
    assert _figure("under", [0.04], None, 0.05).status == "PASS"
    assert _figure("under", [0.06], None, 0.05).status == "MISS"
    assert _figure("report", [0.06], [0.01], None).status == "report"
    missing = _figure("at_most", [1.0], [1.0], 2.0)
    missing.unavailable = "not available: x"
    assert missing.status == "n/a"


def test_values_and_the_readme_snippet_are_formatted_from_the_figures():
    assert fmt_value(0.0123, "s") == "12 ms" and fmt_value(2.5, "s") == "2.50 s" and fmt_value(0.0005, "s") == "500 us"
    assert fmt_value(314_000_000, "B") == "314 MB"
    save = _figure("at_most", [1.1], [1.0], 1.25)
    save.key = "save_forest"
    run = {"mode": "full", "date": "D", "machine": {"cores": 2, "cpu": "CPU"}}
    snippet = readme_snippet([save], run)
    assert "save a version vs `joblib.dump` (w): 1.10x (target <= 1.25x), PASS" in snippet
    assert "full run of D on 2 cores (CPU)" in snippet


def test_the_network_watch_sees_a_lookup():
    import socket

    from bench import figures

    figures._watch_network()
    before = len(figures._NETWORK["events"])
    figures._NETWORK["on"] = True
    try:
        socket.getaddrinfo("localhost", 80)
    finally:
        figures._NETWORK["on"] = False
    assert any("getaddrinfo" in e for e in figures._NETWORK["events"][before:])
    socket.getaddrinfo("localhost", 80)  # not counted while off
    assert len(figures._NETWORK["events"]) == before + 1


def test_compare_flags_a_ratio_more_than_the_tolerance_worse_and_keeps_the_best_run() -> None:
    from bench.compare import _best, compare

    best = _best([{"a": 2.0, "b": 1.0}, {"a": 1.5, "b": 1.2}])
    assert best == {"a": 1.5, "b": 1.0}
    lines, worse = compare({"a": 1.5, "b": 1.0, "gone": 3.0}, {"a": 1.6, "b": 1.2, "new": 1.0}, 0.10)
    assert worse == ["b"]  # a: +7% (within 10%), b: +20%
    assert any(line.startswith("b ") and "WORSE" in line for line in lines)
    assert not any(line.startswith(("gone", "new")) for line in lines)  # only figures both sides have


def test_compare_reads_a_faster_figure_as_a_cost_so_a_lower_speed_up_is_worse(tmp_path) -> None:
    import json

    from bench.compare import _figures

    (tmp_path / "benchmarks").mkdir()
    figures = [
        {"key": "save", "kind": "at_most", "ratio": 2.0},
        {"key": "mmap", "kind": "faster", "ratio": 20.0},
        {"key": "cold", "kind": "report", "ratio": None, "subject": {"median": 1.5}},
    ]
    (tmp_path / "benchmarks" / "results.json").write_text(json.dumps({"figures": figures}))
    costs = _figures(tmp_path)
    assert costs == {"save": 2.0, "mmap": 0.05, "cold": 1.5}


def test_the_remote_group_says_why_it_is_skipped_without_postgresql(tmp_path, monkeypatch):
    """Where PostgreSQL is missing every remote figure is there, marked "skipped: <why>"; none fails."""
    import bench.remote
    from bench.__main__ import main
    from bench.backends import Unavailable

    def missing():
        raise Unavailable("PostgreSQL is not installed (test)")

    monkeypatch.setattr(bench.remote, "start_postgres", missing)
    assert main(["--tiny", "--only", "remote", "--output", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "benchmarks" / "results.json").read_text())
    shown = {f["key"]: f["unavailable"] for f in results["figures"]}
    assert {key for key in FIGURES if key.startswith("remote_")} == set(shown)
    assert set(shown.values()) == {"skipped: PostgreSQL is not installed (test)"}


def test_the_dash_group_says_why_it_is_skipped_without_chromium(tmp_path, monkeypatch):
    """Where Chromium is missing every dash figure is there, marked "skipped: <why>"; none fails."""
    import bench.dash
    from bench.__main__ import main

    monkeypatch.setattr(bench.dash, "CHROMIUM", tmp_path / "no-chromium")
    assert main(["--tiny", "--only", "dash", "--output", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "benchmarks" / "results.json").read_text())
    shown = {f["key"]: f["unavailable"] for f in results["figures"]}
    assert {key for key in FIGURES if key.startswith("dash_")} == set(shown)
    assert all(why.startswith("skipped: Chromium is not installed at ") for why in shown.values())
