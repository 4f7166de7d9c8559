"""What the store's libraries raise, turned into ModelShelf's errors: one line naming what failed.

SQLite, the filesystem, pickle, pyarrow and scikit-learn each fail in their own words (``unexpected
DatabaseError: file is not a database``, a four-line ``IntegrityError: FOREIGN KEY constraint
failed [SQL: ...]``, ``OSError: [Errno 28]``). ``guarded`` wraps every public method of ``Store``
once, here, so callers of the Python API, the command line and the dashboard all get a
``ModelShelfError`` with the library's exception chained as its cause, and every method is
covered, including ones added later.
"""

from __future__ import annotations

import errno
import functools
import inspect
import pickle
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DatabaseError
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from core.errors import (
    DatasetError,
    InvalidParameterError,
    ModelShelfError,
    NotFoundError,
    StorageError,
    StoreError,
)
from core.store.engine import database_error, index_where

C = TypeVar("C", bound=type)

#: Methods that add a version: their failures end in "nothing was saved".
SAVES = frozenset({"save", "save_trained", "import_model", "add_imported", "attach_file"})
#: Methods whose first argument is the version they change: a foreign-key failure means it went.
CHANGES = frozenset(
    {"set_alias", "update_tags", "add_tag", "remove_tag", "set_note", "merge_exports", "attach_file", "delete"}
)
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (SQLAlchemy appends its SQL and a link on later lines)."""
    orig = getattr(exc, "orig", None)  # a SQLAlchemy wrapper: the driver's own words
    lines = str(orig if orig is not None else exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def index_label(store: Any) -> str:
    """Where the index of ``store`` is (``models/index.sqlite``), never a password."""
    location = str(getattr(store, "location", "") or ".")
    return index_where(location, getattr(getattr(store, "index", None), "url", None))


def _ref_text(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], key: str) -> str:
    try:
        bound = inspect.signature(fn).bind(None, *args, **kwargs).arguments
    except TypeError:
        return "?"
    return str(bound.get(key, "?"))


def _database(exc: DatabaseError, store: Any, done: str) -> StoreError:
    """A database error met outside the index's own transactions: the same table as inside them."""
    where = index_label(store)
    found = database_error(exc, str(getattr(store, "location", "") or "."), where, done)
    return found if found is not None else StorageError(f"the index at {where} failed: {first_line(exc)}{done}")


def _saving(exc: Exception, name: str) -> ModelShelfError | None:
    """A model or held-out rows that cannot be saved: the caller's input, refused as such."""
    reason = first_line(exc)
    if type(exc).__name__ == "NotFittedError":
        return InvalidParameterError(f"{name} was not saved: the model is not fitted ({reason})")
    if isinstance(exc, pickle.PicklingError) or (isinstance(exc, (TypeError, AttributeError)) and "pickle" in reason):
        return InvalidParameterError(f"{name} was not saved: the model cannot be written to a file ({reason})")
    if type(exc).__module__.startswith("pyarrow"):
        return DatasetError(f"{name} was not saved: its held-out rows cannot be stored as Parquet ({reason})")
    if isinstance(exc, FileExistsError):
        return StorageError(
            f"{name} was not saved: a file is already where its new version goes ({reason}); "
            "`python -m core doctor` lists what is in the way"
        )
    if isinstance(exc, (ValueError, TypeError)):
        return DatasetError(f"{name} was not saved: {reason}")
    return None


def translate(exc: Exception, store: Any, method: str, ref: Callable[[str], str]) -> ModelShelfError | None:
    """The ModelShelf error a failure of ``store.method`` stands for, or None to let it through."""
    saving = method in SAVES
    done = ": nothing was saved" if saving else ""
    if isinstance(exc, SAIntegrityError) and "FOREIGN KEY" in str(exc) and method in CHANGES:
        return NotFoundError(f"{ref('ref')} was deleted meanwhile: nothing was changed")
    if isinstance(exc, DatabaseError):
        return _database(exc, store, done)
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        return StorageError(f"no space left on the device holding {getattr(store, 'location', '.')}{done}")
    if method == "__init__" and isinstance(exc, OSError):
        return StorageError(f"the store at {getattr(store, 'location', '.')} cannot be opened: {first_line(exc)}")
    if saving and method != "attach_file":
        return _saving(exc, ref("name"))
    return None


def guarded(cls: C) -> C:
    """Wrap every public method of ``cls`` (and ``__init__``) so failures leave it as ModelShelfErrors."""
    for method, fn in list(vars(cls).items()):
        if inspect.isfunction(fn) and (method == "__init__" or not method.startswith("_")):
            setattr(cls, method, _wrap(method, fn))
    return cls


def _wrap(method: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except ModelShelfError:
            raise
        except Exception as exc:
            found = translate(exc, self, method, lambda key: _ref_text(fn, args, kwargs, key))
            if found is None:
                raise
            raise found from exc

    return call


def require_fitted(model: Any) -> None:
    """A scikit-learn estimator must be fitted to be saved (an unfitted one would save, then fail at
    every load); anything else is the caller's own object and is not judged here."""
    if hasattr(model, "fit") and hasattr(model, "get_params"):
        from sklearn.utils.validation import check_is_fitted  # deferred: only a save needs scikit-learn

        check_is_fitted(model)  # NotFittedError, turned into one line by ``guarded``


def leftovers(ref: str, exc: OSError) -> StorageError:
    """A delete whose row is gone but whose folder could not be emptied: done, with files to clean."""
    return StorageError(
        f"{ref} was deleted, but some of its files stay behind ({first_line(exc)}); "
        "`python -m core doctor --repair` cleans them up"
    )
