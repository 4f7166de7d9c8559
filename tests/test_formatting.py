"""Times, splits and hyperparameters written one way everywhere; charts and filters that read well."""

from __future__ import annotations

import itertools
import json
import re

import pandas as pd
import pytest

from core.cli import main
from core.plots import FORMAT_MEASURES, formats_figure, metrics_figure, weights_figure
from core.text import metric_text, params_text, split_words, utc_minutes
from core.views import metrics_shown, params_table, scalar_metrics
from tests.test_app import DETAIL, MODELS, app_store, fresh_app, ok, open_page  # noqa: F401


@pytest.mark.parametrize(
    ("stamp", "shown"),
    [
        ("2026-11-30T15:12:59.999999+00:00", "2026-11-30 15:12 UTC"),
        ("2026-11-30T16:12:07+01:00", "2026-11-30 15:12 UTC"),  # another zone, converted
        ("2026-11-30T15:12:07", "2026-11-30 15:12 UTC"),  # the store writes UTC only
        (None, "-"),
        ("yesterday", "yesterday"),
    ],
)
def test_times_read_to_the_minute_in_utc(stamp, shown):
    assert utc_minutes(stamp) == shown


def test_the_split_reads_as_words():
    split = {"test_size": 0.33, "random_state": 7, "stratify": True, "n_train": 514, "n_test": 254}
    assert split_words(split) == "33% held out, seed 7, stratified (514 rows trained on, 254 held out)"
    assert split_words({"test_size": 0.2, "random_state": None, "stratify": False}) == (
        "20% held out, no seed, not stratified"
    )
    assert split_words(None) == "no held-out split recorded"


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("accuracy", 0.92, "0.9200"),  # beside 0.9259, not "0.92"
        ("f1", 0.925925925, "0.9259"),
        ("r2", -1.5, "-1.5000"),
        ("n_samples", 1254.0, "1,254"),
        ("fit_seconds", 0.08279, "0.083 s"),
        ("mape", None, "n/a"),
        ("roc_auc", float("nan"), "n/a"),
    ],
)
def test_metrics_are_written_one_way(name, value, shown):
    assert metric_text(name, value) == shown


def test_the_held_out_metrics_table_shows_every_score_to_four_decimals():
    record = {"metrics": {"accuracy": 0.92, "precision": 0.9259259, "n_samples": 50, "fit_seconds": 0.0828}}
    shown = metrics_shown(scalar_metrics(record)).set_index("metric")["value"].to_dict()
    assert shown == {"accuracy": "0.9200", "precision": "0.9259", "n_samples": "50", "fit_seconds": "0.083 s"}


def test_params_are_python_literals():
    params = {"solver": "liblinear", "C": 1.0, "class_weight": None, "dual": False, "tol": 0.0001, "max_iter": 100}
    text = "C=1.0, class_weight=None, dual=False, max_iter=100, solver='liblinear', tol=0.0001"
    assert params_text(params) == text
    table = params_table({"params": params})  # type: ignore[typeddict-item]
    assert ", ".join(f"{p}={v}" for p, v in zip(table["parameter"], table["value"], strict=True)) == text


def _weights(features, classes):
    rows = [{"feature": f, "class": c, "weight": (i + 1) * (j + 1) * 0.1, "kind": "coefficient"}
            for i, f in enumerate(features) for j, c in enumerate(classes)]  # fmt: skip
    return pd.DataFrame(rows)


def test_a_multiclass_coefficients_chart_groups_classes_and_keeps_numeric_names_apart():
    figure = weights_figure(_weights([1, 2, 10], ["a", "b", "c"]))
    assert figure.layout.barmode == "group"
    assert [t.name for t in figure.data] == ["a", "b", "c"]
    assert figure.layout.yaxis.type == "category"
    assert all(list(t.y) == ["1", "2", "10"] for t in figure.data)  # strings: three bars, not one numeric axis
    single = weights_figure(_weights(["x", "y"], ["pos"]))
    assert len(single.data) == 1 and not single.layout.showlegend


def _cli(capsys, *argv):
    assert main(list(argv)) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def test_the_formats_figure_gives_each_panel_its_scale_and_room_for_its_numbers():
    table = pd.DataFrame(
        {
            "label": ["pickle", "joblib (compress 3)", "skops"],
            "size_bytes": [2100, 1300, 90400],
            "save_seconds": [0.0003, 0.0008, 1.4],
            "load_seconds": [0.0001, 0.0007, 0.0034],
        }
    )
    figure = formats_figure(table, "pima:1: formats compared")
    layout = figure.layout
    domains = sorted(layout[a].domain for a in ("xaxis", "xaxis2", "xaxis3"))
    gaps = [later[0] - earlier[1] for earlier, later in itertools.pairwise(domains)]
    assert min(gaps) >= 0.08, gaps  # plotly's 0.03 drew a panel's "1000" over the bars beside it on a phone
    assert all(layout[a].matches is None for a in ("yaxis2", "yaxis3"))  # each measure on its own scale
    assert sorted(a.text for a in layout.annotations) == sorted(FORMAT_MEASURES.values())
    assert [90.4] in [list(t.y) for t in figure.data if t.name == "skops"]  # its size in kB


