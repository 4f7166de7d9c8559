import json
import os
import subprocess
import sys

import pytest

from core.cli import main
from tests.conftest import DEFAULT_SOLVER_ACCURACY, PIMA_NAMES, ROOT, TUTORIAL_ACCURACY


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def tutorial(pima_path):
    return ["--data", str(pima_path), "--names", PIMA_NAMES, "--target", "class", "--test-size", "0.33", "--seed", "7"]


@pytest.mark.parametrize("fmt", ["pickle", "joblib"])
def test_tutorial_acceptance(capsys, store_path, tutorial, fmt):
    store = ["--store", str(store_path)]
    record = run_json(
        capsys,
        "train",
        *tutorial,
        "--estimator",
        "logistic_regression",
        "--param",
        "solver=liblinear",
        "--name",
        "pima",
        "--format",
        fmt,
        *store,
    )
    assert record["metrics"]["accuracy"] == TUTORIAL_ACCURACY and record["format"] == fmt
    evaluation = run_json(capsys, "evaluate", "pima:1", *store)
    assert evaluation["accuracy"] == TUTORIAL_ACCURACY == evaluation["recorded_accuracy"]
    assert evaluation["reproduced"] is True
    assert evaluation["compatibility"]["status"] == "ok" and evaluation["compatibility"]["differences"] == []
    assert evaluation["warnings"] == []


def test_default_solver_warning_is_in_the_record(capsys, store_path, tutorial):
    record = run_json(
        capsys, "train", *tutorial, "--estimator", "logistic_regression", "--name", "p", "--store", str(store_path)
    )
    assert record["metrics"]["accuracy"] == DEFAULT_SOLVER_ACCURACY
    assert any("ConvergenceWarning" in w for w in record["warnings"])


def test_list_show_alias_tag_delete(capsys, store_path):
    store = ["--store", str(store_path)]
    for seed in ("1", "2"):
        run_json(
            capsys,
            "train",
            "--data",
            "builtin:iris",
            "--estimator",
            "naive_bayes",
            "--seed",
            seed,
            "--name",
            "iris",
            *store,
        )
    listed = run_json(capsys, "list", *store)
    assert isinstance(listed, list) and [r["version"] for r in listed] == [2, 1]
    code, out, _ = run(capsys, "list", *store)
    assert code == 0 and out.splitlines()[0].startswith("MODEL") and "iris:2" in out.splitlines()[1]
    assert run_json(capsys, "alias", "iris:1", "production", *store)["aliases"] == ["production"]
    assert run_json(capsys, "show", "iris@production", *store)["version"] == 1
    assert run_json(capsys, "tag", "iris:2", "candidate", *store)["tags"] == ["candidate"]
    assert [r["version"] for r in run_json(capsys, "list", "--tag", "candidate", *store)] == [2]
    code, _, err = run(capsys, "delete", "iris:1", *store)
    assert code == 1 and err.count("\n") == 1 and "aliased" in err
    deleted = run_json(capsys, "delete", "iris:1", "--force", *store)
    assert deleted["deleted"] == "iris:1" and deleted["freed_bytes"] > 0


def test_predict_writes_csv(capsys, store_path, tmp_path):
    store = ["--store", str(store_path)]
    run_json(capsys, "train", "--data", "builtin:wine", "--estimator", "decision_tree", "--name", "wine", *store)
    out = tmp_path / "pred.csv"
    summary = run_json(capsys, "predict", "wine", "--data", "builtin:wine", "-o", str(out), *store)
    assert summary["rows"] == 178
    header = out.read_text().splitlines()[0].split(",")
    assert "prediction" in header and "proba_0" in header


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--data", "builtin:iris", "--estimator", "nope", "--name", "x"], "Unknown estimator 'nope'"),
        (["train", "--data", "builtin:iris", "--estimator", "svc", "--param", "C=abc", "--name", "x"], "parameter 'C'"),
        (["train", "--data", "missing.csv", "--estimator", "svc", "--name", "x"], "No such data file"),
        (["train", "--data", "builtin:iris", "--estimator", "svc", "--name", "../x"], "Invalid model name"),
        (["show", "ghost"], "No model named 'ghost'"),
        (["evaluate", "ghost:3"], "No model named 'ghost'|no version 3"),
        (["list", "--sort", "size"], "invalid choice"),
        (["list", "--bogus"], "unrecognized arguments"),
    ],
)
def test_errors_are_one_line_exit_1_and_change_nothing(capsys, store_path, argv, message):
    code, out, err = run(capsys, *argv, "--store", str(store_path))
    assert code == 1 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert __import__("re").search(message, err)
    if store_path.exists():
        assert [p.name for p in store_path.glob("*/v*")] == []


def test_python_dash_m_core_end_to_end(store_path):
    env = dict(os.environ, MODEL_STORE=str(store_path))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "train",
            "--data",
            "builtin:iris",
            "--estimator",
            "knn",
            "--name",
            "iris",
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["name"] == "iris"
    bad = subprocess.run(
        [sys.executable, "-m", "core", "show", "nothing"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and bad.stderr.startswith("error:")


def test_estimators_schema_json(capsys):
    catalog = run_json(capsys, "estimators")
    assert {e["key"] for e in catalog} >= {"logistic_regression", "svc", "knn"}
    assert all("kind" in p and "default" in p for e in catalog for p in e["params"])
