"""The dashboard, driven headless with Streamlit's AppTest: every page, every main path.

AppTest runs the real app script in this process against a temporary store ($MODEL_STORE).
A ``st.switch_page`` inside the app is followed by an explicit ``at.switch_page`` (AppTest
keeps its own idea of the current page between runs).
"""

from __future__ import annotations

import io
import os
import pickle
import re
from pathlib import Path

import joblib
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app_pages.first_row import NAMES_LABEL
from app_pages.state import EXPORTS, OWNER
from core import Store, load_dataset, train

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
TRAIN, MODELS, DETAIL, UPLOAD, FORMATS = (
    "app_pages/train.py",
    "app_pages/models.py",
    "app_pages/model_detail.py",
    "app_pages/upload.py",
    "app_pages/formats.py",
)
PAGES = (TRAIN, MODELS, DETAIL, UPLOAD, FORMATS)
TITLES = {
    TRAIN: "Train a model",
    MODELS: "Models",
    DETAIL: "Model detail",
    UPLOAD: "Upload a model",
    FORMATS: "Formats",
}


@pytest.fixture(autouse=True)
def fresh_app(monkeypatch, tmp_path):
    """A store of its own per test, and no cache carried over from another test."""
    monkeypatch.setenv("MODEL_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("MODELSHELF_DEMO", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def app_store(tmp_path):
    s = Store(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture(scope="module")
def iris_results():
    data = load_dataset("builtin:iris")
    return [train(data, "decision_tree", seed=seed) for seed in (1, 2)]


@pytest.fixture
def filled(app_store, iris_results):
    for result in iris_results:
        app_store.save_trained(result, "iris", tags=["demo"])
    return app_store


def open_page(page: str, **query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.query_params.update(query)
    at.switch_page(page).run()
    return at


def open_tab(at: AppTest, tab: str) -> AppTest:
    """Choose one of Model detail's tabs (only the open one is drawn)."""
    at.session_state["detail_tab"] = tab
    return at.run()


def ok(at: AppTest) -> None:
    """No exception escaped and no error was shown."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def labels(elements) -> list[str]:
    return [e.label for e in elements]


def metric(at: AppTest, label: str) -> str:
    """A metric's value as the browser shows it (Markdown backslash-escapes resolved)."""
    return re.sub(r"\\(.)", r"\1", next(m.value for m in at.metric if m.label == label))


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_an_empty_store(page):
    at = open_page(page)
    ok(at)
    assert at.title[0].value == TITLES[page]
    assert metric(at, "Versions") == "0"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_a_store_with_models(filled, page):
    at = open_page(page)
    ok(at)
    assert at.title[0].value == TITLES[page]
    assert metric(at, "Versions") == "2"
    assert any(str(filled.location) in c.value for c in at.sidebar.code)


def test_train_save_list_open_and_rescore(app_store):
    at = open_page(TRAIN)
    at.selectbox(key="train_estimator").set_value("random_forest").run()
    assert "n_estimators" in labels(at.number_input)  # widgets built from the schema
    at.number_input(key="param_random_forest_n_estimators").set_value(25)
    at.button[labels(at.button).index("Train")].click().run()
    ok(at)
    accuracy = float(metric(at, "Accuracy"))
    at.text_input[labels(at.text_input).index("Name")].set_value("flowers")
    at.text_input[labels(at.text_input).index("Tags, comma-separated")].set_value("first, rf")
    at.button[labels(at.button).index("Save")].click().run()
    ok(at)
    record = app_store.get("flowers:1")
    assert record["params"]["n_estimators"] == 25
    assert record["tags"] == ["first", "rf"]
    assert record["metrics"]["accuracy"] == pytest.approx(accuracy, abs=5e-5)

    at.switch_page(MODELS).run()
    ok(at)
    table = at.dataframe[0].value
    assert list(table["ref"]) == ["flowers:1"]
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    at.button(key="open_selected").click().run()
    assert at.query_params["model"] == "flowers:1"

    at.switch_page(DETAIL).run()
    ok(at)
    assert metric(at, "Accuracy") == f"{record['metrics']['accuracy']:.4f}"
    open_tab(at, "Re-score")
    at.button(key="rescore").click().run()
    ok(at)
    assert float(metric(at, "Reproduced accuracy")) == pytest.approx(record["metrics"]["accuracy"], abs=5e-5)
    assert metric(at, "Reproduced") == "yes"
    assert metric(at, "Environment") == "ok"


def test_every_estimator_gets_widgets_from_its_schema():
    from core.catalog import CATALOG

    at = open_page(TRAIN)
    kinds = {"int": "number_input", "float": "number_input", "bool": "checkbox", "choice": "selectbox"}
    for key, spec in CATALOG.items():
        at.selectbox(key="train_estimator").set_value(key).run()
        ok(at)
        for param in spec.params:
            widget = getattr(at, kinds[param.kind])(key=f"param_{key}_{param.name}")
            assert widget.value == param.default, (key, param.name)
            if param.kind == "choice":
                assert len(widget.options) == len(param.choices)
                if None in param.choices:
                    assert "None" in widget.options
            if param.kind in ("int", "float") and param.low is not None:
                assert widget.min == param.low and widget.max == param.high


def test_training_results_survive_a_visit_to_another_page():
    at = open_page(TRAIN)
    at.selectbox(key="train_estimator").set_value("naive_bayes").run()
    at.button[labels(at.button).index("Train")].click().run()
    shown = metric(at, "Accuracy")
    at.switch_page(MODELS).run()
    at.switch_page(TRAIN).run()
    ok(at)
    assert metric(at, "Accuracy") == shown


def test_training_warnings_are_shown():
    at = open_page(TRAIN)
    at.selectbox(key="train_builtin").set_value("breast_cancer").run()
    at.number_input(key="param_logistic_regression_max_iter").set_value(5)
    at.button[labels(at.button).index("Train")].click().run()
    assert any("ConvergenceWarning" in w.value for w in at.warning)


def test_saving_under_a_bad_name_shows_one_error_and_stores_nothing(app_store):
    at = open_page(TRAIN)
    at.selectbox(key="train_estimator").set_value("naive_bayes").run()
    at.button[labels(at.button).index("Train")].click().run()
    at.text_input[labels(at.text_input).index("Name")].set_value("../escape")
    at.button[labels(at.button).index("Save")].click().run()
    assert not at.exception
    assert len(at.error) == 1 and "Invalid model name" in at.error[0].value
    assert app_store.count() == 0


def test_a_csv_that_is_not_a_table_shows_an_error():
    at = open_page(TRAIN)
    at.radio(key="train_source").set_value("Upload a CSV").run()
    at.file_uploader(key="train_csv").upload("broken.csv", b"\x00\x01\x02", "text/csv")
    at.run()
    assert not at.exception
    assert len(at.error) == 1


def test_an_unreachable_url_shows_an_error_not_a_traceback():
    at = open_page(TRAIN)
    at.radio(key="train_source").set_value("CSV from a URL").run()
    at.text_input(key="train_url").set_value("http://127.0.0.1:9/nothing.csv").run()
    assert not at.exception
    assert len(at.error) == 1 and "Could not read the URL" in at.error[0].value


def test_an_uploaded_csv_trains_with_the_chosen_target(pima_path):
    at = open_page(TRAIN)
    at.radio(key="train_source").set_value("Upload a CSV").run()
    at.file_uploader(key="train_csv").upload("pima.csv", pima_path.read_bytes(), "text/csv")
    at.run()  # the first row looks like data: "First row is data" is preselected, names may be given
    names = at.text_input[labels(at.text_input).index(NAMES_LABEL)]
    names.set_value("preg,plas,pres,skin,test,mass,pedi,age,class").run()
    ok(at)
    assert at.selectbox(key="train_target").value == "class"
    at.selectbox(key="param_logistic_regression_solver").set_value("liblinear")
    at.button[labels(at.button).index("Train")].click().run()
    ok(at)
    assert metric(at, "Accuracy") == "0.7559"  # the tutorial's figure, reproduced through the page


def test_models_page_pages_filters_and_sorts_in_sql(app_store, iris_results):
    model = iris_results[0]
    for _ in range(52):
        app_store.save_trained(model, "many")
    app_store.save_trained(iris_results[1], "other", tags=["special"])
    at = open_page(MODELS)
    ok(at)
    assert len(at.dataframe[0].value) == 50
    at.number_input(key="models_page").set_value(2).run()
    assert len(at.dataframe[0].value) == 3
    at.text_input(key="models_tag").set_value("special").run()
    assert list(at.dataframe[0].value["ref"]) == ["other:1"]
    at.text_input(key="models_tag").set_value("").run()
    at.text_input(key="models_name").set_value("man").run()
    at.selectbox(key="models_order").set_value("Ascending").run()
    table = at.dataframe[0].value
    assert list(table["ref"][:2]) == ["many:1", "many:2"] and "other:1" not in set(table["ref"])
    assert table["size"].str.endswith("kB").all()


def test_selecting_two_versions_compares_them(filled):
    at = open_page(MODELS)
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    at.run()
    ok(at)
    comparison = at.dataframe[1].value
    assert sorted(comparison["ref"]) == ["iris:1", "iris:2"]
    assert comparison.set_index("ref").loc["iris:1", "accuracy"] == filled.get("iris:1")["metrics"]["accuracy"]
    assert at.get("plotly_chart"), "the metrics chart is missing"


def test_models_page_never_opens_a_model_file(filled, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the Models page opened a model file")

    monkeypatch.setattr(Store, "load", refuse)
    monkeypatch.setattr(Store, "read_artifact", refuse)
    at = open_page(MODELS)
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    at.run()
    ok(at)
    assert len(at.dataframe) == 4  # the list, the metrics, the hyperparameter diff, data set and warnings


def test_detail_deep_link_and_a_bad_link(filled):
    at = open_page(DETAIL, model="iris:1")
    ok(at)
    assert "iris" in at.header[0].value and "1" in at.header[0].value
    assert at.selectbox(key="detail_version_iris").value == 1
    assert metric(at, "Accuracy") == f"{filled.get('iris:1')['metrics']['accuracy']:.4f}"
    environment = at.dataframe[0].value
    assert set(environment["status"]) == {"✓ ok"} and "scikit-learn" in set(environment["package"])

    at = open_page(DETAIL, model="iris:9")
    assert not at.exception
    assert len(at.error) == 1 and "no version 9" in at.error[0].value


def _iframes(at: AppTest) -> list[str]:
    return [e.proto.src for e in at.main if getattr(e, "type", None) == "iframe"]


def test_detail_draws_the_pipeline_diagram_on_demand_in_an_isolated_frame(filled):
    import base64

    at = open_page(DETAIL, model="iris:1")
    assert not _iframes(at)  # nothing loaded until asked
    at.toggle(key="diagram_iris:1").set_value(True).run()
    ok(at)
    (src,) = _iframes(at)
    assert src.startswith("data:text/html;charset=utf-8;base64,")  # an opaque origin: cannot reach the app
    html = base64.b64decode(src.split(",", 1)[1]).decode()
    assert "DecisionTreeClassifier" in html and "ColumnTransformer" in html


def test_detail_predicts_one_row_and_a_csv_batch(filled):
    at = open_tab(open_page(DETAIL, model="iris:2"), "Predict")
    at.button[labels(at.button).index("Predict")].click().run()
    ok(at)
    assert metric(at, "Prediction") in {"0", "1", "2"}
    assert any("Computed with" in c.value for c in at.caption)
    X, _ = filled.evaluation_set("iris:2")
    at.file_uploader(key="batch_iris:2").upload("rows.csv", X.head(7).to_csv(index=False).encode(), "text/csv")
    at.run()
    ok(at)
    predictions = at.dataframe[-1].value
    assert len(predictions) == 7 and "prediction" in predictions.columns
    assert "Download iris-v2.predictions.csv (the 7 predictions, CSV)" in labels(at.download_button)


def test_detail_offers_model_and_metadata_downloads(filled):
    at = open_tab(open_page(DETAIL, model="iris:1"), "Download")
    ok(at)
    assert {d.label.split(" (")[0] for d in at.download_button} == {
        "Download iris-v1.pkl",  # the stored file: saved in the default format, a pickle
        "Download iris-v1.metadata.json",
    }


def test_detail_exports_onnx_and_shows_how_to_load_it(filled):
    at = open_tab(open_page(DETAIL, model="iris:1"), "Download")
    at.selectbox(key="export_fmt_iris:1").set_value("onnx").run()
    assert any("onnxruntime" in c.value for c in at.code)  # the snippet for this format
    at.button(key="export_iris:1_onnx").click().run()
    ok(at)
    assert any(d.label.startswith("Download iris-v1.onnx") for d in at.download_button)
    assert filled.get("iris:1")["exports"]["onnx"]["status"] == "ok"
    # A session keeps the one file it prepared last: before, every export stayed in its state.
    at.selectbox(key="export_fmt_iris:1").set_value("skops").run()
    at.button(key="export_iris:1_skops").click().run()
    ok(at)
    assert list(at.session_state[EXPORTS]) == [("iris:1", "skops")]
    assert any(d.label.startswith("Download iris-v1.skops") for d in at.download_button)


def test_a_bundle_goes_out_of_one_store_and_into_another(filled, tmp_path, monkeypatch):
    from core.portable.exports import export_version

    bundle = export_version(filled, "iris:2", "bundle").data
    monkeypatch.setenv("MODEL_STORE", str(tmp_path / "other"))
    st.cache_resource.clear()
    at = open_page(UPLOAD)
    at.file_uploader(key="upload_model").upload("iris-v2.zip", bundle, "application/zip")
    at.run()
    at.button[labels(at.button).index("Add to the store")].click().run()
    ok(at)
    other = Store(tmp_path / "other")
    try:
        record = other.get("iris-v2:1")
        assert record["sha256"] == filled.get("iris:2")["sha256"]
        assert metric(at, "Accuracy") == f"{filled.get('iris:2')['metrics']['accuracy']:.4f}"
    finally:
        other.close()


def test_a_bundles_claimed_accuracy_is_shown_as_a_claim_and_sorts_last(filled, tmp_path, monkeypatch):
    import json
    import zipfile

    from core.formats import sha256_bytes
    from core.portable.exports import export_version
    from tests.portable_support import rezip

    bundle = export_version(filled, "iris:2", "bundle").data
    archive = zipfile.ZipFile(io.BytesIO(bundle))
    manifest = json.loads(archive.read("manifest.json"))
    metadata = json.loads(archive.read("metadata.json"))
    metadata["metrics"]["accuracy"] = 1.0
    claims = json.dumps(metadata).encode()
    manifest["files"]["metadata.json"]["sha256"] = sha256_bytes(claims)
    del manifest["files"]["evaluation.parquet"]
    forged = rezip(
        bundle, {"metadata.json": claims, "evaluation.parquet": None, "manifest.json": json.dumps(manifest).encode()}
    )
    at = open_page(UPLOAD)
    assert any("sha256s are the sender's own" in c.value for c in at.caption)
    at.file_uploader(key="upload_model").upload("claims.zip", forged, "application/zip")
    at.run()
    at.button[labels(at.button).index("Add to the store")].click().run()
    ok(at)
    assert metric(at, "Accuracy (claimed)") == "1.0000"
    assert "Claimed by the sender, not measured here." in [c.value for c in at.caption]
    at = open_page(DETAIL, model="claims:1")
    ok(at)
    assert metric(at, "Accuracy (claimed)") == "1.0000"
    assert not [m for m in at.metric if m.label == "Accuracy"]
    assert filled.table(sort="accuracy")["ref"].iloc[-1] == "claims:1"


def test_manage_sets_alias_tags_and_note_as_plain_text(filled):
    at = open_tab(open_page(DETAIL, model="iris:1"), "Manage")
    at.text_input[labels(at.text_input).index("Alias (e.g. production)")].set_value("production")
    at.button[labels(at.button).index("Set alias")].click().run()
    ok(at)
    at.text_input[labels(at.text_input).index("Add tags, comma-separated")].set_value("good")
    at.multiselect[0].set_value(["demo"])
    at.button[labels(at.button).index("Update tags")].click().run()
    ok(at)
    note = "<img src=x onerror=alert(1)> [click](http://evil.example)"
    at.text_area[0].set_value(note)
    at.button[labels(at.button).index("Save note")].click().run()
    ok(at)
    record = filled.get("iris:1")
    assert record["aliases"] == ["production"] and record["tags"] == ["good"] and record["note"] == note
    open_tab(at, "Overview")
    assert f"Note: {note}" in [t.value for t in at.text]  # st.text: shown, never interpreted
    assert not any(note in m.value for m in at.markdown)


def test_a_bad_alias_shows_one_error_and_changes_nothing(filled):
    at = open_tab(open_page(DETAIL, model="iris:1"), "Manage")
    at.text_input[labels(at.text_input).index("Alias (e.g. production)")].set_value("1 bad alias")
    at.button[labels(at.button).index("Set alias")].click().run()
    assert not at.exception
    assert len(at.error) == 1 and "Invalid alias" in at.error[0].value
    assert filled.get("iris:1")["aliases"] == []


def test_delete_asks_first_then_frees_the_files(filled):
    at = open_tab(open_page(DETAIL, model="iris:2"), "Manage")
    at.button(key="delete").click().run()
    ok(at)
    assert filled.count() == 2  # nothing yet: the dialog asks first
    at.button(key="confirm_delete").click().run()
    ok(at)
    assert filled.count() == 1
    assert any("Deleted iris" in s.value and "freed" in s.value for s in at.success)
    assert at.selectbox(key="detail_version_iris").options == ["1"]  # the deleted iris:2 is not offered


def test_an_alias_link_opens_its_version_on_any_page(filled):
    filled.set_alias("iris:1", "production")
    at = open_page(FORMATS, model="iris@production")
    ok(at)
    assert at.selectbox(key="formats_version_iris").value == 1


def test_formats_page_measures_every_format(filled):
    at = open_page(FORMATS, model="iris:1")
    at.button(key="compare_formats").click().run()
    ok(at)
    table = at.dataframe[0].value
    assert list(table["label"]) == [
        "pickle",
        "joblib (compress 0)",
        "joblib (compress 3)",
        "joblib (compress 9)",
        "skops",
    ]
    assert table.set_index("label").loc["skops", "safe_for_strangers"]


def test_upload_a_joblib_file_scores_it(app_store, iris_results):
    buffer = io.BytesIO()
    joblib.dump(iris_results[0].model, buffer)
    at = open_page(UPLOAD)
    at.file_uploader(key="upload_model").upload("outside.joblib", buffer.getvalue())
    at.run()
    at.radio(key="upload_data").set_value("Built-in data set")
    at.button[labels(at.button).index("Add to the store")].click().run()
    ok(at)
    record = app_store.get("outside:1")
    assert record["origin"] == "imported"
    assert metric(at, "Format") == "joblib"
    assert metric(at, "Accuracy") == f"{record['metrics']['accuracy']:.4f}"


def test_upload_a_file_from_an_older_scikit_learn_shows_its_version(app_store):
    path = ROOT / "tests" / "fixtures" / "sklearn-1.5.2" / "logistic_regression.z3.joblib"
    at = open_page(UPLOAD)
    at.file_uploader(key="upload_model").upload(path.name, path.read_bytes())
    at.run()
    at.radio(key="upload_data").set_value("Built-in data set")
    at.button[labels(at.button).index("Add to the store")].click().run()
    assert not at.exception
    assert metric(at, "Saved with scikit-learn") == "1.5.2"
    assert metric(at, "Format").startswith("joblib")
    at.button(key="open_uploaded").click().run()
    ref = at.query_params["model"]
    at.switch_page(DETAIL).run()
    environment = at.dataframe[0].value.set_index("package")
    assert environment.loc["scikit-learn", "saved"] == "1.5.2"
    assert environment.loc["scikit-learn", "status"] == "⚠ warning"
    assert app_store.get(ref)["origin"] == "imported"


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_upload_refuses_a_file_that_would_run_code(app_store):
    at = open_page(UPLOAD)
    at.file_uploader(key="upload_model").upload("evil.pkl", pickle.dumps(_RunsCode()))
    at.run()
    at.button[labels(at.button).index("Add to the store")].click().run()
    assert not at.exception and len(at.error) == 1
    assert "system" in at.error[0].value  # core's message names the refused global
    assert app_store.count() == 0 and not at.success


def test_upload_without_a_file_or_with_junk_shows_an_error(app_store):
    at = open_page(UPLOAD)
    at.button[labels(at.button).index("Add to the store")].click().run()
    assert not at.exception and len(at.error) == 1
    at.file_uploader(key="upload_model").upload("junk.joblib", b"not a model at all")
    at.run()
    at.button[labels(at.button).index("Add to the store")].click().run()
    assert not at.exception and len(at.error) == 1
    assert app_store.count() == 0


def _params_json(tmp_path, result) -> dict:
    """The JSON parameters of a trained decision tree, exported from a store of their own."""
    import json

    from core.portable.exports import export_version

    sender = Store(tmp_path / "sender")
    try:
        sender.save_trained(result, "tree")
        return json.loads(export_version(sender, "tree:1", "json").data)
    finally:
        sender.close()


def test_upload_imports_json_parameters(app_store, iris_results, tmp_path):
    import json

    document = _params_json(tmp_path, iris_results[0])
    at = open_page(UPLOAD)
    at.file_uploader(key="upload_model").upload("tree.json", json.dumps(document).encode(), "application/json")
    at.run()
    at.radio(key="upload_data").set_value("Built-in data set")  # JSON parameters carry no evaluation set: ignored
    at.button[labels(at.button).index("Add to the store")].click().run()
    ok(at)
    record = app_store.get("tree:1")
    assert record["origin"] == "imported" and record["imported"]["from"] == "json"
    assert record["estimator"].endswith("DecisionTreeClassifier")
    assert metric(at, "Format") == record["format"] == "pickle" and metric(at, "Accuracy") == "not scored"
    assert any("Rebuilt from its JSON parameters" in c.value for c in at.caption)


def test_upload_refuses_hostile_json_parameters_with_one_line_and_stores_nothing(app_store, iris_results, tmp_path):
    import json

    document = _params_json(tmp_path, iris_results[0])
    document["classes"], document["classes_dtype"] = list(range(9)), "S2000000000"  # 16.8 GiB of labels
    at = open_page(UPLOAD)
    at.file_uploader(key="upload_model").upload("tree.json", json.dumps(document).encode(), "application/json")
    at.run()
    at.button[labels(at.button).index("Add to the store")].click().run()
    assert not at.exception and len(at.error) == 1 and not at.success
    message = at.error[0].value
    assert "S2000000000" in message and "is not one of" in message and "\n" not in message  # one clear line
    assert app_store.count() == 0


def test_predictions_frame_is_what_core_predicts(filled):
    """The batch table on the page is core.frames.predict_table's output, row for row."""
    X, _ = filled.evaluation_set("iris:1")
    expected = filled.predict("iris:1", X.head(3))
    at = open_tab(open_page(DETAIL, model="iris:1"), "Predict")
    at.file_uploader(key="batch_iris:1").upload("rows.csv", X.head(3).to_csv(index=False).encode(), "text/csv")
    at.run()
    shown = at.dataframe[-1].value
    pd.testing.assert_series_equal(
        shown["prediction"].reset_index(drop=True), expected["prediction"].reset_index(drop=True), check_dtype=False
    )


def test_demo_mode_scopes_changes_to_the_session_and_hides_paths(monkeypatch, filled):
    monkeypatch.setenv("MODELSHELF_DEMO", "1")
    at = open_page(TRAIN)
    ok(at)
    assert not at.sidebar.code, "a public demo must not show where the store is"
    at.selectbox(key="train_estimator").set_value("naive_bayes").run()
    at.button[labels(at.button).index("Train")].click().run()
    # A visitor saves as pickle or joblib; skops is built in memory, so it is a download only.
    assert [s.options for s in at.selectbox if s.label == "Format"] == [["pickle", "joblib"]]
    at.text_input[labels(at.text_input).index("Name")].set_value("mine")
    at.button[labels(at.button).index("Save")].click().run()
    ok(at)
    owner = at.session_state[OWNER]
    assert filled.row("mine:1").owner == owner

    # Another owner's (here: the operator's) version offers no controls to change it.
    at.query_params["model"] = "iris:1"
    at.switch_page(DETAIL).run()
    open_tab(at, "Manage")
    ok(at)
    assert "Alias (e.g. production)" not in labels(at.text_input)
    assert any("someone else's" in c.value for c in at.caption)
    assert filled.get("iris:1")["aliases"] == []
    # ... but this session's own version does.
    at.query_params["model"] = "mine:1"
    at.switch_page(DETAIL).run()
    open_tab(at, "Manage")
    at.text_input[labels(at.text_input).index("Alias (e.g. production)")].set_value("mine")
    at.button[labels(at.button).index("Set alias")].click().run()
    ok(at)
    assert filled.get("mine:1")["aliases"] == ["mine"]


def test_demo_quota_refuses_a_save_and_evicts_nothing(monkeypatch, filled):
    monkeypatch.setenv("MODELSHELF_DEMO", "1")
    monkeypatch.setenv("MODELSHELF_DEMO_MAX_VERSIONS", "3")  # the store's whole size: 2 operator + 1 demo
    at = open_page(TRAIN)
    at.selectbox(key="train_estimator").set_value("naive_bayes").run()
    at.button[labels(at.button).index("Train")].click().run()
    at.text_input[labels(at.text_input).index("Name")].set_value("mine")
    at.button[labels(at.button).index("Save")].click().run()
    ok(at)
    at.text_input[labels(at.text_input).index("Name")].set_value("mine-too")  # the same bytes again are a duplicate
    at.button[labels(at.button).index("Save")].click().run()
    assert not at.exception
    assert len(at.error) == 1 and "The demo store is full" in at.error[0].value
    assert list(filled.table(name="mine")["ref"]) == ["mine:1"]  # refused, and nothing was evicted
    assert filled.count(name="iris") == 2