def test_the_tag_filter_is_partial_and_any_case_in_the_store_and_the_cli(store, store_path, capsys):
    from core import load_dataset, train

    result = train(load_dataset("builtin:iris"), "naive_bayes")
    store.save_trained(result, "iris", tags=["Candidate"])
    store.save_trained(result, "iris", tags=["baseline"])
    assert [r["version"] for r in store.list(tag="cand")] == [1] and store.count(tag="CAND") == 1
    assert store.list(tag="ne") == [store.get("iris:2")] and store.list(tag="%") == []  # % is literal
    listed = json.loads(_cli(capsys, "list", "--tag", "CANDI", "--json", "--store", str(store_path)))
    assert [r["version"] for r in listed] == [1]
    table = _cli(capsys, "list", "--store", str(store_path))
    assert table.splitlines()[0].split()[-1] == "CREATED"
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC$", table.splitlines()[1])
    shown = _cli(capsys, "show", "iris:1", "--store", str(store_path))
    assert "  split        33% held out, seed 7, not stratified (100 rows trained on, 50 held out)" in shown
    assert re.search(r"  created      \d{4}-\d\d-\d\d \d\d:\d\d UTC\n", shown)


def test_the_models_list_flags_warnings_and_detail_reads_as_words(app_store):  # noqa: F811
    from core import load_dataset, train

    data = load_dataset("builtin:breast_cancer")
    warned = train(data, "logistic_regression", {"max_iter": 5})
    assert warned.warnings
    app_store.save_trained(warned, "warned")
    app_store.save_trained(train(data, "naive_bayes"), "clean")
    at = open_page(MODELS)
    ok(at)
    table = at.dataframe[0].value.set_index("ref")
    assert table.loc["warned:1", "warnings"] == f"⚠ {len(warned.warnings)}" and table.loc["clean:1", "warnings"] == ""
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", c) for c in table["created"])
    at = open_page(DETAIL, model="warned:1")
    ok(at)
    tables = {tuple(d.value.columns): d.value for d in at.dataframe}  # found by their columns, not their place
    metrics = tables[("metric", "value")].set_index("metric")["value"]
    assert all(re.fullmatch(r"\d\.\d{4}", metrics[m]) for m in ("accuracy", "precision", "recall", "f1")), metrics
    facts = tables[("field", "value")].set_index("field")["value"]
    assert facts["split"].startswith("33% held out, seed 7, not stratified")
    params = tables[("parameter", "value")].set_index("parameter")["value"]
    assert params["solver"] == "'lbfgs'" and params["C"] == "1.0" and params["class_weight"] == "None"
    assert any(re.fullmatch(r"Created \d{4}\\-\d\d\\-\d\d \d\d\\:\d\d UTC", c.value) for c in at.caption)


def _long(rows):
    return pd.DataFrame(rows, columns=["ref", "metric", "value"])


def test_compared_scores_in_0_1_share_one_axis_and_a_version_keeps_its_colour():
    figure = metrics_figure(
        _long([("a:1", "accuracy", 0.75), ("a:1", "f1", 0.6), ("a:2", "accuracy", 0.7), ("a:2", "f1", 0.5)])
    )
    assert len(figure.data) == 2 and {t.xaxis for t in figure.data} == {"x"}
    assert list(figure.layout.yaxis.range) == [0, 1.05]
    assert figure.data[0].marker.color != figure.data[1].marker.color


def test_compared_regression_metrics_each_get_their_own_axis():
    """R² 0.47 beside a max error of 170 on one axis reads as a flat line: one panel per metric."""
    rows = [
        (ref, m, v)
        for ref, r2 in (("d:1", 0.47), ("d:2", 0.49))
        for m, v in (("r2", r2), ("mae", 44.6), ("max_error", 170.0))
    ]
    figure = metrics_figure(_long(rows))
    panels = {t.xaxis for t in figure.data}
    assert len(panels) == 3  # r2, mae, max_error apart
    assert [a.text for a in figure.layout.annotations] == ["r2", "mae", "max_error"]
    assert figure.layout.yaxis.matches is None and figure.layout.yaxis.range is None
    colours = {t.name: set() for t in figure.data}
    for trace in figure.data:
        colours[trace.name].add(trace.marker.color)
    assert all(len(c) == 1 for c in colours.values()) and len({c.pop() for c in colours.values()}) == 2
    assert sum(bool(t.showlegend) for t in figure.data) == 2  # one legend entry per version
