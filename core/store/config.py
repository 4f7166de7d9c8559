"""Which store to open: one vocabulary for the CLI, the dashboard and the environment.

A store is one folder (``--store PATH`` / ``MODEL_STORE``: SQLite at ``PATH/index.sqlite``, files
under ``PATH``) or two URLs given together: the index (any SQLAlchemy URL) and the artifacts (any
fsspec URL). Each source names one or the other, never both; the first source that names a store
wins: flags, then the environment, then the ``[modelshelf]`` secrets table, then ``./models``.

=============================  ==========================  ==================================
Flag                           Environment variable        ``[modelshelf]`` secrets key
=============================  ==========================  ==================================
``--store PATH``               ``MODEL_STORE``             (none: a folder is a local matter)
``--index-url URL``            ``MODELSHELF_INDEX_URL``    ``index_url``
``--artifacts-url URL``        ``MODELSHELF_ARTIFACTS_URL``  ``artifacts_url``
(none)                         the standard ``AWS_*``      ``[modelshelf.storage_options]``
=============================  ==========================  ==================================

Storage options go to fsspec as they are; for ``s3://`` the standard AWS variables fill them in
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``,
``AWS_ENDPOINT_URL_S3`` else ``AWS_ENDPOINT_URL``) and win over the secrets table key by key. A
remote store is bounded in time (connect timeouts, no retry storm), so an unreachable one fails in
seconds with one line, and it is shown only redacted: no password, no key, no query string.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from core.errors import InvalidParameterError
from core.settings import SECRETS_FILE, read_secrets
from core.store.paths import DEFAULT_STORE, STORE_ENV
from core.store.urls import describe, redact_url

if TYPE_CHECKING:
    from core.store.facade import Store
    from core.store.visitors import Quota

INDEX_ENV, ARTIFACTS_ENV = "MODELSHELF_INDEX_URL", "MODELSHELF_ARTIFACTS_URL"
#: S3: botocore's bounds (s3fs keeps its own short retry loop on top): connect fast or fail fast.
S3_CONFIG = {"connect_timeout": 3, "read_timeout": 60, "retries": {"max_attempts": 1}}
_AWS_OPTIONS = (
    ("AWS_ACCESS_KEY_ID", "key"),
    ("AWS_SECRET_ACCESS_KEY", "secret"),
    ("AWS_SESSION_TOKEN", "token"),
)


@dataclass(frozen=True)
class StoreSettings:
    """The store in force: ``path`` (one folder) or ``index_url`` + ``artifacts_url``, and where from."""

    path: str | None = None
    index_url: str | None = None
    artifacts_url: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    source: str = "defaults"

    def __repr__(self) -> str:
        return f"StoreSettings({self.display!r}, source={self.source!r})"

    @property
    def display(self) -> str:
        """How the store is named to people: the folder, or both URLs redacted."""
        if self.path is not None:
            return self.path
        return describe(self.index_url, self.artifacts_url)

    def key(self) -> str:
        """A text that differs when the settings differ (a cache key; it holds secrets: never show it)."""
        return json.dumps([self.path, self.index_url, self.artifacts_url, self.storage_options], sort_keys=True)

    @classmethod
    def from_key(cls, key: str) -> StoreSettings:
        path, index_url, artifacts_url, options = json.loads(key)
        return cls(path, index_url, artifacts_url, options)

    def open(self, quota: Quota | None = None) -> Store:
        from core.store.facade import Store  # deferred: the store pulls in pandas and SQLAlchemy

        if self.path is not None:
            return Store(self.path, quota=quota)
        options = self.storage_options
        return Store(index_url=self.index_url, artifacts_url=self.artifacts_url, quota=quota, storage_options=options)


def _pair(index_url: str | None, artifacts_url: str | None, store: str | None, names: tuple[str, str, str]) -> bool:
    """Whether a source names a store; refuses half a pair or a folder mixed with the URLs."""
    store_name, index_name, artifacts_name = names
    if store and (index_url or artifacts_url):
        raise InvalidParameterError(
            f"Give either {store_name} (one folder) or {index_name} with {artifacts_name}, not both"
        )
    if bool(index_url) != bool(artifacts_url):
        raise InvalidParameterError(f"{index_name} and {artifacts_name} go together: give both or neither")
    return bool(store or index_url)


def resolve_store(
    store: str | None = None,
    index_url: str | None = None,
    artifacts_url: str | None = None,
    *,
    secrets: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> StoreSettings:
    """The store settings in force from flags, then ``environ``, then the ``[modelshelf]`` table ``secrets``.

    ``secrets=None`` reads ``.streamlit/secrets.toml`` (the CLI); the dashboard passes ``st.secrets``'.
    """
    env = os.environ if environ is None else environ
    table = read_secrets(SECRETS_FILE) if secrets is None else secrets
    options = table.get("storage_options", {})
    if not isinstance(options, Mapping):
        raise InvalidParameterError("[modelshelf.storage_options] must be a table")
    if _pair(index_url, artifacts_url, store, ("--store", "--index-url", "--artifacts-url")):
        found = StoreSettings(store, index_url, artifacts_url, source="flags")
    elif _pair(env.get(INDEX_ENV), env.get(ARTIFACTS_ENV), env.get(STORE_ENV), (STORE_ENV, INDEX_ENV, ARTIFACTS_ENV)):
        named = (env.get(STORE_ENV) or None, env.get(INDEX_ENV), env.get(ARTIFACTS_ENV))
        found = StoreSettings(*named, source="environment")
    elif _pair(table.get("index_url"), table.get("artifacts_url"), None, ("", "index_url", "artifacts_url")):
        found = StoreSettings(None, str(table["index_url"]), str(table["artifacts_url"]), source="secrets")
    else:
        found = StoreSettings(DEFAULT_STORE, source="defaults")
    if found.path is not None and "://" in found.path:
        raise InvalidParameterError(
            f"{redact_url(found.path)} is a URL: a store folder is a path; name a remote store with an index URL "
            f"and an artifacts URL ({INDEX_ENV} and {ARTIFACTS_ENV}, or --index-url and --artifacts-url)"
        )
    if found.artifacts_url is None:
        return found
    resolved = storage_options(found.artifacts_url, options, env)
    return StoreSettings(found.path, found.index_url, found.artifacts_url, resolved, found.source)


def _plain(value: Any) -> Any:
    """A secrets table (Streamlit's read-only AttrDict) as plain dicts, for fsspec and for JSON."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def storage_options(artifacts_url: str, table: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """fsspec's options for ``artifacts_url``: the table, the AWS variables over it for S3, bounded timeouts."""
    options = _plain(table)
    if urlsplit(artifacts_url).scheme not in ("s3", "s3a"):
        return options
    for variable, option in _AWS_OPTIONS:
        if environ.get(variable):
            options[option] = environ[variable]
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint_url"] = endpoint
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if region:
        options["client_kwargs"] = {**options.get("client_kwargs", {}), "region_name": region}
    options["config_kwargs"] = {**S3_CONFIG, **options.get("config_kwargs", {})}
    return options
