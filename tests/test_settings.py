"""core.settings: defaults, the environment, .streamlit/secrets.toml, and bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InvalidParameterError
from core.safety import LoadLimits
from core.settings import Settings, load_settings


def test_defaults_when_nothing_is_set(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "absent.toml", environ={})
    assert settings == Settings()
    assert settings.demo is False
    assert settings.max_upload_bytes == 200_000_000


def test_secrets_file_then_environment(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("[modelshelf]\ndemo = true\nmax_upload_mb = 5\ndemo_max_versions = 7\n")
    settings = load_settings(secrets, environ={})
    assert (settings.demo, settings.max_upload_mb, settings.demo_max_versions) == (True, 5, 7)
    overridden = load_settings(secrets, environ={"MODELSHELF_DEMO": "0", "MODELSHELF_LOAD_TIMEOUT_S": "2.5"})
    assert overridden.demo is False
    assert overridden.load_timeout_s == 2.5
    assert overridden.max_upload_mb == 5


def test_environment_flag_spellings(tmp_path: Path) -> None:
    for value, expected in (("1", True), ("yes", True), ("ON", True), ("0", False), ("off", False), ("", False)):
        assert load_settings(tmp_path / "x.toml", environ={"MODELSHELF_DEMO": value}).demo is expected


@pytest.mark.parametrize(
    ("environ", "text", "message"),
    [
        ({"MODELSHELF_DEMO": "maybe"}, "", "Invalid value 'maybe' for MODELSHELF_DEMO"),
        ({"MODELSHELF_MAX_UPLOAD_MB": "-3"}, "", "expected a positive int"),
        ({}, "[modelshelf]\nmax_upload_mb = 'big'\n", "Invalid value 'big' for max_upload_mb"),
        ({}, "[modelshelf]\ndemo_mode = true\n", "Unknown setting(s) demo_mode"),
        ({}, "[modelshelf\n", "Could not read"),
    ],
)
def test_bad_settings_are_one_clear_error(tmp_path: Path, environ: dict, text: str, message: str) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(text)
    with pytest.raises(InvalidParameterError) as caught:
        load_settings(secrets, environ=environ)
    assert message in str(caught.value)


def test_load_limits_follow_the_settings() -> None:
    limits = LoadLimits.from_settings(Settings(max_upload_mb=3, load_timeout_s=4.0, max_decompressed_mb=9))
    assert limits == LoadLimits(max_bytes=3_000_000, max_decompressed_bytes=9_000_000, timeout_s=4.0)
    with pytest.raises(InvalidParameterError):
        LoadLimits(max_bytes=0, max_decompressed_bytes=1, timeout_s=1)
