"""What a stranger's file may CALL while it is read (pickle's REDUCE), and with which arguments.

:func:`call_checks` maps each callable global a file may call to a check on its arguments:
numpy's array/scalar rebuilders, ``numpy.dtype``, ``slice``, ``set``, the tree constructor, the
random generator constructors, ``functools.partial`` only around ``check_array`` with the keyword
arguments scikit-learn gives it... Integers handed to compiled constructors are bounded, since
their cost grows with their size. Everything else on the allowlist may only be referenced.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, NoReturn

import numpy as np
from numpy.random import _pickle
from numpy.random.bit_generator import BitGenerator

from core.errors import UnsafeModelError
from core.safety.allowlist import Global, _catalogue, is_allowed_object, may_create, name_of

ArgCheck = Callable[[tuple[Any, ...]], None]


# -- what may be called, and with what ----------------------------------------------------------


def _refuse(what: str, why: str) -> NoReturn:
    raise UnsafeModelError(f"{what} was called with {why}; the file was not loaded")


def _check_reconstructor(args: tuple[Any, ...]) -> None:
    """``copyreg._reconstructor(cls, base, state)``: an allowlisted class over a plain base."""
    if len(args) != 3:
        _refuse("copyreg._reconstructor", f"{len(args)} arguments")
    cls, base, _state = args
    if not (isinstance(cls, type) and is_allowed_object(cls) and may_create(cls)):
        _refuse("copyreg._reconstructor", "a class outside the allowlist")
    if base not in (object, dict, list, set) or not issubclass(cls, base):
        _refuse("copyreg._reconstructor", f"base {getattr(base, '__name__', base)!r}")


def _check_encode(args: tuple[Any, ...]) -> None:
    """``_codecs.encode(text, 'latin1')`` is how protocol 2 writes bytes; no other codec."""
    if len(args) != 2 or not isinstance(args[0], str) or args[1] not in ("latin1", "latin-1"):
        _refuse("_codecs.encode", "arguments other than (text, 'latin1')")


def _check_reconstruct(args: tuple[Any, ...]) -> None:
    if len(args) != 3 or args[0] is not np.ndarray or not isinstance(args[1], tuple) or any(args[1]):
        _refuse("numpy _reconstruct", "arguments other than (numpy.ndarray, (0,), code)")


def _check_scalar(args: tuple[Any, ...]) -> None:
    if len(args) not in (1, 2) or not isinstance(args[0], np.dtype):
        _refuse("numpy scalar", "arguments other than (dtype, bytes)")
    plain = len(args) == 2 and not args[0].hasobject
    if plain and (not isinstance(args[1], bytes) or len(args[1]) != args[0].itemsize):
        _refuse("numpy scalar", f"data that does not fit its dtype {args[0]}")


def _check_frombuffer(args: tuple[Any, ...]) -> None:
    if len(args) not in (4, 5) or not isinstance(args[1], np.dtype) or args[1].hasobject:
        _refuse("numpy _frombuffer", "arguments other than (buffer, plain dtype, shape, order)")
    if not isinstance(args[0], (bytes, bytearray, memoryview, pickle.PickleBuffer)):
        _refuse("numpy _frombuffer", f"a {type(args[0]).__name__} instead of a buffer")


#: A pickled dtype's type code: one letter and a size ('f8', 'V16', 'U10', 'O8'); structures and
#: subarrays come in the state, never in the code ("f8,f8,..." is parsed field by field).
_TYPE_CODE = re.compile(r"[A-Za-z?][0-9]{0,10}")

#: Bounds on integers handed to compiled constructors, whose cost grows with their size.
_MAX_SMALL_INT_BITS = 64
_MAX_ENTROPY_BITS = 4096
_MAX_ENTROPY_WORDS = 128
_MAX_POOL_SIZE = 1024
_MAX_SPAWN_KEY = 64
_MAX_TREE_VALUES_PER_NODE = 10**8


def _small_int(value: Any, bits: int = _MAX_SMALL_INT_BITS) -> bool:
    if isinstance(value, np.integer):
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) and value.bit_length() <= bits


def _check_dtype(args: tuple[Any, ...]) -> None:
    if not args or not isinstance(args[0], str) or any(not isinstance(a, bool) for a in args[1:]):
        _refuse("numpy.dtype", "arguments other than (type code, align, copy)")
    if len(args) > 3 or not _TYPE_CODE.fullmatch(args[0]):
        _refuse("numpy.dtype", f"the type code {args[0][:20]!r}, which is not a plain one")


def _check_bit_generator(args: tuple[Any, ...]) -> None:
    if len(args) > 2:
        _refuse("a numpy random generator constructor", f"{len(args)} arguments")
    if args:
        first = args[0]
        ok = (isinstance(first, str) and first in _pickle.BitGenerators) or isinstance(first, BitGenerator)
        ok = ok or (isinstance(first, type) and first in _pickle.BitGenerators.values())
        if not ok:
            _refuse("a numpy random generator constructor", f"{type(first).__name__} {first!r:.40}")
    if len(args) == 2 and args[1] is not getattr(_pickle, "__bit_generator_ctor"):
        _refuse("a numpy random generator constructor", "a constructor other than numpy's own")


def _check_entropy(entropy: Any) -> None:
    """A SeedSequence's entropy: None, or an integer (or a few) of at most a few thousand bits.

    numpy turns the integer into 32-bit words in a loop that is quadratic in its size, holding
    the GIL: a 300 KB integer froze every thread of the process for over a minute.
    """
    if entropy is None or (_small_int(entropy, _MAX_ENTROPY_BITS) and entropy >= 0):
        return
    if isinstance(entropy, np.ndarray) and entropy.dtype.kind in "iu":
        entropy = entropy.tolist() if entropy.ndim == 1 and entropy.size <= _MAX_ENTROPY_WORDS else None
    words = isinstance(entropy, (list, tuple)) and len(entropy) <= _MAX_ENTROPY_WORDS
    if words and all(_small_int(e, _MAX_ENTROPY_BITS) and e >= 0 for e in entropy):
        return
    _refuse("numpy.random.bit_generator.SeedSequence", f"an entropy over {_MAX_ENTROPY_BITS} bits or not integers")


def _check_seed_sequence(args: tuple[Any, ...]) -> None:
    if len(args) > 1:
        _refuse("numpy.random.bit_generator.SeedSequence", f"{len(args)} arguments")
    _check_entropy(args[0] if args else None)


def check_seed_sequence_state(state: Any) -> None:
    """``SeedSequence`` state ``(entropy, n_children_spawned, pool, pool_size, spawn_key)``.

    Set without any check by Cython; later ``spawn`` and ``generate_state`` trust it: the pool
    is read ``pool_size`` words long, and the entropy converted as above.
    """
    what = "numpy.random.bit_generator.SeedSequence"
    if not isinstance(state, tuple) or len(state) != 5:
        _refuse(what, "a malformed state")
    entropy, spawned, pool, pool_size, spawn_key = state
    _check_entropy(entropy)
    if not _small_int(spawned) or spawned < 0:
        _refuse(what, "a malformed n_children_spawned")
    if not _small_int(pool_size) or not 4 <= pool_size <= _MAX_POOL_SIZE:
        _refuse(what, f"a pool size outside 4..{_MAX_POOL_SIZE}")
    if not isinstance(pool, np.ndarray) or pool.dtype != np.uint32 or pool.shape != (pool_size,):
        _refuse(what, "a pool that does not match its pool size")
    if not isinstance(spawn_key, tuple) or len(spawn_key) > _MAX_SPAWN_KEY:
        _refuse(what, f"a spawn_key longer than {_MAX_SPAWN_KEY}")
    if any(not _small_int(k) or k < 0 for k in spawn_key):
        _refuse(what, "a spawn_key of other than small integers")


def _check_tree(args: tuple[Any, ...]) -> None:
    """``Tree(n_features, n_classes, n_outputs)``: small positive sizes, one class count per output."""
    if len(args) != 3:
        _refuse("sklearn.tree._tree.Tree", f"{len(args)} arguments")
    n_features, n_classes, n_outputs = args
    classes = np.asarray(n_classes) if isinstance(n_classes, np.ndarray) else None
    if not isinstance(n_features, (int, np.integer)) or not 0 < n_features < 2**31:
        _refuse("sklearn.tree._tree.Tree", f"n_features={n_features!r:.40}")
    if not isinstance(n_outputs, (int, np.integer)) or not 0 < n_outputs <= 100_000:
        _refuse("sklearn.tree._tree.Tree", f"n_outputs={n_outputs!r:.40}")
    if classes is None or classes.shape != (n_outputs,) or classes.dtype.kind not in "iu" or (classes < 1).any():
        _refuse("sklearn.tree._tree.Tree", "n_classes that is not one positive count per output")
    # Each node holds n_outputs * max(n_classes) values, a product the Cython code does not check.
    if int(classes.max()) * int(n_outputs) > _MAX_TREE_VALUES_PER_NODE:
        _refuse("sklearn.tree._tree.Tree", f"n_classes up to {int(classes.max()):,} for {int(n_outputs)} output(s)")


def _check_new_obj(args: tuple[Any, ...]) -> None:
    """The neighbours' ``newObj(cls)`` runs ``cls.__new__(cls)``: only for their own classes."""
    if len(args) != 1 or not isinstance(args[0], type) or not args[0].__module__.startswith("sklearn."):
        _refuse("newObj", "something other than a scikit-learn class")
    if not is_allowed_object(args[0]):
        _refuse("newObj", f"class {args[0].__module__}.{args[0].__qualname__}, which is not allowed")


