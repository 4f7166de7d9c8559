"""The Train and Upload pages ask whether a CSV's first row is names or data, preselected by detection.

Before: uploading the headerless Pima file without typing names made its first row the header
(767 rows, a target called "1", accuracy 0.7677). The bytes here are the shipped CSV's.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import joblib
import pytest

from app_pages.first_row import CHOICES, DETECTED, LABEL
from core import load_dataset, train
from core.cli import main
from core.record import VersionRecord
from core.store import Store
from tests.conftest import PIMA, TUTORIAL_ACCURACY
from tests.test_app import TRAIN, UPLOAD, fresh_app, labels, ok, open_page  # noqa: F401 (fresh_app: autouse fixture)


def _stored(tmp_path: Path, ref: str) -> VersionRecord | None:
    """A version of the store the app used ($MODEL_STORE, set by ``fresh_app``), None when there is none."""
    store = Store(tmp_path / "store")
    try:
        return store.get(ref) if store.count() else None
    finally:
        store.close()


def _radio(at):
    return next(r for r in at.radio if r.label == LABEL)


def _cli(tmp_path: Path, capsys, *argv: str) -> dict:
    """The record the command line makes of the same data (a store of its own)."""
    assert main(["--store", str(tmp_path / "cli-store"), "--json", *argv]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _upload_to_train(at, data: bytes, name: str = "pima.csv"):
    at.radio(key="train_source").set_value("Upload a CSV").run()
    at.file_uploader(key="train_csv").upload(name, data, "text/csv")
    return at.run()


def test_train_page_reads_a_headerless_upload_as_data_and_matches_the_cli(tmp_path, capsys):
    at = _upload_to_train(open_page(TRAIN), PIMA.read_bytes())
    ok(at)
    assert _radio(at).value == CHOICES[1]
    assert DETECTED["none"] in [c.value for c in at.caption]
    assert any(e.label == "Preview: 768 rows, 9 columns" for e in at.expander)
    assert at.selectbox(key="train_target").value == "column_9"  # the last column
    at.selectbox(key="param_logistic_regression_solver").set_value("liblinear")
    at.button[labels(at.button).index("Train")].click().run()
    ok(at)
    at.button[labels(at.button).index("Save")].click().run()
    ok(at)
    saved = _stored(tmp_path, "pima-logistic-regression")
    assert saved is not None
    cli = _cli(tmp_path, capsys, "train", "--data", str(PIMA), "--no-header", "--estimator", "logistic_regression",
               "--param", "solver=liblinear", "--test-size", "0.33", "--seed", "7", "--name", "pima")  # fmt: skip
    assert saved["dataset"]["n_rows"] == cli["dataset"]["n_rows"] == 768
    assert saved["dataset"]["target"] == cli["dataset"]["target"] == "column_9"
    assert saved["metrics"]["accuracy"] == cli["metrics"]["accuracy"] == TUTORIAL_ACCURACY


def test_train_page_lets_the_first_row_be_forced_as_names():
    at = _upload_to_train(open_page(TRAIN), PIMA.read_bytes())
    _radio(at).set_value(CHOICES[0]).run()
    ok(at)
    assert any(e.label == "Preview: 767 rows, 9 columns" for e in at.expander)  # the choice is the user's
    assert at.selectbox(key="train_target").value == "1"


def test_train_page_preselects_names_for_a_file_with_a_header():
    at = _upload_to_train(open_page(TRAIN), b"a,b,label\n1,2,x\n3,4,y\n5,6,x\n", "named.csv")
    ok(at)
    assert _radio(at).value == CHOICES[0]
    assert DETECTED["first-row"] in [c.value for c in at.caption]
    assert at.selectbox(key="train_target").value == "label"


def test_upload_page_scores_on_a_headerless_upload_as_the_cli_does(tmp_path, capsys):
    data = PIMA.read_bytes()
    model = train(load_dataset(data, header="none"), "logistic_regression", {"solver": "liblinear"}).model
    model_file = tmp_path / "outside.joblib"
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    model_file.write_bytes(buffer.getvalue())

    at = open_page(UPLOAD)
    at.file_uploader(key="upload_model").upload("outside.joblib", buffer.getvalue())
    at.radio(key="upload_data").set_value("Upload a CSV").run()
    at.file_uploader(key="upload_csv").upload("pima.csv", data, "text/csv")
    at.run()
    ok(at)
    assert _radio(at).value == CHOICES[1] and DETECTED["none"] in [c.value for c in at.caption]
    at.button[labels(at.button).index("Add to the store")].click().run()
    ok(at)
    record = _stored(tmp_path, "outside:1")
    assert record is not None
    cli = _cli(tmp_path, capsys, "import", str(model_file), "--name", "outside", "--data", str(PIMA), "--no-header")
    assert record["dataset"]["n_rows"] == cli["dataset"]["n_rows"] == 768
    assert record["dataset"]["target"] == "column_9"
    assert record["metrics"]["accuracy"] == cli["metrics"]["accuracy"]
    assert record["split"]["n_test"] == 254


@pytest.mark.parametrize("choice", CHOICES)
def test_upload_page_takes_the_users_choice(tmp_path, choice):
    model = train(load_dataset("builtin:iris"), "decision_tree", seed=1).model
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    at = open_page(UPLOAD)
    at.file_uploader(key="upload_model").upload("tree.joblib", buffer.getvalue())
    at.radio(key="upload_data").set_value("Upload a CSV").run()
    at.file_uploader(key="upload_csv").upload("rows.csv", PIMA.read_bytes(), "text/csv")
    at.run()
    _radio(at).set_value(choice).run()
    at.button[labels(at.button).index("Add to the store")].click().run()
    assert not at.exception
    # Iris's tree cannot score Pima's 8 columns either way: one error, nothing stored.
    assert len(at.error) == 1 and _stored(tmp_path, "tree") is None
