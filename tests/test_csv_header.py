"""A CSV's first row is never guessed silently: names or data, detected, and asked when it looks like data.

Before: the headerless Pima file read as if it had a header lost its first row (767 rows) and
called its target ``1``. Paths, URLs and uploads (bytes) follow the same rules.
"""

from __future__ import annotations

import argparse
import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from core.cli import main
from core.cli.base import COMMANDS, build_parser, resolve
from core.csvheader import looks_like_data
from core.datasets import PIMA_NAMES, detect_header, load_dataset, load_frame
from core.errors import DatasetError, HeaderError, InvalidParameterError
from tests.conftest import PIMA, TUTORIAL_ACCURACY

PROMPT = "the first row of {} looks like data; pass --no-header, --header or --names"
PIMA_TAIL = ["--estimator", "logistic_regression", "--param", "solver=liblinear", "--test-size", "0.33"]


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """``http://127.0.0.1:PORT/``, serving the shipped Pima CSV as ``pima.csv``."""
    folder = PIMA.parent
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_headerless_file_is_refused_with_one_line_naming_it():
    with pytest.raises(HeaderError) as caught:
        load_dataset(str(PIMA))
    assert str(caught.value) == PROMPT.format(PIMA)


def test_an_upload_and_a_url_follow_the_same_rules(served):
    url = served + PIMA.name
    for source, label in ((PIMA.read_bytes(), "uploaded file"), (url, url)):
        with pytest.raises(HeaderError) as caught:
            load_frame(source)
        assert str(caught.value) == PROMPT.format(label)
        assert detect_header(source) == "none"
        frame = load_frame(source, header="none")
        assert len(frame) == 768 and list(frame.columns) == [f"column_{i}" for i in range(1, 10)]
        assert list(load_frame(source, names=list(PIMA_NAMES)).columns) == list(PIMA_NAMES)
        assert len(load_frame(source, header="first-row")) == 767  # forced: the first row becomes the names


def test_no_header_names_the_columns_and_the_target_is_the_last():
    ds = load_dataset(PIMA.read_bytes(), header="none", label="pima.csv")
    assert ds.target == "column_9" and len(ds.X) == 768 and ds.classes == [0, 1]
    assert ds.feature_names == [f"column_{i}" for i in range(1, 9)]


def test_a_header_of_names_is_read_as_before():
    data = b"a,b,label\n1,2,0\n3,4,1\n5,6,0\n"
    assert detect_header(data) == "first-row"
    assert list(load_frame(data).columns) == ["a", "b", "label"]
    assert list(load_frame(data, header="first-row").columns) == ["a", "b", "label"]
    assert list(load_frame(data, header="none").iloc[0]) == ["a", "b", "label"]


@pytest.mark.parametrize(
    ("rows", "data"),
    [
        ([["6", "148", "72"], ["1", "85", "66"]], True),  # numbers over numbers
        ([["6", "", "72"], ["1", "85", ""]], True),  # a missing value in the first row is still data
        ([["-0.5", "1e-3", ".25"], ["1", "2", "3"]], True),
        ([["1,5", "2,5"], ["3,5", "4,5"]], True),  # decimal commas (a ; separated file)
        ([["a", "b", "label"], ["1", "2", "0"]], False),
        ([["x", "1"], ["1", "2"]], False),  # one name among numbers: names
        ([["2019", "2020"], ["a", "b"], ["c", "d"]], False),  # numbers over text differ in type: names
        ([["1", "2"], ["3", "x"]], False),  # one column of text below a number: names (decided, documented)
        ([["", ""], ["1", "2"]], False),  # an empty row says nothing
        ([["7", "8"]], True),  # one row of numbers: nothing to compare with, so asked
        ([["a", "b"]], False),
        ([], False),
    ],
)
def test_what_looks_like_data(rows, data):
    assert looks_like_data(rows) is data


def test_an_all_numeric_header_over_text_rows_is_names():
    frame = load_frame(b"2019,2020,label\nlow,high,yes\nhigh,low,no\n")
    assert list(frame.columns) == ["2019", "2020", "label"] and len(frame) == 2


