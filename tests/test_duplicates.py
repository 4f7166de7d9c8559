"""Bytes identical to a version of the same name: stored again by default and said so, or refused."""

import json
from pathlib import Path

import pytest

from core.cli import main
from core.errors import InvalidParameterError


@pytest.fixture(scope="module")
def trained():
    from core import load_dataset, train

    return train(load_dataset("builtin:iris"), "logistic_regression")


def test_a_second_save_of_the_same_bytes_is_stored_and_names_the_first(store, trained):
    first = store.save_trained(trained, "iris")
    second = store.save_trained(trained, "iris")
    assert "duplicate_of" not in first
    assert second["version"] == 2 and second["duplicate_of"] == "iris:1" and second["sha256"] == first["sha256"]
    assert "duplicate_of" not in store.get("iris:2")  # a save's answer, never stored


def test_refuse_stores_nothing_and_returns_the_existing_version(store, trained):
    store.save_trained(trained, "iris", tags=["a"])
    before = sorted(p.name for p in (Path(store.artifacts.root) / "iris").iterdir())
    refused = store.save_trained(trained, "iris", on_duplicate="refuse", tags=["b"])
    assert refused["stored"] is False and refused["duplicate_of"] == "iris:1" and refused["version"] == 1
    assert store.versions("iris") == [1] and store.get("iris:1")["tags"] == ["a"]
    assert sorted(p.name for p in (Path(store.artifacts.root) / "iris").iterdir()) == before  # no folder left
    assert (
        store.save_trained(trained, "iris", format="joblib", on_duplicate="refuse")["version"] == 2
    )  # other bytes (the default is pickle)


def test_the_same_bytes_under_another_name_are_not_a_duplicate(store, trained):
    store.save_trained(trained, "iris")
    assert "duplicate_of" not in store.save_trained(trained, "other", on_duplicate="refuse")


def test_an_unknown_on_duplicate_is_one_line_and_stores_nothing(store, trained):
    with pytest.raises(InvalidParameterError, match="on_duplicate"):
        store.save_trained(trained, "iris", on_duplicate="skip")
    assert store.names() == []


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_cli_train_says_identical_and_no_duplicates_stores_nothing(capsys, store_path):
    train = ["train", "--data", "builtin:iris", "--estimator", "logistic_regression", "--name", "iris"]
    store = ["--store", str(store_path)]
    assert "identical to" not in run(capsys, *train, *store)
    assert "identical to iris:1 (same sha256)" in run(capsys, *train, *store)
    out = run(capsys, *train, "--no-duplicates", *store)
    assert out.strip() == "Not stored: identical to iris:2 (same sha256); nothing was changed"
    payload = json.loads(run(capsys, *train, "--no-duplicates", "--json", *store))
    assert payload["duplicate_of"] == "iris:2" and payload["stored"] is False
    assert json.loads(run(capsys, "list", "--json", *store))[0]["version"] == 2


def test_cli_import_of_a_stored_file_says_identical_or_refuses(capsys, store, store_path, trained, tmp_path):
    store.save_trained(trained, "iris")
    model = tmp_path / "model.joblib"
    model.write_bytes(store.read_artifact("iris:1"))
    args = ["import", str(model), "--name", "iris", "--store", str(store_path)]
    refused = json.loads(run(capsys, *args, "--no-duplicates", "--json"))
    assert refused["stored"] is False and refused["duplicate_of"] == "iris:1"
    assert store.versions("iris") == [1]
    assert "identical to iris:1" in run(capsys, *args)
    assert store.versions("iris") == [2, 1]


def test_two_savers_of_the_same_bytes_store_one_version_when_refusing(store, trained):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    start = Barrier(4)

    def save(_: int):
        start.wait()
        return store.save_trained(trained, "iris", on_duplicate="refuse")

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(save, range(4)))
    assert store.versions("iris") == [1]
    assert sorted(a.get("stored", True) for a in answers) == [False, False, False, True]
    assert {a["version"] for a in answers} == {1}
