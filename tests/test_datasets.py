import pandas as pd
import pytest

from core.datasets import BUILTIN_DATASETS, load_dataset
from core.errors import DatasetError
from tests.conftest import PIMA_NAMES


@pytest.mark.parametrize("name", BUILTIN_DATASETS)
def test_builtin_datasets_load_with_target(name):
    ds = load_dataset(f"builtin:{name}")
    expected = "class" if name == "pima" else "target"  # the Pima file's own name for its label
    assert ds.target == expected and len(ds.X) == len(ds.y) > 100
    assert expected not in ds.X.columns
    assert len(ds.fingerprint) == 64


def test_unknown_builtin_lists_the_choices():
    with pytest.raises(DatasetError, match="builtin:iris"):
        load_dataset("builtin:mnist")


def test_csv_without_header_uses_names(pima_path):
    ds = load_dataset(str(pima_path), names=PIMA_NAMES, target="class")
    assert ds.feature_names == PIMA_NAMES.split(",")[:-1]
    assert len(ds.X) == 768 and ds.classes == [0, 1]
    d = ds.describe()
    assert d["n_rows"] == 768 and d["n_features"] == 8 and d["target"] == "class"


def test_csv_with_header_and_default_target(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n1,x,yes\n2,y,no\n3,x,yes\n4,,no\n")
    ds = load_dataset(str(path))
    assert ds.target == "label" and ds.feature_names == ["a", "b"]
    assert ds.describe()["feature_types"] == {"a": "number", "b": "category"}


def test_fingerprint_is_stable_and_sensitive(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,0\n2,1\n3,0\n")
    first = load_dataset(str(path)).fingerprint
    assert load_dataset(str(path)).fingerprint == first
    path.write_text("a,b\n1,0\n2,1\n4,0\n")
    assert load_dataset(str(path)).fingerprint != first


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        ("a,b\n1,0\n2,1\n", {"target": "zzz"}, "Target column 'zzz' is not in"),
        ("a,b\n1,0\n2,0\n", {}, "single class"),
        ("", {}, "not a readable CSV|no rows"),
        ("a,b\n1,0\n", {"names": "x,y,z"}, "3 names were given"),
    ],
)
def test_bad_csv_gets_one_clear_error(tmp_path, content, kwargs, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_dataset(str(path), **kwargs)


def test_missing_file():
    with pytest.raises(DatasetError, match="No such data file"):
        load_dataset("/nonexistent/x.csv")


def test_bytes_source_for_uploads():
    ds = load_dataset(b"a,b,c\n1,2,0\n3,4,1\n5,6,0\n", label="upload.csv")
    assert ds.source == "upload.csv" and isinstance(ds.X, pd.DataFrame)


def test_iris_read_without_scikit_learn_is_exactly_its_loader(monkeypatch):
    """builtin:iris comes from the CSV inside scikit-learn without importing it (the dashboard's
    default data set): the same frame, dtypes and fingerprint as ``load_iris``; in a fresh process
    scikit-learn stays unimported."""
    import subprocess
    import sys

    from core import datasets
    from tests.conftest import ROOT

    fast = datasets.load_builtin("iris")
    fast_dataset = load_dataset("builtin:iris")
    monkeypatch.setattr(datasets, "_iris_as_shipped", lambda: None)
    pd.testing.assert_frame_equal(fast, datasets.load_builtin("iris"), check_exact=True)
    assert fast_dataset.fingerprint == load_dataset("builtin:iris").fingerprint
    code = "import sys; from core.datasets import load_builtin; load_builtin('iris'); print('sklearn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_csv_whose_first_line_is_huge_is_refused_before_it_is_split():
    """Before: a 30 MB first line of ``12,12,...`` was split into ten million Python strings to
    judge its separator (the 64 kB sample keeps at least the first line), in one C call under the
    GIL: about 1 GB of the server's memory, then an unexpected csv.Error. Now a first line longer
    than the column limit allows is refused with one line, before it is decoded or split; a field
    past the csv module's limit is one line too."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = (
        "from core.datasets import detect_header, read_table\n"
        "from core.errors import DatasetError\n"
        "data = b'12,' * 10_000_000 + b'\\n1,2\\n'\n"
        "for read in (detect_header, read_table):\n"
        "    try:\n"
        "        read(data)\n"
        "    except DatasetError as exc:\n"
        "        print('refused:', exc)\n"
        "peak = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        "print('peak_mb', int(peak) // 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    refusals = [line for line in lines if line.startswith("refused:")]
    assert len(refusals) == 2 and all("first line is" in line and "columns" in line for line in refusals), lines
    assert int(lines[-1].split()[1]) < 400, lines[-1]
    with pytest.raises(DatasetError, match=r"cannot be read: field larger than field limit"):
        load_dataset(b'"' + b"x" * 200_000 + b'",b\n1,2\n', label="upload.csv")
