"""Errors that core raises: one family, each with a message fit to show a user as it is."""

from __future__ import annotations


class ModelShelfError(Exception):
    """Base class: anything core refuses, with a message a user can act on."""


class InvalidParameterError(ModelShelfError, ValueError):
    """A parameter (estimator key, hyperparameter, option) has a value outside what is allowed."""


class DatasetError(ModelShelfError, ValueError):
    """A data source could not be read or does not fit the request (missing target, no rows...)."""


class HeaderError(DatasetError):
    """A CSV's first row looks like data and nobody said whether it is names or data (never guessed)."""


class FetchError(DatasetError):
    """A data URL was refused (scheme, address, port, size, time) or could not be read."""


class NotFoundError(ModelShelfError, LookupError):
    """A model name, version or alias is not in the store."""


class IntegrityError(ModelShelfError):
    """A stored file's bytes no longer match the sha256 recorded when it was saved."""


class FormatError(ModelShelfError, ValueError):
    """Bytes are not a model file in a format ModelShelf reads."""


class UnsafeModelError(ModelShelfError):
    """A model file asks for something the safe loader will not do (a global outside the allowlist...)."""


class LimitError(UnsafeModelError):
    """A worker's request ran past a limit, ended its worker or found every worker busy: ``limit`` is
    "time", "cpu", "memory", "crash" or "busy"."""

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class TrainingStoppedError(ModelShelfError):
    """A demo training request was stopped or refused by the demo's limits (time, memory, rows, busy slots)."""


class ConflictError(ModelShelfError):
    """The request would break a rule of the store (delete an aliased version without force...)."""


class StoreError(ModelShelfError):
    """The store itself cannot do what was asked: its index is missing, it is read-only or busy."""


class StorageError(StoreError):
    """The store's index or files could not be read or written (a damaged index, a full disk...)."""


class StoreUnreachableError(StoreError):
    """A remote store (its index or its files) could not be reached, or refused the credentials given."""


class IndexMissingError(StoreError):
    """The index of a store that holds versions is missing or damaged (never silently recreated)."""


class StoreMismatchError(StoreError):
    """The index and the artifact folder belong to two different stores."""


class SchemaNewerError(StoreError):
    """The index was made by a newer ModelShelf: this release cannot know what its rows mean."""


class SchemaOlderError(StoreError):
    """The index on a database server has an older schema: writes wait for ``python -m core index upgrade``."""


class ReadOnlyStoreError(StoreError):
    """A write to a store this process may only read (a read-only mount, another user's folder)."""


class StoreBusyError(StoreError):
    """Another process held the store's write lock longer than ``MODELSHELF_BUSY_TIMEOUT_S``."""
