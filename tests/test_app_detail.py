"""Model detail: only the open tab computes; downloads named alike everywhere; links, warnings, aliases."""

from __future__ import annotations

import importlib
import re

import pytest

from core.cli import main
from core.portable.how_to_load import DOWNLOAD_FORMATS, download_filename
from tests.test_app import DETAIL, app_store, fresh_app, iris_results, labels, ok, open_page, open_tab  # noqa: F401

SNIPPET_FILE = re.compile(r"'([^']+-v\d+\.[a-z.]+)'")


@pytest.fixture
def shelf(app_store, iris_results):  # noqa: F811
    app_store.save_trained(iris_results[0], "iris", tags=["demo"])
    app_store.save(iris_results[1].model, "iris", X_test=iris_results[1].X_test, y_test=iris_results[1].y_test,
                   format="skops", fit_warnings=["ConvergenceWarning: lbfgs failed to converge"])  # fmt: skip
    return app_store


def _download_names(at) -> list[str]:
    return [d.label.removeprefix("Download ").split(" (")[0] for d in at.download_button]


@pytest.mark.parametrize("ref", ["iris:1", "iris:2"])
def test_every_download_is_named_alike_in_the_button_the_snippet_and_the_cli(shelf, ref, tmp_path, monkeypatch):
    record = shelf.get(ref)
    at = open_tab(open_page(DETAIL, model=ref), "Download")
    picker = at.selectbox(key=f"export_fmt_{ref}")
    assert picker.value == record["format"]  # the picker starts on the version's own format
    monkeypatch.chdir(tmp_path)
    names = {download_filename(record, "metadata")}
    for fmt in DOWNLOAD_FORMATS:
        picker.set_value(fmt).run()
        if fmt != record["format"]:
            at.button(key=f"export_{ref}_{fmt}").click().run()
        ok(at)
        button = _download_names(at)[0]
        snippet = at.code[0].value
        assert set(SNIPPET_FILE.findall(snippet)) == {button}, (fmt, snippet)  # the one file, however often named
        assert main(["export", ref, "--to", fmt, "--store", str(shelf.location)]) == 0
        assert (tmp_path / button).is_file() and button == download_filename(record, fmt)
        names.add(button)
    assert names == {f"iris-v{record['version']}.{end}" for end in
                     ("pkl", "joblib", "skops", "onnx", "params.json", "zip", "metadata.json")}  # fmt: skip
    assert _download_names(at)[-1] == download_filename(record, "metadata")


#: One core function each tab calls while it is drawn (patched where the page imports it from);
#: Predict reads the kept rows (``Store.evaluation_set``) for its example row. Re-score and Manage
#: compute nothing until a button is clicked: choosing them must call none of these.
TAB_PROBES = {"Overview": ("core.record", "recorded_score"), "Download": ("core.portable.how_to_load", "how_to_load")}


def test_opening_the_page_computes_only_the_overview_and_a_tab_only_itself(shelf, monkeypatch):
    calls: list[str] = []
    for tab, (module, name) in TAB_PROBES.items():
        target = importlib.import_module(module)
        original = getattr(target, name)

        def probe(*args, _tab=tab, _original=original, **kwargs):
            calls.append(_tab)
            return _original(*args, **kwargs)

        monkeypatch.setattr(target, name, probe)
    kept_rows = type(shelf).evaluation_set

    def reading_kept_rows(store, ref):
        calls.append("Predict")
        return kept_rows(store, ref)

    monkeypatch.setattr(type(shelf), "evaluation_set", reading_kept_rows)
    at = open_page(DETAIL, model="iris:1")
    ok(at)
    assert calls == ["Overview"]
    for tab in ("Download", "Re-score", "Manage", "Predict", "Overview"):
        calls.clear()
        open_tab(at, tab)
        ok(at)
        assert set(calls) == ({tab} if tab in (*TAB_PROBES, "Predict") else set()), tab


def test_the_overview_tables_are_built_once_per_version_for_every_visitor(shelf, monkeypatch):
    """Two sessions opening one version build its tables once (kept as Arrow tables, keyed by the
    file's sha256); another version gets its own. The environment's status reads with a mark."""
    import core.views

    built: list[str] = []
    original = core.views.overview_tables

    def counting(record, compatibility):
        built.append(f"{record['name']}:{record['version']}")
        return original(record, compatibility)

    monkeypatch.setattr(core.views, "overview_tables", counting)
    for _ in range(2):
        at = open_page(DETAIL, model="iris:1")
        ok(at)
    environment = at.dataframe[0].value
    assert set(environment["status"]) == {"✓ ok"} and "scikit-learn" in set(environment["package"])
    ok(open_page(DETAIL, model="iris:2"))
    assert built == ["iris:1", "iris:2"]


