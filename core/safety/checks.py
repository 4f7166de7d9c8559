"""The plain checks on a loaded model: a fitted estimator, no deeper than a bound, its feature count.

Shared by the structure checks (``checks_structures``, ``checks_trees``,
``checks_neighbors_svm``), which import it; it imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from core.errors import FormatError, UnsafeModelError


def _bad(what: str, why: str) -> UnsafeModelError:
    return UnsafeModelError(f"Refused a crafted or damaged {what}: {why}; nothing was loaded")


def check_fitted_estimator(model: Any) -> None:
    """A fitted scikit-learn estimator or pipeline that can ``predict``; else one clear FormatError."""
    # Deferred: scikit-learn; core.safety imports this module in the parent (for n_features_of), which
    # stays on numpy alone (doctor's sandbox report); the check itself runs where a model is loaded.
    from sklearn.base import BaseEstimator
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(model, BaseEstimator):
        raise FormatError(
            f"The file holds a {type(model).__module__}.{type(model).__qualname__}, not a scikit-learn model"
        )
    if not callable(getattr(model, "predict", None)):
        raise FormatError(f"The file's {type(model).__name__} has no predict method, so it cannot be scored")
    try:
        check_is_fitted(model)
    except NotFittedError as exc:
        raise FormatError(f"The file holds an unfitted {type(model).__name__}; fit it before uploading") from exc
    except (TypeError, AttributeError, ValueError) as exc:
        raise FormatError(f"The file's {type(model).__name__} is not a usable fitted model: {exc}") from exc


def n_features_of(model: Any) -> int | None:
    """How many input columns the model was fitted on (None when it does not say)."""
    value = getattr(model, "n_features_in_", None)
    return int(value) if isinstance(value, (int, np.integer)) else None


def _features_of(estimator: Any, what: str) -> int:
    """``n_features_in_``, required: scikit-learn compares the data's width with it before any
    compiled code indexes a feature, and skips that comparison when the attribute is missing."""
    value = vars(estimator).get("n_features_in_") if hasattr(estimator, "__dict__") else None
    if isinstance(value, np.integer):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**31:
        raise _bad(
            what,
            "it has no valid n_features_in_ (every fitted scikit-learn model has one), so the features "
            "its compiled code reads could not be checked against the data",
        )
    return value


def check_nesting(model: Any, limit: int, tick: Callable[[], None] | None = None) -> None:
    """No chain of containers and objects longer than ``limit``, measured without recursion.

    The unpickler counts depth as it builds; a file can still deepen a list after putting it in
    its parent (through the memo), and skops builds objects its own way. Printing, comparing or
    copying such a model would recurse until Python (or C) runs out of stack.
    """
    height: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(model, False)]
    steps = 0
    while stack:
        obj, finished = stack.pop()
        key = id(obj)
        if finished:
            on_path.discard(key)
            below = max((height.get(id(c), 0) for c in _children(obj)), default=0)
            if below + 1 > limit:
                raise UnsafeModelError(
                    f"The file nests objects too deeply to be a model (more than {limit} levels), so it was refused"
                )
            height[key] = below + 1
            continue
        if key in height or key in on_path or _is_leaf(obj):
            continue
        steps += 1
        if tick is not None and steps % 1024 == 0:
            tick()
        on_path.add(key)
        stack.append((obj, True))
        stack.extend((child, False) for child in _children(obj) if not _is_leaf(child))


def _is_leaf(obj: Any) -> bool:
    return (
        obj is None
        or isinstance(obj, (str, bytes, int, float, complex, np.generic))
        or (isinstance(obj, np.ndarray) and not obj.dtype.hasobject)
    )


# -- walking the object graph --------------------------------------------------------------------


def _children(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, np.ndarray):
        return list(obj.ravel()) if obj.dtype.hasobject else []
    state = getattr(obj, "__dict__", None)
    return list(state.values()) if isinstance(state, dict) else []


def _has_special_names(state: dict) -> bool:
    """``__sklearn_is_fitted__``, ``__setstate__``...: names Python and scikit-learn look up as behaviour."""
    return any(isinstance(k, str) and k.startswith("__") for k in state)
