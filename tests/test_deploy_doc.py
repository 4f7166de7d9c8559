"""docs/deploy.md, as written: its secrets file through AppTest, its replica commands through bash.

Both run against the real PostgreSQL and S3 servers of ``tests/backends.py``. The doc's database
user and password are made in the test's server, and S3 keys are whatever the doc says (moto takes
any), so only host, port, database name and bucket are substituted.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store.config import resolve_store
from tests.backends import AWS_VARIABLES, Bucket, Postgres, free_port
from tests.conftest import ROOT

pytestmark = pytest.mark.remote

DOC = (ROOT / "docs" / "deploy.md").read_text()
DOC_HOST = "db.example.com:5432"
DOC_ENDPOINT = "https://s3.example.com"
DOC_BUCKET = "s3://team-bucket/"
DOC_DATABASE = '/shelf"'


def block(language: str) -> str:
    found = re.findall(rf"```{language}\n(.*?)```\n", DOC, flags=re.S)
    assert len(found) == 1, f"docs/deploy.md should have one {language} block"
    return str(found[0])


@pytest.fixture
def doc_database(postgres_server: Postgres) -> Iterator[str]:
    """The doc's user with the doc's password, owning a fresh database; its name."""
    url = block("toml").split('index_url = "')[1].split('"')[0]
    user, password = url.split("://")[1].split("@")[0].split(":")
    postgres_server.execute(
        f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}') THEN "
        f"CREATE ROLE {user} LOGIN PASSWORD '{password}'; END IF; END$$"
    )
    name = "d_" + secrets.token_hex(6)
    postgres_server.execute(f"CREATE DATABASE {name} OWNER {user} TEMPLATE template0")
    yield name
    postgres_server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def substituted(text: str, server: Postgres, database: str, bucket: Bucket) -> str:
    for documented in (DOC_HOST, DOC_ENDPOINT, DOC_BUCKET, DOC_DATABASE):
        assert documented in text, documented
    return (
        text.replace(DOC_HOST, f"127.0.0.1:{server.port}")
        .replace(DOC_ENDPOINT, bucket.endpoint)
        .replace(DOC_BUCKET, f"s3://{bucket.name}/")
        .replace(DOC_DATABASE, f'/{database}"')
    )


def test_the_secrets_file_reaches_the_store_through_apptest(
    postgres_server: Postgres,
    doc_database: str,
    s3_bucket: Bucket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from core import load_dataset, train

    for name in (*AWS_VARIABLES, "MODEL_STORE", "MODELSHELF_INDEX_URL", "MODELSHELF_ARTIFACTS_URL"):
        monkeypatch.delenv(name, raising=False)  # the secrets file alone must reach the store
    text = substituted(block("toml"), postgres_server, doc_database, s3_bucket)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(text)
    table = tomllib.loads(text)
    store = resolve_store(secrets=table["modelshelf"], environ={}).open()
    try:
        store.save_trained(train(load_dataset("builtin:iris"), "decision_tree", seed=1), "deployed")
    finally:
        store.close()
    monkeypatch.chdir(tmp_path)  # core.settings reads ./.streamlit/secrets.toml too
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.secrets = table  # st.secrets, as Community Cloud gives it
    at.run()
    try:
        assert not at.exception and not at.error, [e.value for e in at.error]
        shown = [element.value for element in at.sidebar.code]
        assert shown and shown[0].startswith("postgresql+psycopg://shelf:***@127.0.0.1:"), shown
        assert at.sidebar.metric[0].value == "1"
        everything = json.dumps([str(element) for element in at.sidebar], default=str)
        assert "change-me" not in everything and "example-secret" not in everything
    finally:
        st.cache_resource.clear()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def test_the_replica_commands_run_as_written(
    postgres_server: Postgres, doc_database: str, s3_bucket: Bucket, tmp_path: Path
) -> None:
    script = substituted(block("bash"), postgres_server, doc_database, s3_bucket)
    ports = [free_port(), free_port()]
    for documented, port in zip(("8501", "8502"), ports, strict=True):
        assert f"--server.port {documented}" in script
        script = script.replace(f"--server.port {documented}", f"--server.port {port}")
    env = {k: v for k, v in os.environ.items() if k not in AWS_VARIABLES and k != "MODEL_STORE"}
    process = subprocess.Popen(
        ["bash", "-e", "-c", script],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=(tmp_path / "out").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while not all(_healthy(port) for port in ports):
            assert time.monotonic() < deadline, (tmp_path / "out").read_text()[-3000:]
            time.sleep(0.5)
        assert process.wait(30) == 0, (tmp_path / "out").read_text()[-3000:]  # doctor passed, both started
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):  # the replicas, by the group the script started
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            time.sleep(1)
