"""What a stranger's model may HOLD: deny by default, one explicit rule per dangerous slot.

The restricted unpickler (``core.safety.unpickler``) decides what a file may call *while it is read*.
That is not enough: scikit-learn calls what a model holds *later*. A pipeline made only of
allowlisted pieces, ``FunctionTransformer(numpy.memmap, kw_args={"mode": "w+"})``, writes a
file the first time anyone predicts with it; ``CountVectorizer(input="filename")`` reads one;
a k-NN ``metric``, an SVC ``kernel`` or a ColumnTransformer column selector is called with the
data. So after loading and before anything uses the model, :func:`check_model_policy` walks
every object reachable from it and applies these rules:

* **Code is refused everywhere** (classes, functions, builtins, numpy ufuncs, ``functools.partial``,
  bound methods, any other callable object) except in the few slots that have a rule saying
  otherwise: ``func``/``inverse_func`` (a short, reviewed list of pure numpy functions, and the
  ``check_array`` partial scikit-learn itself stores), ``dtype`` (numpy scalar types),
  ``score_func`` (scikit-learn's own univariate scores, used only when fitting), ``pooling_func``
  (numpy reductions), a fitted search's scorer (scikit-learn's own metrics), column selectors made
  by ``make_column_selector``, and scikit-learn's own Gaussian-process kernels.
* **Dispatch strings come from scikit-learn's names**: every parameter whose declared
  constraints list string options (``metric``, ``kernel``, ``analyzer``, ``solver``, ...) must
  hold one of them; parameters that also take free text have a rule of their own (``metric``:
  a known distance name; ``memory``: None only; ``input``: ``"content"`` only; ``encoding``: a
  text codec; ``token_pattern``: a bounded regular expression ...). Fitted attributes that pick a
  code path (``effective_metric_``, ``_fit_method``, ``out_activation_``, libsvm's ``_impl``,
  ...) are checked the same way.
* **Instances**: only scikit-learn estimators and the helper, numpy and scipy types on the
  allowlist, never ``numpy.memmap`` (a file-backed array) or a file, socket or module.

``tests/test_model_policy.py`` walks ``sklearn.utils.all_estimators()`` and fails when a
parameter that can hold a callable, a class, free text or a path, or a fitted attribute that
holds a string, has no rule here: a new scikit-learn slot cannot slip through unnoticed.
This module walks the model; the rules are in ``core.safety.policy_rules``, what counts as code
in ``core.safety.policy_code``.
"""

from __future__ import annotations

import collections
import functools
import inspect
import io
import socket
import types
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.metrics import _dist_metrics
from sklearn.metrics._dist_metrics import DistanceMetric32, DistanceMetric64
from sklearn.neighbors import BallTree, KDTree
from sklearn.utils._param_validation import Hidden, Options, StrOptions

from core.safety.policy_code import CALLABLE_DATA_SLOTS, PolicyError, Rule, _describe, _made_here, _refuse, is_code
from core.safety.policy_owners import refine, rule_libsvm_kernel, rule_metric_name, rule_no_kernel_object
from core.safety.policy_rules import (
    _PREDICT_LOOPS,
    FITTED_RULES,
    PARAM_RULES,
    _check_predict_loop,
    rule_metric,
    rule_n_jobs,
    rule_no_code,
    rule_scoring,
)

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

_MAX_OBJECTS = 5_000_000


# -- string options declared by scikit-learn ------------------------------------------------------


@lru_cache(maxsize=512)
def declared_strings(cls: type, param: str) -> tuple[frozenset[str] | None, bool]:
    """(the string options a parameter declares, whether it also takes free text).

    ``(None, False)`` when the parameter declares no string constraint at all.
    """
    constraints = getattr(cls, "_parameter_constraints", {}).get(param)
    if not isinstance(constraints, list):
        return None, False
    options: set[str] = set()
    free = False
    for constraint in constraints:
        inner = constraint.constraint if isinstance(constraint, Hidden) else constraint
        if isinstance(inner, (StrOptions, Options)):
            options |= {o for o in inner.options if isinstance(o, str)}
        elif inner is str:
            free = True
    if not options and not free:
        return None, False
    return frozenset(options), free


def _declared_name(owner: Any, slot: str | None, value: Any) -> bool:
    if not isinstance(value, str) or slot is None or slot not in _param_names(owner):
        return False
    options, _free = declared_strings(type(owner), slot)  # type: ignore[arg-type]  # a class is hashable: python/mypy#20409
    return options is not None and value in options


