"""Errors keep their cause: ModelShelf's one-line error chains the library failure behind it
(``raise ... from exc``), so ``--debug`` shows the whole chain; the message itself is unchanged."""

from __future__ import annotations

import ast
import zipfile
from pathlib import Path

import pytest

from core.catalog import get_spec
from core.datasets import SourceAccess, load_frame
from core.errors import DatasetError, FormatError, InvalidParameterError
from core.formats import detect_format
from core.settings import load_settings
from tests.conftest import ROOT


def test_no_raise_in_core_hides_its_cause_without_saying_why() -> None:
    """``raise ... from None`` only with a comment on its line saying why the cause is hidden."""
    bad = []
    for path in sorted((ROOT / "core").rglob("*.py")):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            hidden = isinstance(node, ast.Raise) and isinstance(node.cause, ast.Constant) and node.cause.value is None
            if hidden and "#" not in lines[(node.end_lineno or node.lineno) - 1]:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bad, "raise ... from None without a why:\n" + "\n".join(bad)


def test_a_missing_data_file_chains_the_os_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.csv"
    with pytest.raises(DatasetError, match="No such data file") as caught:
        load_frame(str(missing), access=SourceAccess(local_files=True, fetcher=None))  # type: ignore[arg-type]
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_a_bad_setting_chains_the_parse_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="Invalid value 'lots' for MODELSHELF_MAX_UPLOAD_MB") as caught:
        load_settings(tmp_path / "absent.toml", environ={"MODELSHELF_MAX_UPLOAD_MB": "lots"})
    assert isinstance(caught.value.__cause__, ValueError)
    broken = tmp_path / "secrets.toml"
    broken.write_text("[modelshelf\n")
    with pytest.raises(InvalidParameterError, match="Could not read") as caught:
        load_settings(broken, environ={})
    assert caught.value.__cause__ is not None


def test_an_unknown_estimator_and_a_damaged_zip_chain_their_causes() -> None:
    with pytest.raises(InvalidParameterError, match="Unknown estimator 'nope'") as caught:
        get_spec("nope")
    assert isinstance(caught.value.__cause__, KeyError)
    with pytest.raises(FormatError, match="damaged or truncated") as caught:
        detect_format(b"PK\x03\x04" + b"\0" * 40)
    assert isinstance(caught.value.__cause__, zipfile.BadZipFile)
