"""Deployment settings: upload and load limits, and the public-demo mode.

Read from environment variables first, then from the ``[modelshelf]`` table of
``.streamlit/secrets.toml`` (parsed here with ``tomllib``: core never imports Streamlit), then
the defaults below. One place, so the dashboard's upload limit and the loader's limit agree.

=========================  ==========================  =========  ======================================
Environment variable       secrets.toml key            Default    Meaning
=========================  ==========================  =========  ======================================
``MODELSHELF_DEMO``        ``demo``                    off        public-demo mode (1/true/yes/on)
``MODELSHELF_MAX_UPLOAD_MB``  ``max_upload_mb``        200        largest model file accepted, in MB
``MODELSHELF_DEMO_MAX_VERSIONS``  ``demo_max_versions``  50       demo quota: versions kept
``MODELSHELF_DEMO_MAX_BYTES``  ``demo_max_bytes``      200000000  demo quota: bytes kept in the whole store
``MODELSHELF_DEMO_SESSION_MAX_VERSIONS``  ``demo_session_max_versions``  10  demo quota: versions per visitor
``MODELSHELF_DEMO_SESSION_MAX_BYTES``  ``demo_session_max_bytes``  50000000  demo quota: bytes per visitor
``MODELSHELF_DEMO_TRAIN_TIMEOUT_S``  ``demo_train_timeout_s``  60  demo: wall and CPU seconds of one training
                                                                  request (a fit, or a whole comparison)
``MODELSHELF_DEMO_TRAIN_MAX_ROWS``  ``demo_train_max_rows``  100000  demo: most rows a data set may have to
                                                                  be trained on
``MODELSHELF_DEMO_TRAININGS``  ``demo_trainings``      1          demo: most training requests at once in
                                                                  one server process (more are refused)
``MODELSHELF_DEMO_TRAIN_MEMORY_MB``  ``demo_train_memory_mb``  2048  demo: address space of a training
                                                                  worker, in MB
``MODELSHELF_LOAD_TIMEOUT_S``  ``load_timeout_s``      30         longest a model file may take to load,
                                                                  and one call of a model in a worker
``MODELSHELF_MAX_DECOMPRESSED_MB``  ``max_decompressed_mb``  1000  largest a compressed file may expand to
``MODELSHELF_URL_MAX_MB``  ``url_max_mb``              50         largest body a data URL may send, in MB
``MODELSHELF_URL_TIMEOUT_S``  ``url_timeout_s``        20         longest a data URL may take, redirects included
``MODELSHELF_CSV_MAX_MB``  ``csv_max_mb``              200        largest CSV read from any source, in MB
``MODELSHELF_CSV_MAX_ROWS``  ``csv_max_rows``          2000000    most rows read from a CSV
``MODELSHELF_CSV_MAX_COLUMNS``  ``csv_max_columns``    2000       most columns read from a CSV
``MODELSHELF_MAX_CATEGORIES``  ``max_categories``      1000       most distinct values a text column may
                                                                  have to be one-hot encoded in training
``MODELSHELF_WORKER_MEMORY_MB``  ``worker_memory_mb``  2048       address space of one model worker, in MB
``MODELSHELF_WORKERS``     ``workers``                 2          most model workers running at once
``MODELSHELF_ALLOW_WEAK_SANDBOX``  ``allow_weak_sandbox``  off    demo: accept uploads with neither the
                                                                  worker's filesystem nor network layer
``MODELSHELF_BUSY_TIMEOUT_S``  ``busy_timeout_s``      5          longest a store waits for another writer
=========================  ==========================  =========  ======================================
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from core.errors import InvalidParameterError

SECRETS_FILE = Path(".streamlit") / "secrets.toml"
SECTION = "modelshelf"
ENV_PREFIX = "MODELSHELF_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
#: Keys of the ``[modelshelf]`` table that name the store: ``core.store.config`` reads them, not ``Settings``.
STORE_KEYS = ("index_url", "artifacts_url", "storage_options")


@dataclass(frozen=True)
class Settings:
    """What a deployment may change; every field has a safe default."""

    demo: bool = False
    max_upload_mb: int = 200
    demo_max_versions: int = 50
    demo_max_bytes: int = 200_000_000
    demo_session_max_versions: int = 10
    demo_session_max_bytes: int = 50_000_000
    demo_train_timeout_s: float = 60.0
    demo_train_max_rows: int = 100_000
    demo_trainings: int = 1
    demo_train_memory_mb: int = 2048
    load_timeout_s: float = 30.0
    max_decompressed_mb: int = 1000
    url_max_mb: int = 50
    url_timeout_s: float = 20.0
    csv_max_mb: int = 200
    csv_max_rows: int = 2_000_000
    csv_max_columns: int = 2_000
    max_categories: int = 1_000
    worker_memory_mb: int = 2048
    workers: int = 2
    allow_weak_sandbox: bool = False
    busy_timeout_s: float = 5.0

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1_000_000

    @property
    def max_decompressed_bytes(self) -> int:
        return self.max_decompressed_mb * 1_000_000

    @property
    def url_max_bytes(self) -> int:
        return self.url_max_mb * 1_000_000


def _coerce(name: str, kind: type, value: Any, where: str) -> Any:
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ValueError
        number = kind(value)
        if isinstance(value, bool) or number <= 0:
            raise ValueError
        return number
    except (TypeError, ValueError) as exc:
        expected = "1/0, true/false, yes/no or on/off" if kind is bool else f"a positive {kind.__name__}"
        raise InvalidParameterError(f"Invalid value {value!r} for {name} in {where}: expected {expected}") from exc


def read_secrets(path: Path) -> dict[str, Any]:
    """The ``[modelshelf]`` table of a secrets file (empty when there is no file)."""
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as handle:
            table = tomllib.load(handle).get(SECTION, {})
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise InvalidParameterError(f"Could not read {path}: {exc}") from exc
    if not isinstance(table, dict):
        raise InvalidParameterError(f"[{SECTION}] in {path} must be a table")
    return table


def load_settings(secrets_path: str | Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """The settings in force: environment variables win over secrets.toml, which wins over defaults."""
    env = os.environ if environ is None else environ
    path = Path(secrets_path) if secrets_path is not None else SECRETS_FILE
    from_file = read_secrets(path)
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(from_file) - known - set(STORE_KEYS))
    if unknown:
        raise InvalidParameterError(
            f"Unknown setting(s) {', '.join(unknown)} in [{SECTION}] of {path}; known: "
            + ", ".join(sorted(known | set(STORE_KEYS)))
        )
    values: dict[str, Any] = {}
    for spec in fields(Settings):
        kind = type(spec.default)
        env_name = ENV_PREFIX + spec.name.upper()
        if env_name in env:
            values[spec.name] = _coerce(env_name, kind, env[env_name], "the environment")
        elif spec.name in from_file:
            values[spec.name] = _coerce(spec.name, kind, from_file[spec.name], str(path))
    return Settings(**values)
