"""``python -m core export|import|env`` and ``predict --engine onnx``: they work, and fail with one line."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.cli import main
from core.portable.bundle import is_bundle
from tests.conftest import PIMA_NAMES


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def shelf(capsys, store_path, pima_path):
    store = ["--store", str(store_path)]
    data = ["--data", str(pima_path), "--names", PIMA_NAMES, "--target", "class"]
    for estimator, name, extra in (
        ("random_forest", "pima", ["--param", "n_estimators=4"]),
        ("svc", "kernel", []),
        ("knn", "near", []),
    ):
        code, _, err = run(capsys, "train", *data, "--estimator", estimator, *extra, "--name", name, *store)
        assert code == 0, err
    return store


@pytest.mark.parametrize("fmt", ["onnx", "json", "bundle", "pickle", "joblib", "skops"])
def test_export_writes_the_file(capsys, shelf, tmp_path, fmt):
    target = tmp_path / f"out.{fmt}"
    code, out, err = run(capsys, "export", "pima:1", "--to", fmt, "-o", str(target), *shelf)
    assert code == 0, err
    assert out.startswith(f"Wrote pima:1 as {fmt} to {target}")
    assert target.stat().st_size > 0
    if fmt == "onnx":
        assert "parity       labels equal on 254 evaluation rows" in out
    if fmt == "json":
        assert json.loads(target.read_text())["schema_version"] == 1
    if fmt == "bundle":
        assert is_bundle(target.read_bytes())
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_export_json_payload_and_default_file_name(capsys, shelf, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "export", "pima", "--to", "onnx", "--json", *shelf)
    payload = json.loads(out)
    assert code == 0 and payload["output"] == "pima-v1.onnx" and (tmp_path / "pima-v1.onnx").exists()
    assert payload["parity"]["passed"] is True and payload["tolerance"] == 1e-4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "nope", "--to", "onnx"], "error: No model named 'nope'"),
        (["export", "pima", "--to", "tflite"], "error: argument --to: invalid choice: 'tflite'"),
        (["export", "pima", "--to", "onnx", "-o", "/no/such/folder/x.onnx"], "error: The folder /no/such/folder"),
        (["import", "missing.zip"], "error: No such file: missing.zip"),
        (["env", "pima:9"], "error: 'pima' has no version 9"),
        (["predict", "pima", "--data", "builtin:iris", "--engine", "onnx"], "error: The data lacks"),
    ],
)
def test_failures_are_one_line(capsys, shelf, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv, *shelf)
    assert code == 1 and out == ""
    assert err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "x.json").exists()


def test_json_export_of_schema_2_kinds_and_a_refusal_in_one_line(capsys, shelf, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "export", "kernel", "--to", "json", "-o", "svc.json", *shelf)
    assert code == 0, err
    document = json.loads((tmp_path / "svc.json").read_text())
    assert document["schema_version"] == 2 and document["model"]["type"] == "svc"
    # A k-NN file carries its training rows: above the cap it is refused, with the reason.
    monkeypatch.setattr("core.portable.params_export.KNN_MAX_VALUES", 100)
    code, out, err = run(capsys, "export", "near", "--to", "json", "-o", "x.json", *shelf)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("error: not exportable as JSON parameters: KNeighborsClassifier: its training set has ")
    assert not (tmp_path / "x.json").exists()


def test_import_without_name_needs_a_bundle(capsys, shelf, tmp_path):
    model = tmp_path / "model.zip"
    code, _, _ = run(capsys, "export", "pima", "--to", "skops", "-o", str(model), *shelf)
    assert code == 0
    code, out, err = run(capsys, "import", str(model), *shelf)
    assert code == 1 and out == "" and err.startswith("error: --name is required to import a model file")


def test_env_prints_pins_and_differences(capsys, shelf):
    code, out, err = run(capsys, "env", "pima", *shelf)
    assert code == 0, err
    assert "scikit-learn==" in out and "This environment matches the one pima:1 was saved in." in out
    code, out, _ = run(capsys, "env", "pima", "--json", *shelf)
    assert json.loads(out)["status"] == "ok"


def test_predict_engine_onnx_matches_sklearn(capsys, shelf, tmp_path, pima_path):
    rows = pd.read_csv(pima_path, header=None, names=PIMA_NAMES.split(","))
    rows.drop(columns=["class"]).head(40).to_csv(tmp_path / "rows.csv", index=False)
    outputs = {}
    for engine in ("sklearn", "onnx"):
        target = tmp_path / f"{engine}.csv"
        argv = ["predict", "pima", "--data", str(tmp_path / "rows.csv"), "--engine", engine, "-o", str(target)]
        code, _, err = run(capsys, *argv, *shelf)
        assert code == 0, err
        outputs[engine] = pd.read_csv(target)
    pd.testing.assert_series_equal(outputs["onnx"]["prediction"], outputs["sklearn"]["prediction"])
    assert list(outputs["onnx"].columns) == list(outputs["sklearn"].columns)


def test_import_json_parameters_rebuilds_the_model_in_another_store(capsys, shelf, tmp_path, pima_path):
    exported = tmp_path / "pima.json"
    assert run(capsys, "export", "pima", "--to", "json", "-o", str(exported), *shelf)[0] == 0
    other = ["--store", str(tmp_path / "other")]
    code, out, err = run(capsys, "import", str(exported), "--name", "rebuilt", *other)
    assert code == 0, err
    assert out.startswith("Rebuilt sklearn.ensemble.RandomForestClassifier from ")
    data = ["--data", str(pima_path), "--names", PIMA_NAMES]
    original = json.loads(run(capsys, "predict", "pima", *data, "--json", *shelf)[1])
    rebuilt = json.loads(run(capsys, "predict", "rebuilt", *data, "--json", *other)[1])
    assert len(rebuilt) == 768
    assert [r["prediction"] for r in rebuilt] == [r["prediction"] for r in original]
    assert [r["proba_1"] for r in rebuilt] == [r["proba_1"] for r in original]
    record = json.loads(run(capsys, "show", "rebuilt", "--json", *other)[1])
    assert record["origin"] == "imported" and record["imported"]["from"] == "json"
    code, _, err = run(capsys, "import", str(exported), *other)
    assert code == 1 and err.startswith("error: --name is required")


def test_a_parameter_file_from_a_newer_modelshelf_says_so(capsys, shelf, tmp_path):
    exported = tmp_path / "pima.json"
    assert run(capsys, "export", "pima", "--to", "json", "-o", str(exported), *shelf)[0] == 0
    document = json.loads(exported.read_text())
    exported.write_text(json.dumps(document | {"schema_version": 99}))
    other = ["--store", str(tmp_path / "other")]
    code, _, err = run(capsys, "import", str(exported), "--name", "future", *other)
    assert code == 1 and "Unsupported schema_version 99" in err and err.count("\n") == 1
