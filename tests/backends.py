"""Real remote back ends for the tests: a PostgreSQL server and an S3 API server, one each per session.

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

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Passwords and keys the tests hand the back ends: long and unlikely, so a leak is found by search.
PG_PASSWORD = "pg-" + secrets.token_hex(12)
S3_KEY_ID = "AKIA" + secrets.token_hex(8).upper()
S3_SECRET = "s3-" + secrets.token_hex(16)
S3_REGION = "eu-west-1"
START_TIMEOUT_S = 60.0


def unavailable(reason: str) -> None:
    """Skip on a developer's machine; fail under CI (``CI`` set), where the back ends must be there."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: remote back ends are required)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb`` and ``pg_ctl`` (or None)."""
    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    found = [p for p in found if (p / "pg_ctl").is_file()]
    return found[-1] if found else None


@dataclass
class Postgres:
    """A running server: ``url(db)`` is a SQLAlchemy URL with the password in it."""

    bindir: Path
    folder: Path
    port: int
    user: str = "postgres"
    password: str = PG_PASSWORD

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        import psycopg

        conninfo = f"host=127.0.0.1 port={self.port} user={self.user} password={self.password} dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)  # type: ignore[arg-type]  # test-owned SQL: names made here


def _as_postgres(argv: list[str]) -> list[str]:
    """Root runs the server as ``postgres`` (initdb refuses root); anyone else runs it as themselves."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _start_postgres(bindir: Path) -> Postgres:
    folder = Path(tempfile.mkdtemp(prefix="modelshelf-pg-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
    pwfile = folder / "pw"
    pwfile.write_text(PG_PASSWORD + "\n")
    if os.geteuid() == 0:
        os.chown(pwfile, account.pw_uid, account.pw_gid)
    data, port = folder / "data", free_port()
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8", "--no-sync"]
    initdb += ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
    subprocess.run(_as_postgres(initdb), check=True, capture_output=True, timeout=START_TIMEOUT_S)
    # fsync off: a test server that dies loses nothing anyone needs, and saves run much faster.
    options = f"-k {folder} -h 127.0.0.1 -p {port} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    start = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-o", options, "start"]
    subprocess.run(_as_postgres(start), check=True, capture_output=True, timeout=START_TIMEOUT_S)
    return Postgres(bindir, folder, port)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """One PostgreSQL server for the session, stopped (and its folder removed) at the end."""
    bindir = postgres_bin()
    if bindir is None:
        unavailable("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; apt-get install postgresql)")
    assert bindir is not None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            unavailable("No 'postgres' user to run PostgreSQL as (Debian's postgresql package creates it)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("psycopg is not installed (pip install -r requirements-remote.txt)")
    try:
        server = _start_postgres(bindir)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        pytest.fail(f"PostgreSQL did not start: {exc} {detail.decode(errors='replace')}", pytrace=False)
    try:
        yield server
    finally:
        stop = [str(bindir / "pg_ctl"), "-D", str(server.folder / "data"), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_postgres(stop), capture_output=True, timeout=START_TIMEOUT_S)
        shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: Postgres) -> Iterator[str]:
    """A fresh, empty database for this test; its SQLAlchemy URL (password included)."""
    name = "t_" + secrets.token_hex(6)
    postgres_server.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    yield postgres_server.url(name)
    postgres_server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@dataclass
class S3Server:
    """A running S3 API server at ``endpoint``."""

    endpoint: str
    process: subprocess.Popen[bytes]

    def client(self):  # type: ignore[no-untyped-def]  # boto3 ships no types
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_KEY_ID,
            aws_secret_access_key=S3_SECRET,
            region_name=S3_REGION,
        )


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server in a process of its own on a free port of 127.0.0.1, for the session."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        unavailable("moto[server] is not installed (pip install -r requirements-dev.txt)")
    try:
        import s3fs  # noqa: F401
    except ImportError:
        unavailable("s3fs is not installed (pip install -r requirements-remote.txt)")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
                break
            except OSError as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"The S3 server (moto) did not start on {endpoint}: {exc}", pytrace=False)
                time.sleep(0.1)
        yield S3Server(endpoint, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
    name = "b-" + secrets.token_hex(6)
    s3_server.client().create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": S3_REGION})
    return Bucket(name, s3_server.endpoint)
