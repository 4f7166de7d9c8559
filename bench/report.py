"""The report of one run: docs/benchmarks.md, plotly charts, a JSON dump and the README snippet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.figures import Figure
from bench.timing import Samples

#: The figures quoted in the README, in this order (when measured).
HEADLINES = (
    ("save_forest", "save a version vs `joblib.dump`"),
    ("load_forest", "load it, integrity checked, vs `joblib.load`"),
    ("safe_load_forest", "safe load of the same file uploaded vs `joblib.load`"),
    ("safe_load_forest_worker", "the same in the sandboxed worker (warm) vs `joblib.load`"),
    ("durable_save_forest", "durable save vs a raw dump with the same fsyncs"),
    ("mlflow_save_pima", "save vs `mlflow.sklearn.save_model`"),
    ("mlflow_load_pima", "load vs `mlflow.sklearn.load_model`"),
    ("mlflow_load_forest", "load vs `mlflow.sklearn.load_model`"),
    ("list_page", "first page of 50 by accuracy, plus the count"),
    ("list_scaling", "the same page, largest vs smallest index"),
    ("mmap_load_knn", "memory-mapped load vs `joblib.load`"),
    ("onnx_predict_forest", "1-row predict via ONNX runtime vs scikit-learn"),
    ("import_memory_big", "peak extra memory importing an upload, per byte of file"),
    ("models_page_render", "Models page render"),
    ("cli_list_wall", "`python -m core list`, whole process"),
    ("cli_list_memory", "`python -m core list`, peak memory"),
    ("remote_save_forest", "save on PostgreSQL + S3 vs a local save"),
    ("remote_list_page", "first page of 50 on PostgreSQL"),
    ("remote_save_8_writers", "8 processes saving at once vs one save"),
    ("dash_train_cold", "dashboard cold start, Train page in Chromium"),
    ("dash_detail_cold", "dashboard cold start, a Model detail link in Chromium"),
    ("dash_detail_after_upload", "a fresh Model detail link after the Upload page"),
    ("dash_detail_8_visitors", "8 visitors opening Model detail at once vs one"),
)


def fmt_value(value: float, unit: str) -> str:
    if unit == "B":
        return f"{value / 1e6:,.0f} MB" if value >= 1e7 else f"{value / 1e6:,.2f} MB"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 0.01:
        return f"{value * 1000:.0f} ms"
    if value >= 0.001:
        return f"{value * 1000:.1f} ms"
    return f"{value * 1e6:.0f} us"


def fmt_samples(samples: Samples | None, unit: str) -> str:
    if samples is None:
        return "-"
    if len(samples.values) == 1:
        return fmt_value(samples.median, unit)
    return f"{fmt_value(samples.median, unit)} ({fmt_value(samples.min, unit)} - {fmt_value(samples.max, unit)})"


def fmt_ratio(figure: Figure) -> str:
    ratio = figure.ratio
    if ratio is None:
        return "-"
    return f"{ratio:.1f}x faster" if figure.kind == "faster" else f"{ratio:.2f}x"


def headline(figure: Figure) -> str:
    """The one-line summary of a figure, as the README quotes it."""
    if figure.kind == "under":
        return f"{fmt_value(figure.subject.median, figure.unit)} (target {figure.target_text})"  # type: ignore[union-attr]
    return f"{fmt_ratio(figure)} (target {figure.target_text})"


def readme_snippet(figures: list[Figure], run: dict[str, Any]) -> str:
    by_key = {f.key: f for f in figures}
    lines = []
    for key, label in HEADLINES:
        figure = by_key.get(key)
        if figure is None or figure.unavailable:
            continue
        lines.append(f"- {label} ({figure.workload}): {headline(figure)}, {figure.status}")
    stamp = f"{run['mode']} run of {run['date']} on {run['machine']['cores']} cores ({run['machine']['cpu']})"
    return "\n".join([f"Measured by `python -m bench` ({stamp}):", "", *lines])


def _row(figure: Figure) -> str:
    if figure.unavailable:
        cells = [f"`{figure.key}`", figure.title, figure.workload, figure.subject_label, figure.unavailable, "-"]
        cells += [figure.target_text, "n/a"]
    else:
        baseline = fmt_samples(figure.baseline, figure.unit)
        if figure.baseline_label and figure.baseline is not None:
            baseline = f"{figure.baseline_label}: {baseline}"
        cells = [
            f"`{figure.key}`",
            figure.title,
            figure.workload,
            f"{figure.subject_label}: {fmt_samples(figure.subject, figure.unit)}",
            baseline,
            fmt_ratio(figure),
            figure.target_text,
            f"**{figure.status}**" if figure.status in ("PASS", "MISS") else figure.status,
        ]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def markdown(figures: list[Figure], run: dict[str, Any], notes: list[str], charts: list[str]) -> str:
    machine = run["machine"]
    memory = machine["memory_bytes"]
    quick = run["mode"] != "full"
    title = "# Benchmarks" + (f" ({run['mode'].upper()} run: smaller workloads, fewer repeats)" if quick else "")
    if run.get("only"):
        title += f" (PARTIAL run: only {', '.join(run['only'])})"
    lines = [
        title,
        "",
        "<!-- Written by `python -m bench`: do not edit by hand; run it again. -->",
        "",
        f"Every figure on this page was measured by `python -m bench{run['argv']}` in one run on {run['date']}; "
        "each ratio compares two timings taken in that same run, alternating subject and baseline. "
        f"Timings are the median (min - max) of {run['repeats']} repeats after a warm-up round.",
        "",
    ]
    if quick:
        lines += [
            f"> **This is a {run['mode']} run**: the workloads are scaled down (see below), so the ratios "
            "are indicative only. The reference figures come from a full run (`python -m bench`).",
            "",
        ]
    lines += [
        "## Machine",
        "",
        f"- CPU: {machine['cpu']}, {machine['cores']} cores",
        f"- memory: {memory / 2**30:.1f} GiB" if memory else "- memory: unknown",
        f"- Python {machine['python']} on {machine['os']}",
        f"- load average at the start: {', '.join(f'{x:.2f}' for x in machine['load_average'])}"
        if machine.get("load_average")
        else "- load average: unknown",
        "- packages: " + ", ".join(f"{k} {v}" for k, v in run["packages"].items() if v),
        "",
        "## Workloads",
        "",
        *[f"- {w}" for w in run["workloads"]],
        "",
        "## Results",
        "",
        "| figure | what | workload | ModelShelf | baseline | ratio | target | result |",
        "|---|---|---|---|---|---|---|---|",
        *[_row(f) for f in figures],
        "",
        "## Headline (quoted in the README)",
        "",
        readme_snippet(figures, run),
        "",
    ]
    missed = [f for f in figures if f.status == "MISS"]
    unavailable = [f for f in figures if f.unavailable]
    lines += ["## Targets missed or not measured", ""]
    if not missed and not unavailable:
        lines += ["Every target was met in this run.", ""]
    for f in missed:
        shown = fmt_ratio(f) if f.baseline else fmt_value(f.subject.median, f.unit)  # type: ignore[union-attr]
        lines.append(f"- **{f.key}** missed {f.target_text} with {shown}.")
    for f in unavailable:
        lines.append(f"- **{f.key}**: {f.unavailable}")
    lines += ["", "## Notes from this run", ""]
    lines += [f"- {f.key}: {f.note}" for f in figures if f.note]
    lines += [f"- {n}" for n in notes]
    lines += ["", "## Charts", "", *[f"- [{c}](benchmarks/{c})" for c in charts], ""]
    methods = Path(__file__).with_name("METHODS.md")
    if methods.exists():
        lines += [methods.read_text().strip(), ""]
    return "\n".join(lines)


def charts(figures: list[Figure], folder: Path, title_suffix: str) -> list[str]:
    """Two HTML charts: medians with min-max bars (log scale), and ratios against their targets."""
    import plotly.graph_objects as go

    folder.mkdir(parents=True, exist_ok=True)
    timed = [f for f in figures if not f.unavailable and f.unit == "s" and f.subject is not None]
    names = [f"{f.key}" for f in timed]

    def bar(label: str, picks: list[Samples | None]) -> Any:
        medians = [s.median if s else None for s in picks]
        return go.Bar(
            name=label,
            x=names,
            y=medians,
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [(s.max - s.median) if s else 0 for s in picks],
                "arrayminus": [(s.median - s.min) if s else 0 for s in picks],
            },
        )

    times = go.Figure([bar("ModelShelf", [f.subject for f in timed]), bar("baseline", [f.baseline for f in timed])])
    times.update_layout(
        title=f"Median seconds (min-max bars){title_suffix}", barmode="group", yaxis_type="log", yaxis_title="seconds"
    )
    times.write_html(folder / "times.html", include_plotlyjs="cdn")

    rated = [f for f in figures if not f.unavailable and f.ratio is not None]
    ratios = go.Figure(
        [
            go.Bar(
                name="ratio", x=[f.key for f in rated], y=[f.ratio for f in rated], text=[fmt_ratio(f) for f in rated]
            ),
            go.Scatter(
                name="target",
                mode="markers",
                marker={"symbol": "line-ew-open", "size": 30, "line": {"width": 3}},
                x=[f.key for f in rated if f.target is not None],
                y=[f.target for f in rated if f.target is not None],
            ),
        ]
    )
    ratios.update_layout(
        title=f"Ratios against their baseline (at_most: lower is better; faster: higher is better){title_suffix}",
        yaxis_type="log",
    )
    ratios.write_html(folder / "ratios.html", include_plotlyjs="cdn")
    return ["times.html", "ratios.html"]


def write(figures: list[Figure], run: dict[str, Any], notes: list[str], output: Path) -> Path:
    """Write benchmarks.md, benchmarks/*.html and benchmarks/results.json under ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    chart_folder = output / "benchmarks"
    suffix = "" if run["mode"] == "full" else f" ({run['mode']} run)"
    names = charts(figures, chart_folder, suffix)
    (chart_folder / "results.json").write_text(
        json.dumps({"run": run, "figures": [f.to_dict() for f in figures], "notes": notes}, indent=1, default=str)
    )
    names.append("results.json")
    target = output / "benchmarks.md"
    target.write_text(markdown(figures, run, notes, names))
    return target