def test_a_link_to_a_missing_version_says_so_and_stays(shelf):
    at = open_page(DETAIL, model="iris:9")
    assert not at.exception
    assert len(at.error) == 1 and "iris:9 is not in the store" in at.error[0].value.replace("\\", "")
    assert not at.header and not at.tabs  # no other version shown in its place
    assert at.query_params["model"] == "iris:9"  # the URL is kept
    at.button(key="leave_missing_link").click().run()
    ok(at)
    assert at.header and at.query_params["model"] == "iris:2"  # the user's choice: the picker, on the latest


def test_recorded_warnings_are_at_the_top_of_every_tab(shelf):
    at = open_page(DETAIL, model="iris:2")
    for tab in ("Overview", "Manage"):
        open_tab(at, tab)
        shown = [w.value.replace("\\", "") for w in at.warning][:1]
        assert shown == ["Recorded at training: ConvergenceWarning: lbfgs failed to converge"], tab
    assert not open_page(DETAIL, model="iris:1").warning


def test_an_alias_is_set_and_removed_with_a_toast_each(shelf):
    at = open_tab(open_page(DETAIL, model="iris:1"), "Manage")
    at.text_input[labels(at.text_input).index("Alias (e.g. production)")].set_value("production")
    at.button[labels(at.button).index("Set alias")].click().run()
    ok(at)
    assert shelf.get("iris:1")["aliases"] == ["production"]
    assert [t.value for t in at.toast] == ["@production now points to iris:1."]
    open_tab(at, "Manage")
    at.selectbox[labels(at.selectbox).index("Remove an alias")].set_value("production")
    at.button[labels(at.button).index("Remove alias")].click().run()
    ok(at)
    assert shelf.get("iris:1")["aliases"] == []
    assert [t.value for t in at.toast] == ["Removed @production from iris:1."]


def test_the_one_row_form_draws_the_features_in_their_own_order(app_store):  # noqa: F811
    from core import load_dataset, train

    data = load_dataset("builtin:breast_cancer")  # 30 features: several rows of four
    app_store.save_trained(train(data, "naive_bayes"), "cancer")
    at = open_tab(open_page(DETAIL, model="cancer:1"), "Predict")
    ok(at)
    drawn = [n.label for n in at.number_input if n.key and n.key.startswith("f_cancer:1_")]
    assert drawn == list(app_store.get("cancer:1")["dataset"]["feature_names"])  # stacked on a phone: same order


def test_the_confusion_chart_is_built_once_for_every_visitor(app_store, iris_results, monkeypatch):  # noqa: F811
    """The Overview's chart is kept between sessions (st.cache_resource; no cache is cleared between
    the visitors here), one per version: another version gets its own, the first is not rebuilt."""
    from app_pages import common

    built: list[str] = []
    original = common.confusion_chart_spec

    def counting(cm):
        built.append(cm.to_json())
        return original(cm)

    monkeypatch.setattr(common, "confusion_chart_spec", counting)
    for result in iris_results:
        app_store.save_trained(result, "iris")
    for _ in range(2):  # two visitors, one after the other, each a new session
        ok(open_page(DETAIL, model="iris:1"))
    assert len(built) == 1
    ok(open_page(DETAIL, model="iris:2"))
    ok(open_page(DETAIL, model="iris:1"))
    assert len(built) == 2 and built[0] != built[1]  # iris:2's own matrix, iris:1's kept


def test_every_page_run_takes_its_turn(shelf, monkeypatch):
    """The whole run of a page (sidebar included) happens inside the process's turn gate."""
    from app_pages import common
    from core.turns import TurnGate

    seen: list[str] = []

    class Recording(TurnGate):
        def turn(self):
            seen.append("turn")
            return super().turn()

    monkeypatch.setattr(common, "PAGE_TURNS", Recording())
    at = open_page(DETAIL, model="iris:1")
    ok(at)
    open_tab(at, "Manage")
    ok(at)
    assert len(seen) >= 2 and at.header
