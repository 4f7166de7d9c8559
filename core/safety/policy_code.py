"""What counts as code in a loaded model, and how the model policy words a refusal.

The vocabulary of ``core.safety.policy``: :class:`PolicyError`, :func:`is_code` (classes,
functions, ufuncs, partials, callable objects, except the callable *data* scikit-learn keeps:
kernels, losses, splines, scorers, selectors), the reviewed pure functions and numpy types a
model may hold, and the dtype values a parameter may name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.interpolate import BSpline, interp1d
from sklearn._loss.link import BaseLink
from sklearn._loss.loss import BaseLoss
from sklearn.compose import make_column_selector
from sklearn.gaussian_process.kernels import Kernel
from sklearn.metrics._scorer import _BaseScorer, _MultimetricScorer, _PassthroughScorer

from core.errors import UnsafeModelError
from core.safety.calls import check_partial_parts
from core.safety.pure_functions import PURE_REDUCTIONS, PURE_UFUNCS

Rule = Callable[[Any, str], None]


class PolicyError(UnsafeModelError):
    """A loaded model holds something it may not: the slot and the value are named."""


def _refuse(where: str, what: str) -> PolicyError:
    return PolicyError(f"Refused: {where} holds {what}, which a model from elsewhere may not hold; nothing was loaded")


def _describe(value: Any) -> str:
    if isinstance(value, type):
        shown = getattr(value, "stands_for", None) or f"{value.__module__}.{value.__qualname__}"
        return f"the class {shown}"
    if isinstance(value, functools.partial):
        return f"a partial of {_describe(value.func)}"
    if isinstance(value, str):
        return f"the string {value[:60]!r}"
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    module = getattr(value, "__module__", None) or type(value).__module__
    if name:
        return f"the callable {module}.{name}"
    return f"a {type(value).__module__}.{type(value).__qualname__}"


# -- what counts as code ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _callable_objects() -> tuple[type, ...]:
    """Objects scikit-learn defines as callable that are data, not code: kernels, selectors,
    losses, splines and scorers (whose own fields are walked and checked like any other)."""
    scorers = (_BaseScorer, _MultimetricScorer, _PassthroughScorer)
    return (Kernel, make_column_selector, BaseLoss, BaseLink, BSpline, *scorers)


@lru_cache(maxsize=1)
def _made_here() -> tuple[type, ...]:
    """Callables scikit-learn builds itself while loading, from checked data, never from the file.

    ``IsotonicRegression.__setstate__`` rebuilds ``f_`` (a scipy ``interp1d``) from its
    thresholds; the allowlist has no way for a file to make one. Not walked: its insides are
    scipy's own bound methods.
    """
    return (interp1d,)


#: Where scikit-learn keeps the callable data objects above (kernels, losses, splines, scorers,
#: column selectors): anywhere else, such an object is a method put in place of the real one
#: (``lr.predict = DotProduct()``) or a step's missing ``transform``.
CALLABLE_DATA_SLOTS = frozenset(
    {
        "kernel",
        "kernel_",
        "k1",
        "k2",
        "kernels",
        "metric",
        "affinity",
        "_loss",
        "_base_loss",
        "loss",
        "loss_",
        "bsplines_",
        "scorer_",
        "_scorers",
        "scoring",
        "transformers",
        "transformers_",
        "_columns",
    }
)


def is_code(value: Any) -> bool:
    """Anything that runs when called: classes, functions, ufuncs, partials, methods, callables."""
    if isinstance(value, type):
        return True
    if isinstance(value, (np.ndarray, np.generic, str, bytes)):
        return False
    return callable(value) and not isinstance(value, (*_callable_objects(), *_made_here()))


@lru_cache(maxsize=1)
def _pure_functions() -> frozenset[int]:
    return frozenset(id(getattr(np, n)) for n in PURE_UFUNCS if isinstance(getattr(np, n, None), np.ufunc))


@lru_cache(maxsize=1)
def _reductions() -> frozenset[int]:
    return frozenset(id(getattr(np, n)) for n in PURE_REDUCTIONS if hasattr(np, n))


@lru_cache(maxsize=1)
def _numpy_types() -> frozenset[int]:
    """numpy's scalar types and the builtin ones numpy maps to them, as ``dtype`` values."""
    types: set[type] = {t for t in set(np.sctypeDict.values()) if t.__module__ == "numpy"}
    types |= {float, int, bool, complex, str, object}
    return frozenset(id(t) for t in types)


#: Largest item a dtype a model asks for may have (a 16-character text item is 64 bytes).
_MAX_ITEMSIZE = 64


def _check_dtype_value(value: Any, where: str) -> None:
    """A scalar numpy dtype: no records, sub-arrays or raw bytes, items of at most 64 bytes.

    ``OneHotEncoder(dtype="(2000,2000)f8")`` made each one-hot cell a 32 MB sub-array:
    transforming 150 rows took 30 s and 9.3 GB before scipy refused the dtype.
    """
    if value is None or isinstance(value, (str, np.dtype)):
        try:
            dtype = np.dtype(value)
        except (TypeError, ValueError) as exc:
            raise _refuse(where, _describe(value) + " (not a numpy dtype)") from exc
        if dtype.fields or dtype.subdtype or dtype.kind in "VmM" or dtype.itemsize > _MAX_ITEMSIZE:
            shown = value if isinstance(value, str) else dtype.str
            raise _refuse(where, f"the dtype {shown!r:.60} (allowed: numeric, bool, object or short text scalars)")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_dtype_value(item, where)
        return
    if isinstance(value, type) and id(value) in _numpy_types():
        return
    raise _refuse(where, _describe(value) + " (a dtype must be a numpy type)")


def _check_array_partial(value: functools.partial, where: str) -> None:
    """The partial exactly as the unpickler admits it (skops builds partials itself: check again)."""
    try:
        check_partial_parts(value.func, value.args, value.keywords, vars(value))
    except UnsafeModelError as exc:
        raise _refuse(where, _describe(value) + f" ({exc})") from exc
