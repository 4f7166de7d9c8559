"""A remote store (PostgreSQL index + S3 files) through the CLI, the environment and the dashboard's secrets.

The servers come from ``tests/backends.py`` (skipped where missing, a failure under ``CI``). Every
output and error is searched for the database password and the S3 secret: neither may appear.
The configuration rules themselves (precedence, mixing, options) are checked without servers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from core.cli import main
from core.errors import InvalidParameterError
from core.store.config import S3_CONFIG, StoreSettings, resolve_store
from core.store.urls import redact_url
from tests.backends import PG_PASSWORD, S3_KEY_ID, S3_SECRET, Bucket, Postgres, free_port
from tests.conftest import ROOT

SECRETS = (PG_PASSWORD, S3_SECRET, S3_KEY_ID)
PG = "postgresql+psycopg://shelf:pw-123456@db.example:5432/shelf"


def clean(*texts: str) -> None:
    """No password or key in anything shown."""
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    clean(out, err)
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = cli(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


# -- the rules, without servers -------------------------------------------------------------------


def test_flags_then_environment_then_secrets_then_default() -> None:
    env = {"MODELSHELF_INDEX_URL": "sqlite:///e.sqlite", "MODELSHELF_ARTIFACTS_URL": "memory://e"}
    table = {"index_url": "sqlite:///s.sqlite", "artifacts_url": "memory://s"}
    flags = resolve_store(None, "sqlite:///f.sqlite", "memory://f", secrets=table, environ=env)
    assert (flags.index_url, flags.artifacts_url, flags.source) == ("sqlite:///f.sqlite", "memory://f", "flags")
    assert resolve_store("here", secrets=table, environ=env).path == "here"  # --store beats the environment's URLs
    assert resolve_store(secrets=table, environ=env).artifacts_url == "memory://e"
    assert resolve_store(secrets=table, environ={"MODEL_STORE": "there"}).path == "there"
    from_secrets = resolve_store(secrets=table, environ={})
    assert (from_secrets.index_url, from_secrets.source) == ("sqlite:///s.sqlite", "secrets")
    default = resolve_store(secrets={}, environ={})
    assert (default.path, default.source) == ("models", "defaults")


@pytest.mark.parametrize(
    ("flags", "environ", "table", "message"),
    [
        (("dir", "sqlite:///x", "memory://x"), {}, {}, "Give either --store (one folder) or --index-url"),
        ((None, "sqlite:///x", None), {}, {}, "--index-url and --artifacts-url go together"),
        (
            (None, None, None),
            {"MODEL_STORE": "d", "MODELSHELF_INDEX_URL": "sqlite:///x"},
            {},
            "Give either MODEL_STORE",
        ),
        ((None, None, None), {"MODELSHELF_ARTIFACTS_URL": "memory://x"}, {}, "MODELSHELF_INDEX_URL and MODELSHELF_ART"),
        ((None, None, None), {}, {"index_url": "sqlite:///x"}, "index_url and artifacts_url go together"),
        ((None, None, None), {}, {"storage_options": "key=1"}, "[modelshelf.storage_options] must be a table"),
        ((f"{PG}", None, None), {}, {}, "is a URL: a store folder is a path"),
    ],
)
def test_bad_store_settings_are_one_line(flags: tuple, environ: dict, table: dict, message: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        resolve_store(*flags, secrets=table, environ=environ)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert "pw-123456" not in str(caught.value)


def test_storage_options_aws_variables_win_over_the_secrets_table_and_timeouts_are_bounded() -> None:
    table = {
        "index_url": "sqlite:///s.sqlite",
        "artifacts_url": "s3://bucket/shelf",
        "storage_options": {"key": "table-key", "secret": "table-secret", "endpoint_url": "http://table:9000"},
    }
    only_table = resolve_store(secrets=table, environ={})
    assert only_table.storage_options["key"] == "table-key" and only_table.storage_options["config_kwargs"] == S3_CONFIG
    env = {"AWS_ACCESS_KEY_ID": "env-key", "AWS_REGION": "eu-west-3", "AWS_ENDPOINT_URL": "http://env:1"}
    env["AWS_ENDPOINT_URL_S3"] = "http://env-s3:2"  # the S3-specific endpoint wins over the general one
    merged = resolve_store(secrets=table, environ=env).storage_options
    assert merged["key"] == "env-key" and merged["secret"] == "table-secret"
    assert merged["endpoint_url"] == "http://env-s3:2" and merged["client_kwargs"] == {"region_name": "eu-west-3"}
    local = resolve_store(None, "sqlite:///x", "memory://x", secrets={}, environ=env).storage_options
    assert local == {}  # the AWS variables are for s3:// only


def test_redacted_names() -> None:
    assert (
        redact_url(PG + "?password=pw-123456&sslmode=require") == "postgresql+psycopg://shelf:***@db.example:5432/shelf"
    )
    assert redact_url("s3://AKIA:sec-ret@bucket/prefix?x=1") == "s3://bucket/prefix"
    found = StoreSettings(None, PG, "s3://bucket/prefix")
    assert "pw-123456" not in repr(found) and found.display.endswith(" + s3://bucket/prefix")


def test_secrets_file_store_keys_are_not_unknown_settings(tmp_path: Path) -> None:
    from core.settings import load_settings

    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[modelshelf]\nindex_url = "{PG}"\nartifacts_url = "s3://b/p"\n[modelshelf.storage_options]\n')
    assert load_settings(secrets, environ={}).demo is False
    secrets.write_text('[modelshelf]\nindex_uri = "x"\n')
    with pytest.raises(InvalidParameterError, match="Unknown setting"):
        load_settings(secrets, environ={})


# -- against PostgreSQL and S3 ---------------------------------------------------------------------


def objects(bucket: Bucket) -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=bucket.endpoint)  # credentials from the AWS_* variables
    return [item["Key"] for item in client.list_objects_v2(Bucket=bucket.name).get("Contents", [])]


@pytest.mark.remote
def test_cli_with_url_flags_every_operation(
    capsys: pytest.CaptureFixture[str], postgres_url: str, s3_bucket: Bucket, tmp_path: Path
) -> None:
    where = ["--index-url", postgres_url, "--artifacts-url", s3_bucket.url]
    code, out, _ = cli(capsys, "list", *where)
    assert code == 0 and "No models in postgresql+psycopg://postgres:***@127.0.0.1" in out and "s3://" in out
    record = cli_json(
        capsys, "train", "--data", "builtin:iris", "--estimator", "decision_tree", "--name", "iris", *where
    )
    assert record["version"] == 1 and record["uri"].startswith(f"s3://{s3_bucket.name}/shelf/")
    assert f"shelf/{record['path']}" in objects(s3_bucket)  # the files really are in the bucket
    assert (
        cli_json(capsys, "train", "--data", "builtin:iris", "--estimator", "naive_bayes", "--name", "iris", *where)[
            "version"
        ]
        == 2
    )
    assert [r["version"] for r in cli_json(capsys, "list", *where)] == [2, 1]
    assert cli_json(capsys, "show", "iris:1", *where)["sha256"] == record["sha256"]
    evaluation = cli_json(capsys, "evaluate", "iris:1", *where)
    assert evaluation["reproduced"] is True
    predictions = tmp_path / "predictions.csv"
    summary = cli_json(capsys, "predict", "iris:1", "--data", "builtin:iris", "-o", str(predictions), *where)
    assert summary["rows"] == 150 and "prediction" in predictions.read_text().splitlines()[0]
    assert cli(capsys, "alias", "iris:1", "production", *where)[0] == 0
    assert cli(capsys, "tag", "iris:1", "checked", *where)[0] == 0
    assert cli(capsys, "note", "iris:1", "on the shared store", *where)[0] == 0
    shown = cli_json(capsys, "show", "iris@production", *where)
    assert shown["version"] == 1 and shown["tags"] == ["checked"] and shown["note"] == "on the shared store"
    assert cli(capsys, "delete", "iris:2", *where)[0] == 0
    assert [r["version"] for r in cli_json(capsys, "list", *where)] == [1]
    assert not any("/v2/" in key for key in objects(s3_bucket))

    # The Python API, from the same settings: the model loads (sha256 checked) from S3.
    from core import load_dataset

    store = resolve_store(None, postgres_url, s3_bucket.url).open()
    try:
        assert store.load("iris@production").model.predict(load_dataset("builtin:iris").X.head(3)).shape == (3,)
        clean(repr(store), str(store.summary()))
        assert store.summary()["location"] != "models"
    finally:
        store.close()


@pytest.mark.remote
def test_python_dash_m_core_through_the_environment(
    postgres_url: str, s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELSHELF_INDEX_URL", postgres_url)
    monkeypatch.setenv("MODELSHELF_ARTIFACTS_URL", s3_bucket.url)
    monkeypatch.delenv("MODEL_STORE", raising=False)

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "core", *argv], cwd=ROOT, capture_output=True, text=True)
        clean(done.stdout, done.stderr)
        return done

    saved = run("train", "--data", "builtin:iris", "--estimator", "naive_bayes", "--name", "env-iris", "--json")
    assert saved.returncode == 0, saved.stderr
    listed = run("list", "--json")
    assert [r["name"] for r in json.loads(listed.stdout)] == ["env-iris"]
    mixed = run("list", "--store", "somewhere", "--index-url", postgres_url)
    assert mixed.returncode == 1 and mixed.stderr.count("\n") == 1 and "not both" in mixed.stderr
    monkeypatch.setenv("MODEL_STORE", "somewhere")
    mixed_env = run("list")
    assert mixed_env.returncode == 1 and "Give either MODEL_STORE" in mixed_env.stderr


@pytest.mark.remote
def test_wrong_password_is_one_line_without_the_password(
    capsys: pytest.CaptureFixture[str], postgres_server: Postgres, s3_bucket: Bucket
) -> None:
    wrong = postgres_server.url().replace(PG_PASSWORD, PG_PASSWORD[::-1])
    code, _, err = cli(capsys, "list", "--index-url", wrong, "--artifacts-url", s3_bucket.url)
    assert code == 1 and err.startswith("error: Cannot reach the store postgresql+psycopg://postgres:***@")
    assert err.count("\n") == 1 and PG_PASSWORD[::-1] not in err and "password authentication failed" in err


@pytest.mark.remote
def test_unreachable_postgresql_fails_within_5_seconds(capsys: pytest.CaptureFixture[str], s3_bucket: Bucket) -> None:
    closed = f"postgresql+psycopg://postgres:{PG_PASSWORD}@127.0.0.1:{free_port()}/shelf"
    started = time.monotonic()
    code, _, err = cli(capsys, "list", "--index-url", closed, "--artifacts-url", s3_bucket.url)
    elapsed = time.monotonic() - started
    assert code == 1 and err.startswith("error: Cannot reach the store") and err.count("\n") == 1
    assert elapsed < 5, elapsed


@pytest.mark.remote
def test_unreachable_s3_fails_within_5_seconds(
    capsys: pytest.CaptureFixture[str], postgres_url: str, s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    code, _, err = cli(capsys, "list", "--index-url", postgres_url, "--artifacts-url", s3_bucket.url)
    elapsed = time.monotonic() - started
    assert code == 1 and err.startswith("error: Cannot reach the store") and err.count("\n") == 1
    assert elapsed < 5, elapsed


@pytest.mark.remote
def test_dashboard_reads_the_store_from_secrets(
    postgres_url: str, s3_bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ``[modelshelf]`` secrets table names the store and its S3 options; the sidebar shows it redacted."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from core import load_dataset, train

    (tmp_path / ".streamlit").mkdir()
    secrets_file = tmp_path / ".streamlit" / "secrets.toml"
    secrets_file.write_text(
        "[modelshelf]\n"
        f'index_url = "{postgres_url}"\n'
        f'artifacts_url = "{s3_bucket.url}"\n\n'
        "[modelshelf.storage_options]\n"
        f'key = "{S3_KEY_ID}"\n'
        f'secret = "{S3_SECRET}"\n'
        f'endpoint_url = "{s3_bucket.endpoint}"\n'
    )
    store = resolve_store(None, postgres_url, s3_bucket.url, secrets={}).open()
    store.save_trained(train(load_dataset("builtin:iris"), "decision_tree", seed=1), "from-cli")
    store.close()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3", "MODEL_STORE"):
        monkeypatch.delenv(name, raising=False)  # the secrets table alone must reach the store
    monkeypatch.chdir(tmp_path)  # core.settings reads ./.streamlit/secrets.toml: its store keys are known
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.secrets = tomllib.loads(secrets_file.read_text())  # st.secrets, as Community Cloud gives it
    at.run()
    try:
        assert not at.exception and not at.error, [e.value for e in at.error]
        shown = [block.value for block in at.sidebar.code]
        assert shown and shown[0].startswith("postgresql+psycopg://postgres:***@") and "s3://" in shown[0]
        assert at.sidebar.metric[0].value == "1"
        everything = json.dumps([str(element) for element in at.sidebar], default=str)
        clean(everything, *shown)
    finally:
        st.cache_resource.clear()


@pytest.mark.remote
def test_the_readme_command_runs(postgres_url: str, s3_bucket: Bucket) -> None:
    """README's shared-store command, as written, with this test's database and bucket in its URLs."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## A shared store") :]
    block = section[section.index("```bash\n") + 8 : section.index("```\n", section.index("```bash\n") + 8)]
    command = block.replace("\\\n", " ")
    documented_index = command.split('"')[1]
    assert documented_index.startswith("postgresql+psycopg://") and "s3://team-bucket/shelf" in command
    command = command.replace(documented_index, postgres_url).replace("s3://team-bucket/shelf", s3_bucket.url)
    done = subprocess.run(
        command,
        shell=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "No models in postgresql+psycopg://postgres:***@127.0.0.1" in done.stdout
    clean(done.stdout, done.stderr)


@pytest.mark.remote
def test_unconfigured_s3_fails_within_5_seconds(
    capsys: pytest.CaptureFixture[str],
    postgres_url: str,
    s3_bucket: Bucket,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """No endpoint, no credentials anywhere (no AWS variable, no ~/.aws): one line, quickly, not a hang."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3", "AWS_EC2_METADATA_DISABLED"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    started = time.monotonic()
    code, _, err = cli(capsys, "list", "--index-url", postgres_url, "--artifacts-url", s3_bucket.url)
    elapsed = time.monotonic() - started
    assert code == 1 and err.startswith("error: Cannot reach the store") and err.count("\n") == 1, err
    assert elapsed < 5, elapsed