def test_a_one_row_file():
    with pytest.raises(HeaderError):
        load_frame(b"1,2,3\n")
    assert load_frame(b"1,2,3\n", header="none").values.tolist() == [[1, 2, 3]]
    with pytest.raises(DatasetError, match="has no rows"):
        load_frame(b"1,2,3\n", header="first-row")
    with pytest.raises(DatasetError, match="has no rows"):
        load_frame(b"a,b,c\n")


def test_names_of_the_wrong_count_name_both_counts():
    with pytest.raises(DatasetError) as caught:
        load_frame(PIMA.read_bytes(), names=["a", "b", "c"])
    assert str(caught.value) == "uploaded file has 9 columns but 3 names were given"


def test_contradicting_or_unknown_header_options_are_refused():
    with pytest.raises(InvalidParameterError, match="contradict"):
        load_frame(PIMA.read_bytes(), names=list(PIMA_NAMES), header="first-row")
    with pytest.raises(InvalidParameterError, match="auto, first-row, none"):
        load_frame(PIMA.read_bytes(), header="yes")  # type: ignore[arg-type]


def _parser_of(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    setup = COMMANDS[name].setup
    if setup is not None:
        resolve(setup)(parser)
    return parser


def test_every_command_taking_data_takes_the_header_flags():
    taking = [name for name in COMMANDS if "--data" in _parser_of(name)._option_string_actions]
    assert {"train", "evaluate", "predict", "import"} <= set(taking)
    for name in taking:
        options = _parser_of(name)._option_string_actions
        assert {"--names", "--header", "--no-header"} <= set(options), name
    build_parser()  # the whole table still builds


def test_the_cli_stops_then_trains_with_each_flag(tmp_path: Path, capsys):
    store = ["--store", str(tmp_path / "store")]
    data = ["--data", str(PIMA)]
    assert main([*store, "train", *data, *PIMA_TAIL, "--name", "p"]) == 1
    assert capsys.readouterr().err == "error: " + PROMPT.format(PIMA) + "\n"
    assert main([*store, "list", "--json"]) == 0 and capsys.readouterr().out.strip() == "[]"  # nothing stored

    assert main([*store, "train", *data, "--no-header", *PIMA_TAIL, "--name", "p"]) == 0
    out = capsys.readouterr().out
    assert f"held-out accuracy {TUTORIAL_ACCURACY!r} (254 rows)" in out
    assert main([*store, "train", *data, "--names", ",".join(PIMA_NAMES), *PIMA_TAIL, "--name", "p"]) == 0
    assert f"held-out accuracy {TUTORIAL_ACCURACY!r}" in capsys.readouterr().out
    assert main([*store, "train", *data, "--header", *PIMA_TAIL, "--target", "1", "--name", "p"]) == 0
    # Forced: the 767 rows and 0.7677, the old silent loss, now only when asked for.
    assert "held-out accuracy 0.7677165354330708 (254 rows)" in capsys.readouterr().out

    assert main([*store, "evaluate", "p:1", *data]) == 1
    assert capsys.readouterr().err == "error: " + PROMPT.format(PIMA) + "\n"
    assert main([*store, "evaluate", "p:1", *data, "--no-header"]) == 0
    assert "reproduced   yes" in capsys.readouterr().out
    assert main([*store, "predict", "p:1", *data]) == 1
    assert capsys.readouterr().err == "error: " + PROMPT.format(PIMA) + "\n"
    assert main([*store, "predict", "p:1", *data, "--no-header", "-o", str(tmp_path / "out.csv")]) == 0
    assert "Wrote 768 predictions" in capsys.readouterr().out


def test_the_cli_refuses_two_header_flags_and_wrong_names(tmp_path: Path, capsys):
    store = ["--store", str(tmp_path / "store")]
    assert main([*store, "train", "--data", str(PIMA), "--no-header", "--header", *PIMA_TAIL, "--name", "p"]) == 1
    assert "not allowed with argument" in capsys.readouterr().err
    assert main([*store, "train", "--data", str(PIMA), "--names", "a,b", *PIMA_TAIL, "--name", "p"]) == 1
    assert capsys.readouterr().err == f"error: {PIMA} has 9 columns but 2 names were given\n"
    assert main([*store, "list", "--json"]) == 0 and capsys.readouterr().out.strip() == "[]"
