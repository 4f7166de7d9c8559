"""Remote store URLs made safe to use and to show: bounded connect times, redaction, one-line failures.

``core.store.facade`` opens every store through these; ``core.store.config`` names them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.errors import ModelShelfError, StoreUnreachableError

#: PostgreSQL: seconds to wait for a connection (libpq's ``connect_timeout``) unless the URL says.
PG_CONNECT_TIMEOUT_S = 3
_SECRET_NAME = re.compile(r"key|secret|token|password|credential", re.IGNORECASE)


def bounded_index_url(url: str) -> str:
    """``url`` with a connect timeout when it is PostgreSQL's and names none (libpq would wait for ever)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or "connect_timeout" in parsed.query:
        return url
    return parsed.update_query_dict({"connect_timeout": str(PG_CONNECT_TIMEOUT_S)}).render_as_string(
        hide_password=False
    )


def redact_url(url: str) -> str:
    """A URL fit to show: no password, no user info of a non-database URL, no query string."""
    parts = urlsplit(url)
    if not parts.scheme or "://" not in url:  # a path
        return url
    if parts.scheme.split("+")[0] in ("postgresql", "mysql", "mariadb", "mssql", "oracle", "sqlite", "cockroachdb"):
        try:
            return make_url(url).set(query={}).render_as_string(hide_password=True)
        except ArgumentError:
            return f"{parts.scheme}://(a URL that does not parse)"
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


def describe(index_url: str | None, artifacts_url: str | None) -> str:
    """Both halves of a store, redacted: ``INDEX + ARTIFACTS``."""
    return " + ".join(redact_url(url) for url in (index_url, artifacts_url) if url)


def secret_values(index_url: str | None, options: Mapping[str, Any]) -> list[str]:
    """The passwords and keys in a store's settings, to scrub from any text shown."""
    found: list[str] = []
    if index_url:
        try:
            parsed = make_url(index_url)
            found += [parsed.password or ""] + [str(v) for k, v in parsed.query.items() if _SECRET_NAME.search(k)]
        except ArgumentError:
            pass

    def walk(table: Mapping[str, Any]) -> None:
        for name, value in table.items():
            if isinstance(value, Mapping):
                walk(value)
            elif _SECRET_NAME.search(str(name)) and value:
                found.append(str(value))

    walk(options)
    return [value for value in found if len(value) >= 3]


def scrub(text: str, secrets: list[str]) -> str:
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


@contextmanager
def reaching(location: str, index_url: str | None, options: Mapping[str, Any] | None, remote: bool) -> Iterator[None]:
    """Opening a remote store: any failure that is not already ModelShelf's own becomes one line, redacted.

    Drivers raise what they like (psycopg, botocore, aiohttp, OSError); a password or key in their
    text is scrubbed, and ``location`` is already redacted.
    """
    try:
        yield
    except ModelShelfError:
        raise
    except Exception as exc:
        if not remote:
            raise
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        message = scrub(f"Cannot reach the store {location}: {reason}", secret_values(index_url, options or {}))
        raise StoreUnreachableError(message) from exc