def _check_pyx_unpickle(args: tuple[Any, ...]) -> None:
    """Cython's ``__pyx_unpickle_X(type, checksum, state)``: the type must be allowlisted too, and
    the state (set field by field, unchecked) small: a SeedSequence's as above, else numbers."""
    if len(args) != 3 or not isinstance(args[0], type) or not is_allowed_object(args[0]):
        _refuse("a Cython unpickle helper", "a type outside the allowlist")
    cls, checksum, state = args
    if not _small_int(checksum):
        _refuse("a Cython unpickle helper", "a malformed checksum")
    if state is None:
        return
    if issubclass(cls, np.random.SeedSequence):
        check_seed_sequence_state(state)
    elif not isinstance(state, tuple) or any(not _number(v) for v in state):
        _refuse(f"{cls.__module__}.{cls.__qualname__}", "a state of other than a few small numbers")


def _number(value: Any) -> bool:
    return value is None or isinstance(value, float) or _small_int(value)


def _numbers_check(what: str) -> ArgCheck:
    """Cython losses are built from a parameter or two (a quantile, a power): small numbers only."""

    def check(args: tuple[Any, ...]) -> None:
        if len(args) > 3 or any(not _number(a) for a in args):
            _refuse(what, "arguments other than a few small numbers")

    return check