def _check_declared_string(obj: Any, param: str, value: Any, where: str) -> None:
    if not isinstance(value, str):
        return
    options, free = declared_strings(type(obj), param)  # type: ignore[arg-type]  # a class is hashable: python/mypy#20409
    if options is None or free or value in options:
        return
    if value in ("deprecated", "warn"):  # scikit-learn's own transition sentinels
        return
    raise _refuse(where, _describe(value) + f" (scikit-learn allows: {', '.join(sorted(options))})")


# -- the walk -------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _never_instances() -> tuple[type, ...]:
    # PyFuncDistance calls the Python function it holds (from its pickled state, out of the
    # walk's sight) with every pair of rows: code in a slot no rule reviews.
    pyfunc = tuple(
        getattr(_dist_metrics, n) for n in ("PyFuncDistance64", "PyFuncDistance32") if hasattr(_dist_metrics, n)
    )
    return (np.memmap, io.IOBase, socket.socket, types.ModuleType, types.FrameType, types.CodeType, *pyfunc)


@lru_cache(maxsize=1)
def _opaque_types() -> tuple[type, ...]:
    """Compiled objects that keep their state outside ``__dict__``: walked through ``__getstate__``."""
    return (DistanceMetric64, DistanceMetric32, KDTree, BallTree)


def _slots(obj: Any) -> Iterator[tuple[Any, Any]]:
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        yield from state.items()


_PLAIN = (type(None), bool, int, float, str)


_NOTHING = object()


@lru_cache(maxsize=65536)
def _class_defines(cls: type, key: str) -> Any:
    """What ``cls`` itself defines under ``key`` (``_NOTHING`` if nothing): a forest's 200 trees ask
    the same questions, so the answers are kept (classes do not change while a server runs)."""
    try:
        return inspect.getattr_static(cls, key)
    except AttributeError:
        return _NOTHING


def _check_attribute_names(obj: Any, where: str) -> None:
    """An instance attribute may not be special (``__...__``) nor hide what its class defines.

    Python finds an instance's ``__dict__`` before its class's methods and properties, so a file
    that sets ``predict``, ``transform``, ``__sklearn_tags__`` or ``_sk_visual_block_`` on an
    estimator replaces the method scikit-learn and ModelShelf call. Only a plain class default
    (``LassoLars.positive = False``) may be overridden, by a plain value.
    """
    cls = type(obj)
    for key, value in _slots(obj):
        if not isinstance(key, str):
            raise _refuse(f"{where} (an attribute name)", _describe(key) + " (attribute names are text)")
        if key.startswith("__") and key.endswith("__"):
            raise _refuse(f"{cls.__name__}.{key[:60]}", _describe(value) + " (special attributes are the class's own)")
        defined = _class_defines(cls, key)  # type: ignore[arg-type]  # a class is hashable: python/mypy#20409
        if defined is _NOTHING:
            continue
        if value is defined or (isinstance(defined, _PLAIN) and isinstance(value, _PLAIN)):
            continue
        raise _refuse(
            f"{cls.__name__}.{key[:60]}",
            _describe(value) + f" in place of what its class defines there ({_describe(defined)})",
        )


def _param_names(obj: Any) -> frozenset[str]:
    if not isinstance(obj, BaseEstimator):
        return frozenset()
    return _class_param_names(type(obj))  # type: ignore[arg-type]  # a class is hashable: python/mypy#20409


@lru_cache(maxsize=1024)
def _class_param_names(cls: type[BaseEstimator]) -> frozenset[str]:
    """Once per class: ``_get_param_names`` inspects the signature (slow for 500,000 values)."""
    try:
        return frozenset(cls._get_param_names())
    except (RuntimeError, TypeError, ValueError):
        return frozenset()


