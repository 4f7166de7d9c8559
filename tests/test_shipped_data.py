"""``builtin:pima``: the tutorial's data set shipped in the package, so the tutorial runs offline.

The shipped copy must stay byte for byte the reference in ``../shared/datasets`` (next to the
checkout, as in CI), and the tutorial's figure must come out of it on any machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from core import shipped
from core.cli import main
from core.datasets import PIMA_NAMES, load_dataset
from core.errors import DatasetError
from tests.conftest import PIMA, PIMA_REFERENCE, ROOT, TUTORIAL_ACCURACY

TUTORIAL = [
    "train",
    "--data",
    "builtin:pima",
    "--target",
    "class",
    "--estimator",
    "logistic_regression",
    "--param",
    "solver=liblinear",
    "--test-size",
    "0.33",
    "--seed",
    "7",
    "--name",
    "pima",
]


def test_the_shipped_copy_is_the_reference_byte_for_byte():
    assert PIMA_REFERENCE.is_file(), f"the reference Pima CSV is missing at {PIMA_REFERENCE} (MODELSHELF_SHARED)"
    assert PIMA.read_bytes() == PIMA_REFERENCE.read_bytes()


def test_the_provenance_file_describes_the_shipped_bytes():
    about = shipped.provenance("pima")
    data = shipped.csv_path("pima").read_bytes()
    assert shipped.csv_path("pima") == PIMA
    assert hashlib.sha256(data).hexdigest() == about["sha256"]
    assert data.count(b"\n") + 1 == about["rows"] == 768  # no newline after the last row
    assert [c["name"] for c in about["columns"]] == list(PIMA_NAMES)
    assert all(c["meaning"] for c in about["columns"]) and about["target"] == "class"
    assert "UCI" in about["source"] and about["licence"]


def test_builtin_pima_is_the_csv_with_its_names_and_class_as_target():
    builtin = load_dataset("builtin:pima")
    from_csv = load_dataset(str(PIMA), names=",".join(PIMA_NAMES), target="class")
    assert builtin.target == "class" and len(builtin.X) == 768 and builtin.classes == [0, 1]
    assert builtin.feature_names == list(PIMA_NAMES[:-1])
    assert builtin.fingerprint == from_csv.fingerprint  # the same table, whichever way it was named
    pd.testing.assert_frame_equal(builtin.X, from_csv.X)


def test_builtin_pima_refuses_csv_only_options():
    for options in ({"names": "a,b"}, {"header": "none"}, {"header": "first-row"}):
        with pytest.raises(DatasetError, match="apply to CSV files"):
            load_dataset("builtin:pima", **options)  # type: ignore[arg-type]


def test_the_tutorial_command_prints_the_reference_figure_from_any_folder(tmp_path: Path):
    """A child process in another folder: the data is found from the package, not the working directory."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "core", "--store", str(tmp_path / "store"), *TUTORIAL],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert f"held-out accuracy {TUTORIAL_ACCURACY!r} (254 rows)" in done.stdout


def test_target_is_optional_for_a_builtin_with_its_own(tmp_path: Path, capsys):
    argv = [a for a in TUTORIAL if a not in ("--target", "class")]
    assert main(["--store", str(tmp_path / "store"), "--json", *argv]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["dataset"]["target"] == "class" and record["metrics"]["accuracy"] == TUTORIAL_ACCURACY


def test_an_installed_package_carries_the_data():
    """``pip install .`` copies ``core/data`` only if the package data names its files."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["core"]
    shipped_files = {p.relative_to(ROOT / "core") for p in (ROOT / "core" / "data").iterdir()}
    assert shipped_files and all(any(f.match(g) for g in globs) for f in shipped_files)
    assert Path(shipped.__file__).resolve().parent / "data" == shipped.DATA_DIR