def _container_check(what: str) -> ArgCheck:
    def check(args: tuple[Any, ...]) -> None:
        if len(args) > 1 or (args and not isinstance(args[0], (list, tuple, set, frozenset, dict))):
            _refuse(what, "arguments other than one list of items")

    return check


def _slice_check(args: tuple[Any, ...]) -> None:
    if len(args) > 3 or any(a is not None and not _small_int(a) for a in args):
        _refuse("builtins.slice", "arguments other than small integers")


def _complex_check(args: tuple[Any, ...]) -> None:
    if len(args) > 2 or any(not isinstance(a, float) and not _small_int(a) for a in args):
        _refuse("builtins.complex", "arguments other than small numbers")


_TEXT_ENCODINGS = ("latin1", "latin-1", "utf-8", "utf8", "ascii")


def _bytes_check(args: tuple[Any, ...]) -> None:
    """``bytes(data)`` or ``bytes(text, encoding)``: a plain text encoding, never a codec lookup
    by a name the file chose, and never ``bytes(n)`` (n zero bytes)."""
    if len(args) > 2 or (args and not isinstance(args[0], (bytes, bytearray, list, str))):
        _refuse("builtins.bytes", "arguments other than data")
    if len(args) == 2 and (not isinstance(args[0], str) or args[1] not in _TEXT_ENCODINGS):
        _refuse("builtins.bytes", "an encoding other than latin-1, utf-8 or ascii")


def _check_mareconstruct(args: tuple[Any, ...]) -> None:
    """``numpy.ma.core._mareconstruct(MaskedArray, ndarray, (0,), 'b')``: exactly what numpy writes."""
    if len(args) != 4 or args[0] is not np.ma.MaskedArray or args[1] is not np.ndarray:
        _refuse("numpy.ma.core._mareconstruct", "classes other than (numpy.ma.MaskedArray, numpy.ndarray)")
    if type(args[2]) is not tuple or args[2] != (0,) or type(args[3]) is not str or args[3] != "b":
        _refuse("numpy.ma.core._mareconstruct", "a shape or type other than ((0,), 'b')")


# -- functools.partial: only around a reviewed function, with the arguments scikit-learn gives it --


def _check_array_keywords(keywords: dict[str, Any]) -> bool:
    """HistGradientBoosting's ``partial(check_array, dtype=[float64], ensure_all_finite=False)``."""
    if not set(keywords) <= {"dtype", "ensure_all_finite"}:
        return False
    dtype = keywords.get("dtype", [np.float64])
    types = list(dtype) if type(dtype) in (list, tuple) else [dtype]
    floats = bool(types) and all(t is np.float64 or t is np.float32 for t in types)
    finite = keywords.get("ensure_all_finite", True)
    return floats and (finite is True or finite is False or (type(finite) is str and finite == "allow-nan"))