def check_model_policy(model: Any, tick: Callable[[], None] | None = None) -> None:
    """Refuse a model that holds code, file-backed arrays or dispatch values outside the rules.

    Walks every object reachable from ``model`` (attributes, containers, object arrays and
    their fields, compiled objects' pickled state). Each value is checked in its slot:
    ``Class.attribute`` with a rule above, else the generic rule (no code; string options as
    scikit-learn declares them). Then the graph's size counted path by path is bounded.
    """
    # id -> object: holding a reference keeps temporaries (field views, compiled objects' state)
    # alive, so that no later object can reuse an id and be skipped as already seen.
    seen: dict[int, Any] = {}
    walked: dict[int, list[Any]] = {}  # id -> its children, for the expansion count (same objects)
    stack: list[tuple[Any, str, str | None, Any]] = [(model, type(model).__name__, None, None)]
    never = _never_instances()
    while stack:
        value, where, slot, owner = stack.pop()
        if value is None or isinstance(value, (bool, int, float, complex, np.number, np.bool_)):
            if value is not None and slot in _NUMBER_SLOTS and (rule := _rule_for(owner, slot)) in _NUMBER_RULES:
                rule(value, where)
            if value is not None and slot in _PREDICT_LOOPS:
                _check_predict_loop(owner, slot, value, where)
            continue
        if isinstance(value, never):
            raise _refuse(
                where,
                _describe(value) + " (file-backed arrays, files, sockets, modules and Python-function metrics never)",
            )
        rule = _rule_for(owner, slot)
        if rule in _NAME_RULES and _declared_name(owner, slot, value):
            pass  # one of the options scikit-learn itself declares for this parameter
        elif rule is not None:
            rule(value, where)
        elif is_code(value):
            raise _refuse(where, _describe(value))
        elif (
            callable(value)
            and slot not in CALLABLE_DATA_SLOTS
            and not isinstance(value, (np.ndarray, np.generic, *_made_here()))
        ):
            raise _refuse(where, _describe(value) + " (a callable object, allowed only where scikit-learn keeps one)")
        if owner is not None and slot is not None and slot in _param_names(owner):
            _check_declared_string(owner, slot, value, where)
        if isinstance(value, (str, bytes, bytearray, type)) or id(value) in seen:
            continue
        seen[id(value)] = value
        if len(seen) > _MAX_OBJECTS:
            raise PolicyError(f"Refused: the model holds more than {_MAX_OBJECTS:,} objects; nothing was loaded")
        if tick is not None and len(seen) % 4096 == 0:
            tick()
        if not is_code(value):
            _check_attribute_names(value, where)
        children = _children(value, where, slot, owner)
        walked[id(value)] = [child for child, _where, _slot, _owner in children]
        stack.extend(reversed(children))  # in order: the first bad slot is named
    _check_expansion(model, tick, walked)


#: Rules that also see numbers (every other rule is about text, code or containers).
_NUMBER_RULES: frozenset[Rule] = frozenset({rule_n_jobs})
_NUMBER_SLOTS = frozenset({"n_jobs"})

#: Rules that accept any option scikit-learn declares for the parameter (others, like ``input``,
#: are narrower than the declared options on purpose).
_NAME_RULES: frozenset[Rule] = frozenset(
    {rule_metric, rule_scoring, rule_no_code, rule_libsvm_kernel, rule_metric_name, rule_no_kernel_object}
)


def _rule_for(owner: Any, slot: str | None) -> Rule | None:
    if owner is None or slot is None:
        return None
    rule = PARAM_RULES.get(slot) if slot in _param_names(owner) else FITTED_RULES.get(slot)
    return refine(owner, slot, rule)


def _label(key: Any) -> str:
    """A dict key for a message, without calling its ``repr`` (a crafted key's repr can take forever)."""
    if isinstance(key, str):
        return repr(key[:40])
    if isinstance(key, (bool, int, float, np.number)):
        return repr(key)[:40]
    return f"<{type(key).__name__}>"


def _fields(value: Any, where: str, slot: str | None, owner: Any) -> list[tuple[Any, str, str | None, Any]]:
    """The fields of a structured array or record whose dtype holds Python objects."""
    names = value.dtype.names or ()
    if not names and isinstance(value, np.void):
        raise _refuse(where, "a numpy record holding objects outside named fields")
    return [(value[name], f"{where}[{_label(name)}]", slot, owner) for name in names]


