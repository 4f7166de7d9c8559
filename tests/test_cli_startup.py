"""Commands that only read or label the index start at once: they import no scikit-learn, pandas,
pyarrow, onnx or plotly (issue 16). Each runs in a fresh interpreter, which then lists the heavy
modules it has loaded; ``python -X importtime -m core list`` shows where any newcomer comes from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.store import Store

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sklearn", "pandas", "pyarrow", "onnx", "onnxruntime", "skl2onnx", "plotly", "scipy", "streamlit", "alembic")

_PROBE = """
import importlib.util, json, sys
from core.cli.run import main
code = main(sys.argv[1:])
# a module core.lazy.lazy_module registered but nothing has touched yet is not loaded: skip it
loaded = {m.split(".")[0] for m, mod in list(sys.modules.items()) if not isinstance(mod, importlib.util._LazyModule)}
heavy = sorted(loaded & set(json.loads(sys.stdin.read())))
print("HEAVY=" + json.dumps({"code": code, "heavy": heavy}))
"""


def _heavy_modules(*argv: str, watched: tuple[str, ...] = HEAVY) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        input=json.dumps(watched),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("HEAVY=")]
    assert line, done.stdout + done.stderr
    return json.loads(line[-1][len("HEAVY=") :])


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.linear_model import LogisticRegression

    path = tmp_path_factory.mktemp("startup") / "store"
    X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
    Store(path).save(LogisticRegression().fit(X, y), "tiny", X_test=X, y_test=y)
    Store(path).save(LogisticRegression().fit(X, y), "tiny")
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ("list",),
        ("list", "--all", "--sort", "accuracy"),
        ("show", "tiny:1"),
        ("alias", "tiny:1", "production"),
        ("tag", "tiny:1", "baseline"),
        ("note", "tiny:1", "the first one"),
        ("delete", "tiny:2"),
        ("estimators",),
        ("estimators", "random_forest", "--task", "regression"),
        ("datasets",),
    ],
    ids=lambda argv: " ".join(argv),
)
def test_an_index_command_imports_nothing_heavy(store_path: Path, argv: tuple[str, ...]) -> None:
    found = _heavy_modules("--store", str(store_path), *argv)
    assert found == {"code": 0, "heavy": []}


@pytest.mark.parametrize("argv", [("list",), ("show", "tiny:1")], ids=lambda argv: " ".join(argv))
def test_reading_a_local_store_imports_no_fsspec(store_path: Path, argv: tuple[str, ...]) -> None:
    """A local store's files are read directly: fsspec (and the asyncio it brings) loads for
    object stores, or when a local store first removes or lists files."""
    found = _heavy_modules("--store", str(store_path), *argv, watched=("fsspec", "s3fs"))
    assert found == {"code": 0, "heavy": []}


def test_the_probe_sees_a_heavy_import(store_path: Path) -> None:
    """The check can fail: ``evaluate`` needs scikit-learn and pandas, and the probe sees them."""
    found = _heavy_modules("--store", str(store_path), "evaluate", "tiny:1")
    assert found["code"] == 0
    assert {"sklearn", "pandas"} <= set(found["heavy"])  # type: ignore[arg-type]


def test_the_static_table_names_every_loadable_data_set() -> None:
    """``datasets`` lists a static table (no scikit-learn): it must name exactly what ``load_dataset`` loads."""
    from core.datasets import _builtin_loaders
    from core.shipped import BUILTIN_DATASETS, SHIPPED

    assert sorted(BUILTIN_DATASETS) == sorted({*_builtin_loaders(), *SHIPPED})
