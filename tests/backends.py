"""Real remote back ends for the tests: a PostgreSQL server and an S3 API server, one each per session.

The servers are started by ``bench/backends.py`` (the benchmark runs the same ones); this module
makes them pytest fixtures.

PostgreSQL comes from Debian's ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``):
``initdb`` into a temporary folder owned by ``postgres`` (initdb refuses to run as root), then
``pg_ctl start`` on a free port of 127.0.0.1, password login over TCP. Each test gets a database
of its own (``CREATE DATABASE`` is a file copy of ``template0``: cheap). The S3 server is moto's
(``python -m moto.server``, a process of its own) on a free port; each test gets a bucket of its own
and the standard ``AWS_*`` variables pointing at it.

Where PostgreSQL or moto is missing the tests that need them skip with a message; with ``CI`` set
that is a failure instead, so CI never passes by skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest

from bench.backends import (
    PG_PASSWORD,
    S3_KEY_ID,
    S3_REGION,
    S3_SECRET,
    Postgres,
    S3Server,
    StartFailed,
    Unavailable,
    free_port,
    start_postgres,
    start_s3,
)

__all__ = ["PG_PASSWORD", "S3_KEY_ID", "S3_REGION", "S3_SECRET", "Postgres", "S3Server", "free_port"]


def unavailable(reason: str) -> None:
    """Skip on a developer's machine; fail under CI (``CI`` set), where the back ends must be there."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: remote back ends are required)", pytrace=False)
    pytest.skip(reason)


Server = TypeVar("Server", Postgres, S3Server)


def _serve(start: Callable[[], Server]) -> Iterator[Server]:
    """Start a back end for the session: missing is a skip (a failure under CI), broken a failure."""
    try:
        server = start()
    except Unavailable as exc:
        unavailable(str(exc))
        raise
    except StartFailed as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """One PostgreSQL server for the session, stopped (and its folder removed) at the end."""
    yield from _serve(start_postgres)


@pytest.fixture
def postgres_url(postgres_server: Postgres) -> Iterator[str]:
    """A fresh, empty database for this test; its SQLAlchemy URL (password included)."""
    url = postgres_server.new_database()
    yield url
    postgres_server.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server in a process of its own on a free port of 127.0.0.1, for the session."""
    yield from _serve(start_s3)


@dataclass
class Bucket:
    """An empty bucket of the S3 server; ``url`` is the artifacts URL of a store inside it."""

    name: str
    endpoint: str

    @property
    def url(self) -> str:
        return f"s3://{self.name}/shelf"


AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
)


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A fresh bucket, and the standard ``AWS_*`` variables set to reach it (for this test only)."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    monkeypatch.setenv("AWS_REGION", S3_REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookups on a test machine
    return Bucket(s3_server.new_bucket(), s3_server.endpoint)
