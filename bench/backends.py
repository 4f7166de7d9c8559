"""Start and stop the remote back ends: a PostgreSQL server and an S3 API server (moto).

Shared by the benchmark (``python -m bench``'s remote group) and the tests' fixtures
(``tests/backends.py`` wraps these in pytest fixtures), so both run the same servers the same way.

PostgreSQL comes from Debian's ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``):
``initdb`` into a temporary folder owned by ``postgres`` (initdb refuses to run as root), then
``pg_ctl start`` on a free port of 127.0.0.1, password login over TCP. The S3 server is moto's
(``python -m moto.server``, a process of its own) on a free port. A missing piece raises
``Unavailable`` with the reason (the tests skip or fail on it, the benchmark reports it); a server
that does not start raises ``StartFailed``.
"""

from __future__ import annotations

import glob
import importlib.util
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Passwords and keys handed to the back ends: long and unlikely, so a leak is found by search.
PG_PASSWORD = "pg-" + secrets.token_hex(12)
S3_KEY_ID = "AKIA" + secrets.token_hex(8).upper()
S3_SECRET = "s3-" + secrets.token_hex(16)
S3_REGION = "eu-west-1"
START_TIMEOUT_S = 60.0


class Unavailable(Exception):
    """A back end cannot run here (not installed); the message says what to install."""


class StartFailed(Exception):
    """A back end is installed but did not start."""


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
            conn.execute(sql)  # type: ignore[arg-type]  # caller-owned SQL: names made by the caller

    def new_database(self) -> str:
        """A fresh, empty database (a file copy of ``template0``: cheap); its URL."""
        name = "t_" + secrets.token_hex(6)
        self.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)

    def stop(self) -> None:
        stop = [str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop"]
        subprocess.run(as_postgres(stop), capture_output=True, timeout=START_TIMEOUT_S)
        shutil.rmtree(self.folder, ignore_errors=True)


def as_postgres(argv: list[str]) -> list[str]:
    """Root runs the server as ``postgres`` (initdb refuses root); anyone else runs it as themselves."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def start_postgres() -> Postgres:
    """A new server in a temporary folder, on a free port; ``stop()`` it at the end."""
    bindir = postgres_bin()
    if bindir is None:
        raise Unavailable(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; apt-get install postgresql)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise Unavailable(
                "No 'postgres' user to run PostgreSQL as (Debian's postgresql package creates it)"
            ) from exc
    if importlib.util.find_spec("psycopg") is None:
        raise Unavailable("psycopg is not installed (pip install -r requirements-remote.txt)")
    try:
        return _start_postgres(bindir)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise StartFailed(f"PostgreSQL did not start: {exc} {detail.decode(errors='replace')}") from exc


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
    subprocess.run(as_postgres(initdb), check=True, capture_output=True, timeout=START_TIMEOUT_S)
    # fsync off: a throwaway server that dies loses nothing anyone needs, and saves run much faster.
    options = f"-k {folder} -h 127.0.0.1 -p {port} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    start = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-o", options, "start"]
    subprocess.run(as_postgres(start), check=True, capture_output=True, timeout=START_TIMEOUT_S)
    return Postgres(bindir, folder, port)


@dataclass
class S3Server:
    """A running S3 API server at ``endpoint``."""

    endpoint: str
    process: subprocess.Popen[bytes]

    def client(self) -> Any:  # boto3 ships no types
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_KEY_ID,
            aws_secret_access_key=S3_SECRET,
            region_name=S3_REGION,
        )

    def new_bucket(self) -> str:
        """A fresh, empty bucket; its name."""
        name = "b-" + secrets.token_hex(6)
        self.client().create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": S3_REGION})
        return name

    def storage_options(self) -> dict[str, Any]:
        """fsspec options that reach this server (for a store given them directly)."""
        return {
            "key": S3_KEY_ID,
            "secret": S3_SECRET,
            "endpoint_url": self.endpoint,
            "client_kwargs": {"region_name": S3_REGION},
        }

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_s3() -> S3Server:
    """moto's S3 server in a process of its own on a free port of 127.0.0.1; ``stop()`` it at the end."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("moto.server") is None:
        raise Unavailable("moto[server] is not installed (pip install -r requirements-dev.txt)")
    if importlib.util.find_spec("s3fs") is None:
        raise Unavailable("s3fs is not installed (pip install -r requirements-remote.txt)")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
            return S3Server(endpoint, process)
        except OSError as exc:
            if process.poll() is not None or time.monotonic() > deadline:
                server = S3Server(endpoint, process)
                server.stop()
                raise StartFailed(f"The S3 server (moto) did not start on {endpoint}: {exc}") from exc
            time.sleep(0.1)