def _children(value: Any, where: str, slot: str | None, owner: Any) -> list[tuple[Any, str, str | None, Any]]:
    """(child, where, slot, owner): containers keep their parent's slot, objects start their own.

    Nothing is out of sight: a container subclass's own attributes (``OrderedDict``, ``Bunch``),
    a ``defaultdict``'s factory, a structured array's object fields and a compiled object's
    pickled state (distance metrics, KD/ball trees) are walked like everything else.
    """
    own = [(v, f"{type(value).__name__}.{k}", k, value) for k, v in _slots(value)]
    if isinstance(value, dict):  # keys are names of the owner's choosing: checked as plain values
        keys = [(k, f"{where} (a key)", None, None) for k in value]
        items = [(v, f"{where}[{_label(k)}]", slot, owner) for k, v in value.items()]
        if isinstance(value, collections.defaultdict):
            items.append((value.default_factory, f"{where} (its default_factory)", None, None))
        return keys + items + own
    if isinstance(value, (list, tuple, set, frozenset)):
        return [(v, f"{where}[{i}]", slot, owner) for i, v in enumerate(value)] + own
    if isinstance(value, np.ndarray):
        if not value.dtype.hasobject:
            return []
        if value.dtype.names:
            return _fields(value, where, slot, owner)
        return [(v, f"{where}[...]", slot, owner) for v in value.ravel()]
    if isinstance(value, np.void):
        return _fields(value, where, slot, owner) if value.dtype.hasobject else []
    if isinstance(value, functools.partial):
        return []  # checked whole by its slot's rule
    if inspect.isroutine(value) or isinstance(value, (np.ufunc, *_made_here())):
        return []
    if isinstance(value, _opaque_types()):
        state: Any = value.__getstate__()  # a compiled class's own pickled state (a tuple)
        name = type(value).__name__
        return [(v, f"{name} (pickled state {i})", None, None) for i, v in enumerate(state)]
    return own


# -- the graph's size, path by path ---------------------------------------------------------------

#: Objects reached when every path is followed (what ``repr``, ``hash``, ``==``, ``get_params``,
#: the pipeline diagram and a kernel's ``__call__`` do), and how deep.
_MAX_EXPANDED = 2 * _MAX_OBJECTS
_MAX_DEPTH = 200
_END = object()


def _check_expansion(
    model: Any, tick: Callable[[], None] | None = None, walked: dict[int, list[Any]] | None = None
) -> None:
    """Refuse a graph that is small on disk and huge when followed path by path.

    A file can share one object twice at each of 40 levels (``t = (t, t)``, ``Sum(k, k)``): 80
    objects, but ``repr``, ``hash`` and ``==`` of the top one, ``get_params`` and the HTML diagram
    of an estimator made that way, or a Gaussian process's kernel, visit 2**40. Each node's
    expanded size is counted once (memoised) in a depth-first pass; a cycle counts as one.
    ``walked``: the children the policy walk found (listing them again cost that walk's time).
    """
    walked = walked or {}
    sizes: dict[int, int] = {}
    alive: list[Any] = []  # temporaries (views, pickled states) keep their ids while counted
    on_path: set[int] = {id(model)}
    frames: list[list[Any]] = [[model, iter(_graph_children(model, walked)), 1]]
    while frames:
        frame = frames[-1]
        child = next(frame[1], _END)
        if child is _END:
            frames.pop()
            on_path.discard(id(frame[0]))
            sizes[id(frame[0])] = frame[2]
            alive.append(frame[0])
            if tick is not None and len(sizes) % 4096 == 0:
                tick()
            if frames:
                frames[-1][2] += frame[2]
                _bound_expansion(frames[-1][2])
            continue
        key = id(child)
        if key in sizes:
            frame[2] += sizes[key]
            _bound_expansion(frame[2])
        elif key in on_path or _is_leaf(child):
            frame[2] += 1
        else:
            if len(frames) >= _MAX_DEPTH:
                raise PolicyError(
                    f"Refused: the model nests objects more than {_MAX_DEPTH} levels deep; nothing was loaded"
                )
            on_path.add(key)
            frames.append([child, iter(_graph_children(child, walked)), 1])


def _is_leaf(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, bytearray, type, np.generic)):
        return not (isinstance(value, np.void) and value.dtype.hasobject)
    return isinstance(value, np.ndarray) and not value.dtype.hasobject


def _graph_children(value: Any, walked: dict[int, list[Any]]) -> list[Any]:
    known = walked.get(id(value))
    return known if known is not None else [child for child, _w, _s, _o in _children(value, "", None, None)]


def _bound_expansion(size: int) -> None:
    if size > _MAX_EXPANDED:
        raise PolicyError(
            f"Refused: the model's objects, followed path by path, number more than {_MAX_EXPANDED:,} "
            "(shared many times over, so showing or using it would never finish); nothing was loaded"
        )