#: ``(module, name) -> keyword check``: what a ``functools.partial`` in a file may wrap. Only
#: keyword arguments, never positional ones, never a ``__dict__``.
PARTIAL_FUNCTIONS: dict[Global, Callable[[dict[str, Any]], bool]] = {
    ("sklearn.utils.validation", "check_array"): _check_array_keywords,
}


def _partial_keywords_check(func: Any) -> Callable[[dict[str, Any]], bool] | None:
    for key, check in PARTIAL_FUNCTIONS.items():
        if _catalogue().get(key) is func and func is not None:
            return check
    return None


def _partial_refused(why: str) -> UnsafeModelError:
    allowed = ", ".join(f"{m}.{n}" for m, n in PARTIAL_FUNCTIONS)
    return UnsafeModelError(f"functools.partial is not allowed {why} (only around {allowed}); the file was not loaded")


def check_partial_parts(func: Any, args: Any, keywords: Any, namespace: Any) -> None:
    """A partial's function, positional and keyword arguments and ``__dict__``, as its state holds them."""
    check = _partial_keywords_check(func)
    if check is None:
        raise _partial_refused(f"around {name_of(func)}")
    if type(args) is not tuple or args:
        raise _partial_refused("with positional arguments")
    if keywords is not None and (type(keywords) is not dict or not check(keywords)):
        raise _partial_refused(f"with the keyword arguments {sorted(keywords) if isinstance(keywords, dict) else '?'}")
    if namespace is not None and (type(namespace) is not dict or namespace):
        raise _partial_refused("with attributes of its own")


def _check_partial_call(args: tuple[Any, ...]) -> None:
    """pickle writes ``partial(func)`` then sets the rest as state (see :func:`check_partial_state`)."""
    if len(args) != 1:
        raise _partial_refused("without its function" if not args else "with positional arguments")
    check_partial_parts(args[0], (), None, None)


def check_partial_state(state: Any) -> None:
    """``partial.__setstate__((func, args, keywords, __dict__))``: the same rules as for creating one."""
    if type(state) is not tuple or len(state) != 4:
        raise _partial_refused("with a malformed state")
    check_partial_parts(*state)


@lru_cache(maxsize=1)
def call_checks() -> dict[int, tuple[str, ArgCheck]]:
    """``id(callable) -> (name, argument check)`` for the globals a file may call (pickle REDUCE)."""
    catalogue = _catalogue()
    checks: dict[Global, ArgCheck] = {
        ("copyreg", "_reconstructor"): _check_reconstructor,
        ("_codecs", "encode"): _check_encode,
        ("numpy._core.multiarray", "_reconstruct"): _check_reconstruct,
        ("numpy._core.multiarray", "scalar"): _check_scalar,
        ("numpy._core.numeric", "_frombuffer"): _check_frombuffer,
        ("numpy", "dtype"): _check_dtype,
        ("numpy.random._pickle", "__bit_generator_ctor"): _check_bit_generator,
        ("numpy.random._pickle", "__generator_ctor"): _check_bit_generator,
        ("numpy.random._pickle", "__randomstate_ctor"): _check_bit_generator,
        ("sklearn.tree._tree", "Tree"): _check_tree,
        ("sklearn.neighbors._kd_tree", "newObj"): _check_new_obj,
        ("sklearn.neighbors._ball_tree", "newObj"): _check_new_obj,
        ("sklearn.metrics._dist_metrics", "newObj"): _check_new_obj,
        ("builtins", "slice"): _slice_check,
        ("builtins", "complex"): _complex_check,
        ("builtins", "set"): _container_check("builtins.set"),
        ("builtins", "frozenset"): _container_check("builtins.frozenset"),
        ("builtins", "bytes"): _bytes_check,
        ("builtins", "bytearray"): _bytes_check,
        ("collections", "OrderedDict"): _container_check("collections.OrderedDict"),
        ("numpy.ma.core", "_mareconstruct"): _check_mareconstruct,
        ("functools", "partial"): _check_partial_call,
    }
    for module, name in catalogue:
        if name.startswith("__pyx_unpickle_"):
            checks[(module, name)] = _check_pyx_unpickle
        elif module == "sklearn._loss._loss" and name.startswith("Cy"):
            checks[(module, name)] = _numbers_check(f"{module}.{name}")  # built from a few numbers
        elif module == "numpy.random.bit_generator" and name == "SeedSequence":
            checks[(module, name)] = _check_seed_sequence
    table: dict[int, tuple[str, ArgCheck]] = {}
    for (module, name), check in checks.items():
        obj = catalogue.get((module, name))
        if obj is not None:
            table[id(obj)] = (f"{module}.{name}", check)
    return table
