"""Train page: a result belongs to the inputs that made it; its Save form starts fresh; no duplicate copies."""

from __future__ import annotations

import re

from tests.test_app import TRAIN, UPLOAD, app_store, fresh_app, labels, ok, open_page  # noqa: F401


def unescape(text: str) -> str:
    """Text as the browser shows it (Markdown backslash-escapes resolved)."""
    return re.sub(r"\\(.)", r"\1", text)


def _train(at, estimator: str | None = None):
    if estimator:
        at.selectbox(key="train_estimator").set_value(estimator).run()
    at.button[labels(at.button).index("Train")].click().run()
    ok(at)
    return at


def _save_button(at):
    return at.button[labels(at.button).index("Save")]


def _stale(at) -> bool:
    marked = any(w.value.startswith("Out of date") for w in at.warning)
    assert marked == _save_button(at).disabled  # the marker and the disabled Save go together
    return marked


def _field(at, label: str):
    return at.text_input[labels(at.text_input).index(label)]


def test_a_fresh_result_is_current_and_any_change_of_its_inputs_marks_it_out_of_date():
    at = _train(open_page(TRAIN), "naive_bayes")
    assert not _stale(at)
    at.selectbox(key="train_estimator").set_value("decision_tree").run()
    assert _stale(at)
    at.selectbox(key="train_estimator").set_value("naive_bayes").run()
    assert not _stale(at)  # back to what made it
    at.selectbox(key="train_target").set_value(at.selectbox(key="train_target").options[0]).run()
    assert _stale(at)
    at.selectbox(key="train_target").set_value("target").run()
    at.radio(key="train_task").set_value("regression").run()
    assert _stale(at)
    at.radio(key="train_task").set_value("auto").run()
    at.selectbox(key="train_estimator").set_value("naive_bayes").run()
    at.selectbox(key="train_builtin").set_value("wine").run()
    assert _stale(at)


def test_a_failed_url_marks_the_previous_result_out_of_date_and_disables_its_save(app_store):  # noqa: F811
    at = _train(open_page(TRAIN), "naive_bayes")
    at.radio(key="train_source").set_value("CSV from a URL").run()
    at.text_input(key="train_url").set_value("http://127.0.0.1:9/nothing.csv").run()
    assert len(at.error) == 1 and _stale(at)  # AppTest, like a browser, cannot click the disabled Save


def test_a_new_result_starts_its_save_form_afresh_with_a_suggested_name():
    at = _train(open_page(TRAIN), "logistic_regression")
    assert _field(at, "Name").value == "iris-logistic-regression"
    _field(at, "Name").set_value("mine")
    _field(at, "Tags, comma-separated").set_value("lbfgs")
    at.text_area[0].set_value("the lbfgs one").run()
    at.selectbox(key="param_logistic_regression_solver").set_value("newton-cg")
    _train(at)
    assert not _stale(at)
    assert _field(at, "Name").value == "iris-logistic-regression"
    assert _field(at, "Tags, comma-separated").value == "" and at.text_area[0].value == ""


def test_saving_the_same_model_twice_offers_the_first_instead_of_a_copy(app_store):  # noqa: F811
    at = _train(open_page(TRAIN), "naive_bayes")
    _save_button(at).click().run()
    ok(at)
    assert [t.value for t in at.toast] == ["Saved as iris-naive-bayes:1."]
    _save_button(at).click().run()
    ok(at)
    assert app_store.versions("iris-naive-bayes") == [1]
    assert any("identical to iris-naive-bayes:1 " in unescape(i.value) for i in at.info)
    at.button(key="open_duplicate").click().run()
    assert at.query_params["model"] == "iris-naive-bayes:1"


def _in_order(node) -> list:
    """Every element under ``node``, in the order the page draws them."""
    children = getattr(node, "children", None)
    if not children:
        return [node]
    return [leaf for key in sorted(children) for leaf in _in_order(children[key])]


def test_an_upload_error_is_drawn_under_the_uploader_above_the_form(app_store):  # noqa: F811
    at = open_page(UPLOAD)
    at.file_uploader(key="upload_model").upload("junk.joblib", b"not a model at all")
    at.run()
    at.button[labels(at.button).index("Add to the store")].click().run()
    drawn = [type(e).__name__ for e in _in_order(at.main)]
    assert drawn.count("Error") == 1
    assert drawn.index("FileUploader") < drawn.index("Error") < drawn.index("Radio")  # before the data set choice
    assert app_store.count() == 0


def test_uploading_a_stored_file_again_offers_that_version_instead_of_a_copy(app_store):  # noqa: F811
    from core import load_dataset, train

    app_store.save_trained(train(load_dataset("builtin:iris"), "naive_bayes"), "outside")
    at = open_page(UPLOAD)
    at.file_uploader(key="upload_model").upload("outside.joblib", app_store.read_artifact("outside:1"))
    at.run()
    at.button[labels(at.button).index("Add to the store")].click().run()
    ok(at)
    assert app_store.versions("outside") == [1] and not at.success
    assert any("identical to outside:1 " in unescape(i.value) for i in at.info)
    at.button(key="open_duplicate_upload").click().run()
    assert at.query_params["model"] == "outside:1"


def test_changing_the_first_row_choice_or_the_column_names_marks_the_result_out_of_date(pima_path):
    from app_pages.first_row import CHOICES, LABEL, NAMES_LABEL

    at = open_page(TRAIN)
    at.radio(key="train_source").set_value("Upload a CSV").run()
    at.file_uploader(key="train_csv").upload("pima.csv", pima_path.read_bytes(), "text/csv")
    _train(at.run(), "naive_bayes")
    assert not _stale(at)
    _field(at, NAMES_LABEL).set_value("a,b,c,d,e,f,g,h,class").run()
    at.selectbox(key="train_target").set_value("class").run()
    assert _stale(at)
    _train(at)
    assert not _stale(at)
    next(r for r in at.radio if r.label == LABEL).set_value(CHOICES[0]).run()
    assert _stale(at)
    next(r for r in at.radio if r.label == LABEL).set_value(CHOICES[1]).run()
    _field(at, NAMES_LABEL).set_value("a,b,c,d,e,f,g,h,class").run()
    at.selectbox(key="train_target").set_value("class").run()
    assert not _stale(at)  # back to what made it
    shorter = b"".join(pima_path.read_bytes().splitlines(keepends=True)[:500])
    at.file_uploader(key="train_csv").upload("pima.csv", shorter, "text/csv")  # another file, the same name
    at.run()
    assert _stale(at)


def test_an_upload_is_confirmed_by_a_toast_and_stays_stated_in_place(app_store, tmp_path):  # noqa: F811
    from core import load_dataset, train

    outside = tmp_path / "outside.joblib"
    app_store.save_trained(train(load_dataset("builtin:iris"), "naive_bayes"), "elsewhere")
    outside.write_bytes(app_store.read_artifact("elsewhere:1"))
    at = open_page(UPLOAD)
    at.file_uploader(key="upload_model").upload("outside.joblib", outside.read_bytes())
    at.run()
    at.button[labels(at.button).index("Add to the store")].click().run()
    ok(at)
    assert [t.value for t in at.toast] == ["Added as outside:1."]
    assert [unescape(s.value) for s in at.success] == ["The file is stored as outside:1."]
