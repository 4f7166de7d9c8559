"""Issue 14, "Done when": bad input gets one clear line, in the CLI and on the Train page.

Four cases: a one-class target, a target with missing values (the line says how many rows), a
regression target given to a classifier, too few rows for the folds asked. Each is refused with
one line on stderr (``error: ...``, no traceback, nothing stored) by ``train`` and by
``compare-estimators``, and with one error on the Train page (its Train button, and its Compare
estimators section), never an exception.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.cli import main
from tests.test_app import TRAIN, fresh_app, labels, open_page  # noqa: F401

ONE_CLASS = b"a,b\n" + b"".join(b"%d,x\n" % i for i in range(8))
MISSING = b"x,y\n" + b"".join(b"%d,%s\n" % (i, b"" if i in (3, 11, 17) else b"%.2f" % (i * 0.37)) for i in range(30))
CONTINUOUS = b"x,y\n" + b"".join(b"%d,%.2f\n" % (i, i * 0.37) for i in range(30))
TWELVE = b"x,y\n" + b"".join(b"%d,%s\n" % (i, b"yes" if i % 2 else b"no") for i in range(12))

#: case: (CSV, target, what the CLI adds, what the Train page sets, the line's words)
CASES = {
    "one class": (ONE_CLASS, "b", [], {}, r"The target column 'b' has a single class; a classifier needs two or more"),
    "missing values": (
        MISSING,
        "y",
        [],
        {},
        r"3 of 30 rows of \S+ lack a value in the target column 'y': fill them or drop those rows",
    ),
    "regression target to a classifier": (
        CONTINUOUS,
        "y",
        ["--task", "classification"],
        {"train_task": "classification"},
        r"The target 'y' has non-integral values, so a classifier cannot learn it; use --task regression",
    ),
    "too few rows for the folds": (
        TWELVE,
        "y",
        ["--cv", "10"],
        {"folds": 10},
        r"Too few rows for 10-fold (stratified )?cross-validation: the training part has 8 rows; "
        r"ask for 8 folds or fewer",
    ),
}
ESTIMATOR = {"regression target to a classifier": "knn"}


def unescape(text: str) -> str:
    """Text as the browser shows it (Markdown backslash-escapes resolved)."""
    return re.sub(r"\\(.)", r"\1", text)


@pytest.mark.parametrize("command", ["train", "compare-estimators"])
@pytest.mark.parametrize("case", list(CASES))
def test_the_cli_says_one_line_and_stores_nothing(capsys, tmp_path: Path, case: str, command: str):
    data, target, extra, _, words = CASES[case]
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    store = tmp_path / "store"
    argv = [command, "--data", str(path), "--target", target, *extra, "--store", str(store)]
    if command == "train":
        argv += ["--estimator", ESTIMATOR.get(case, "decision_tree"), "--name", "bad"]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(words, err), err
    assert not store.exists() or not any(store.rglob("*.joblib"))  # nothing saved


def _upload(case: str):
    data, target, _, settings, _ = CASES[case]
    at = open_page(TRAIN)
    at.radio(key="train_source").set_value("Upload a CSV").run()
    at.file_uploader(key="train_csv").upload("bad.csv", data, "text/csv")
    at.run()
    at.selectbox(key="train_target").set_value(target).run()
    if "train_task" in settings:
        at.radio(key="train_task").set_value(settings["train_task"]).run()
    assert not at.exception and not at.error, [e.value for e in at.error]  # nothing said before it is asked
    return at


def _one_error(at, words: str) -> None:
    assert not at.exception, [e.value for e in at.exception]
    shown = [unescape(e.value) for e in at.error]
    assert len(shown) == 1 and re.search(words, shown[0]), shown
    assert "Traceback" not in shown[0] and "\n" not in shown[0].strip()


@pytest.mark.parametrize("case", [c for c in CASES if c != "too few rows for the folds"])
def test_the_train_button_shows_one_error(case: str):
    at = _upload(case)
    at.button[labels(at.button).index("Train")].click().run()
    _one_error(at, CASES[case][4])
    assert not any("Held-out results" in s.value for s in at.subheader)


@pytest.mark.parametrize("case", list(CASES))
def test_compare_estimators_shows_one_error(case: str):
    at = _upload(case)
    settings = CASES[case][3]
    task = settings.get("train_task") or at.multiselect[0].key.removeprefix("compare_keys_")
    at.multiselect(key=f"compare_keys_{task}").set_value([ESTIMATOR.get(case, "decision_tree")])
    if "folds" in settings:
        at.number_input[labels(at.number_input).index("Cross-validation folds (0: none)")].set_value(settings["folds"])
    at.button[labels(at.button).index("Compare")].click().run()
    _one_error(at, CASES[case][4])
    assert not any("rank" in d.value.columns for d in at.dataframe)  # no leaderboard


CLASSIFIER_ON_REGRESSION = (
    r"The target 'target' of builtin:diabetes looks like a regression target \(the target has \d+ distinct"
)


@pytest.fixture(scope="module")
def high_or_low(tmp_path_factory) -> Path:
    """A classifier from elsewhere on diabetes's ten features: is the target above 140 (1) or not (0)."""
    import joblib  # only these tests write a model file
    from sklearn.datasets import load_diabetes
    from sklearn.neighbors import KNeighborsClassifier

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    path = tmp_path_factory.mktemp("outside") / "high.joblib"
    joblib.dump(KNeighborsClassifier().fit(X, (y > 140).astype(int)), path)
    return path


def test_a_classifier_imported_or_rescored_on_a_regression_target_is_one_line(capsys, tmp_path, high_or_low):
    store = ["--store", str(tmp_path / "store")]
    code = main(["import", str(high_or_low), "--name", "high", "--data", "builtin:diabetes", *store])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and re.search(CLASSIFIER_ON_REGRESSION, err), err
    assert "classes 0, 1) with no class for" in err
    assert main(["import", str(high_or_low), "--name", "high", *store]) == 0  # without data it imports
    capsys.readouterr()
    code = main(["evaluate", "high", "--data", "builtin:diabetes", *store])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and re.search(CLASSIFIER_ON_REGRESSION, err), err


def test_a_classifier_whose_classes_cover_a_many_valued_target_is_scored():
    """Many integer values, each a class the model knows: a classification with many classes, not refused."""
    import pandas as pd

    from core.tasks import check_classifier_target

    y = pd.Series(range(30), name="y")
    check_classifier_target(y, list(range(40)), "data")  # no error
    with pytest.raises(Exception, match="no class for 1 of its 30 values"):
        check_classifier_target(y, list(range(29)), "data")
    check_classifier_target(y, None, "data")  # classes unknown: not judged


def test_the_upload_page_shows_it_as_one_error(high_or_low):
    from tests.test_app import UPLOAD

    at = open_page(UPLOAD)
    at.file_uploader(key="upload_model").upload("high.joblib", high_or_low.read_bytes())
    at.run()
    at.radio(key="upload_data").set_value("Built-in data set")
    at.selectbox[labels(at.selectbox).index("Built-in data set")].set_value("diabetes")
    at.button[labels(at.button).index("Add to the store")].click().run()
    _one_error(at, CLASSIFIER_ON_REGRESSION)
