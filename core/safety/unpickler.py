"""The restricted unpickler: pickle's pure-Python one with every global, call and state change checked.

Globals resolve only through ``core.safety.allowlist``; only the callables of
``core.safety.calls`` may be called, each with its arguments checked; instances of allowlisted
classes are made with ``cls.__new__(cls)`` and no arguments; a file may not set attributes on a
class or function; array states must match their shapes (``core.safety.arrays``). Nesting and
shared-object expansion are bounded before an opcode hashes anything. joblib's unpickler gets the
same guards, and its array wrapper is read within bounds.
"""

from __future__ import annotations

import _compat_pickle
import functools
import io
import math
import mmap
import pickle
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

import core.safety.allowlist as allowlist
from core.errors import FormatError, UnsafeModelError
from core.safety.arrays import _after_build, _check_array_state, _check_dtype_state, _check_masked_array_state
from core.safety.calls import call_checks, check_partial_state, check_seed_sequence_state
from core.safety.limits import _Guard

_TICK_EVERY = 256  # a power of two: the opcode loop tests ``count & (_TICK_EVERY - 1)``
#: Deepest nesting of containers and objects a file may build (real models stay far below).
MAX_NESTING = 200


class _RestrictedMixin:
    """The guards, shared by the plain and the joblib unpickler (both pickle's pure-Python one)."""

    _guard: _Guard
    stack: list[Any]
    append: Callable[[Any], None]
    dispatch: ClassVar[dict[int, Callable[[Any], None]]]
    _file_read: Callable[[int], bytes]
    _file_readline: Callable[[], bytes]

    def load(self) -> Any:
        """pickle's own opcode loop (3.11's ``_Unpickler.load``), with the deadline checked every
        ``_TICK_EVERY`` opcodes: counting inline costs a fraction of wrapping each opcode's handler
        in a function that counts."""
        self._unframer = pickle._Unframer(self._file_read, self._file_readline)  # type: ignore[attr-defined]  # pickle's private pure-Python loader: not in typeshed
        self.read = self._unframer.read
        self.readinto = self._unframer.readinto
        self.readline = self._unframer.readline
        self.metastack: list[Any] = []
        self.stack = []
        self.append = self.stack.append
        self.proto = 0
        read, dispatch, guard = self.read, self.dispatch, self._guard
        mask = _TICK_EVERY - 1
        count = 0
        try:
            while True:
                key = read(1)
                if not key:
                    raise EOFError
                count += 1
                if not count & mask:
                    guard.tick()
                dispatch[key[0]](self)
        except pickle._Stop as stop:  # type: ignore[attr-defined]  # pickle's private pure-Python loader: not in typeshed
            return stop.value
        finally:
            guard.ops += count

    def find_class(self, module: str, name: str) -> Any:
        self._guard.tick()
        if getattr(self, "proto", 5) < 3:
            module, name = _python2_names(module, name)
        return allowlist.resolve(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeModelError("The file refers to external objects (pickle persistent ids), which is not allowed")

    def _call(self, func: Any, args: Any) -> Any:
        entry = call_checks().get(id(func))
        if entry is None:
            raise UnsafeModelError(
                f"{allowlist.name_of(func)} may not be called while loading (only a short list of "
                "array and object rebuilders may), so the file was not loaded"
            )
        if not isinstance(args, tuple):
            raise UnsafeModelError(f"{entry[0]} was called with malformed arguments; the file was not loaded")
        entry[1](args)
        return func(*args)

    def load_reduce(self) -> None:
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args)

    def _new(self, cls: Any, args: Any, kwargs: Any = None) -> Any:
        if not isinstance(cls, type) or not allowlist.is_allowed_object(cls) or not allowlist.may_create(cls):
            raise UnsafeModelError(f"{allowlist.name_of(cls)} is not a class the file may create")
        if args or kwargs:
            raise UnsafeModelError(
                f"{allowlist.name_of(cls)} was created with constructor arguments, which is not allowed"
            )
        return cls.__new__(cls)  # type: ignore[call-overload]  # the class's own __new__: python/mypy#10100

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, args))

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, args, kwargs))

    def _instantiate(self, klass: Any, args: Any) -> None:  # INST and OBJ opcodes (protocols 0 and 1)
        if not args and isinstance(klass, type):
            self.append(self._new(klass, ()))
        else:
            self.append(self._call(klass, tuple(args)))

    def _guard_build(self) -> None:
        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, type) or allowlist.is_allowed_object(inst):
            raise UnsafeModelError(
                f"The file tries to change {allowlist.name_of(inst)} itself (not an object it built); not loaded"
            )
        if isinstance(inst, np.ma.MaskedArray):
            _check_masked_array_state(state, self._guard.limits.max_decompressed_bytes)
        elif isinstance(inst, np.ndarray):
            _check_array_state(state, self._guard.limits.max_decompressed_bytes)
        if isinstance(inst, functools.partial):
            check_partial_state(state)
        if isinstance(inst, np.dtype):
            _check_dtype_state(inst, state)
        if isinstance(inst, np.random.SeedSequence):
            check_seed_sequence_state(state)
        # Both forms of an instance's state: a dict, or (dict, slotstate) applied with setattr. A
        # special name in either would be read back by Python or scikit-learn as behaviour: a
        # ``__setstate__`` that the next BUILD calls with the file's arguments, a
        # ``__sklearn_is_fitted__`` that makes an unfitted model pass as fitted.
        slotstate = state[1] if isinstance(state, tuple) and len(state) == 2 else None
        mapping = state[0] if isinstance(state, tuple) and len(state) == 2 else state
        for part in (mapping, slotstate):
            if isinstance(part, dict) and any(isinstance(k, str) and k.startswith("__") for k in part):
                raise UnsafeModelError("The file tries to set special attributes (__...__) on an object; not loaded")
        if isinstance(mapping, dict) and isinstance(mapping.get("_sklearn_version"), str):
            self._guard.sklearn_versions.append(mapping["_sklearn_version"])

    def load_build(self) -> None:
        self._guard_build()
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]  # typeshed lists no load_* handlers
        _after_build(self.stack[-1])


def _python2_names(module: str, name: str) -> tuple[str, str]:
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


#: Opcodes that build or fill a container or object from stack items: how many items they take
#: from the top of the stack (None: everything since the last MARK).
_NESTING_OPS: dict[bytes, int | None] = {
    pickle.TUPLE: None,
    pickle.LIST: None,
    pickle.DICT: None,
    pickle.FROZENSET: None,
    pickle.INST: None,
    pickle.OBJ: None,
    pickle.APPENDS: None,
    pickle.SETITEMS: None,
    pickle.ADDITEMS: None,
    pickle.TUPLE1: 1,
    pickle.TUPLE2: 2,
    pickle.TUPLE3: 3,
    pickle.APPEND: 1,
    pickle.SETITEM: 2,
    pickle.BUILD: 1,
    pickle.REDUCE: 2,
    pickle.NEWOBJ: 2,
    pickle.NEWOBJ_EX: 3,
}


def _too_deep() -> UnsafeModelError:
    return UnsafeModelError(
        f"The file nests objects too deeply to be a model (more than {MAX_NESTING} levels), so it was refused"
    )


_PLAIN_VALUES = frozenset({int, float, str, bytes, bool, type(None), np.ndarray, np.dtype})
_CONTAINERS = (tuple, list, dict, set, frozenset)


def _recorded(table: dict[int, int], obj: Any) -> int:
    """A depth or size recorded for ``obj``, else 1 for a container or an object with attributes,
    0 for a plain value (``_Guard.depths`` and ``_Guard.sizes`` share the rule)."""
    if type(obj) in _PLAIN_VALUES:  # most stack items: numbers, text, arrays (no recursion through them)
        return 0
    known = table.get(id(obj))
    if known is not None:
        return known
    return 1 if isinstance(obj, _CONTAINERS) or hasattr(obj, "__dict__") else 0


#: Objects a container may reach when every path is followed (``t = (t0, t0)`` 40 times over is
#: 80 objects in the file and 2**40 for ``hash``, which runs in C, under the GIL, in the opcode).
MAX_EXPANDED = 10_000_000


def _too_big_graph() -> UnsafeModelError:
    return UnsafeModelError(
        f"The file shares objects so that following them reaches more than {MAX_EXPANDED:,}; refused"
    )


def _nested(handler: Callable[[Any], None], count: int | None) -> Callable[[Any], None]:
    """Count how deep the object an opcode builds or fills is, and refuse past MAX_NESTING *before*
    the opcode runs: a dict key, a set item or a tuple is hashed inside it, and hashing a tuple
    nested 100,000 deep recurses in C until the stack overflows (no RecursionError, a crash)."""

    def op(self: Any) -> None:
        guard = self._guard
        items = self.stack if count is None else self.stack[-count:]
        depths, sizes = guard.depths, guard.sizes
        deepest = expanded = 0
        for item in items:  # one pass, ``_recorded`` inlined: this runs for every container a file builds
            if type(item) in _PLAIN_VALUES:
                continue
            key = id(item)
            depth, size = depths.get(key), sizes.get(key)
            if depth is None or size is None:
                fresh = 1 if isinstance(item, _CONTAINERS) or hasattr(item, "__dict__") else 0
                depth = fresh if depth is None else depth
                size = fresh if size is None else size
            if depth > deepest:
                deepest = depth
            expanded += size
        if deepest >= MAX_NESTING:
            raise _too_deep()
        if expanded > MAX_EXPANDED:  # before the opcode hashes anything
            raise _too_big_graph()
        handler(self)
        if deepest:
            target = self.stack[-1]
            depth = max(_recorded(guard.depths, target), deepest + 1)
            if depth >= 2:
                guard.depths[id(target)] = depth
            size = max(_recorded(guard.sizes, target), 1) + expanded
            if size > MAX_EXPANDED:
                raise _too_big_graph()
            guard.sizes[id(target)] = size

    return op


def _guarded_dispatch(base: dict[int, Callable[[Any], None]], build: Callable[[Any], None]) -> dict:
    table = dict(base)
    table[pickle.REDUCE[0]] = _RestrictedMixin.load_reduce
    table[pickle.NEWOBJ[0]] = _RestrictedMixin.load_newobj
    table[pickle.NEWOBJ_EX[0]] = _RestrictedMixin.load_newobj_ex
    table[pickle.BUILD[0]] = build
    for opcode, count in _NESTING_OPS.items():
        table[opcode[0]] = _nested(table[opcode[0]], count)
    return table


class RestrictedUnpickler(_RestrictedMixin, pickle._Unpickler):
    """pickle's own unpickler with every global, call and state change checked."""

    dispatch = _guarded_dispatch(pickle._Unpickler.dispatch, _RestrictedMixin.load_build)

    def __init__(self, file: Any, guard: _Guard) -> None:
        pickle._Unpickler.__init__(self, file)
        self._guard = guard


def _joblib_unpickler() -> type:
    """joblib's NumpyUnpickler with the same guards, and its array wrapper read within bounds."""

    def load_build(self: Any) -> None:
        self._guard_build()
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]  # typeshed lists no load_* handlers
        _after_build(self.stack[-1])
        if isinstance(self.stack[-1], NumpyArrayWrapper):
            self.stack.append(self._read_wrapped_array(self.stack.pop()))

    class RestrictedNumpyUnpickler(_RestrictedMixin, NumpyUnpickler):
        dispatch = _guarded_dispatch(NumpyUnpickler.dispatch, load_build)

        def find_class(self, module: str, name: str) -> Any:
            # joblib records numpy.memmap as the class of an array saved from a memmap, and reads it
            # as a plain array when not memory-mapping; numpy.memmap itself (it opens files) is not allowed.
            if (module, name) == ("numpy", "memmap"):
                return allowlist.JoblibMemmap
            return super().find_class(module, name)

        def __init__(self, file: io.BytesIO | mmap.mmap, guard: _Guard) -> None:
            NumpyUnpickler.__init__(self, "", file, ensure_native_byte_order=True, mmap_mode=None)
            self._guard = guard
            # The payload's length, found by seeking: BytesIO.getbuffer() would copy a BytesIO that
            # shares the caller's bytes (the whole file, once more, in memory). ``tell``, not what
            # ``seek`` returns: a map's ``seek`` returns None before Python 3.13.
            here = file.tell()
            file.seek(0, io.SEEK_END)
            self._size = file.tell()
            file.seek(here)

        def _read_wrapped_array(self, wrapper: Any) -> np.ndarray:
            state = vars(wrapper)
            shape, dtype, order = state.get("shape"), state.get("dtype"), state.get("order")
            if state.get("subclass") not in (np.ndarray, allowlist.JoblibMemmap) or order not in ("C", "F"):
                raise FormatError("The file is damaged: a joblib array has an invalid type or order")
            wrapper.subclass = np.ndarray  # read as a plain array, whatever joblib recorded
            if not isinstance(dtype, np.dtype) or not isinstance(shape, tuple):
                raise FormatError("The file is damaged: a joblib array has no valid dtype or shape")
            if any(not isinstance(s, int) or s < 0 for s in shape):
                raise FormatError(f"The file is damaged: a joblib array has the shape {shape!r:.60}")
            count = math.prod(shape)
            if dtype.hasobject:
                inner = RestrictedUnpickler(self.file_handle, self._guard)
                array = inner.load()
                if not isinstance(array, np.ndarray) or array.size != count:
                    raise FormatError("The file is damaged: a joblib object array does not match its shape")
                return array
            handle = self.file_handle
            remaining = self._size - handle.tell()
            if count * dtype.itemsize > remaining:
                raise FormatError("The file is damaged or truncated: a joblib array is longer than the file")
            try:
                return wrapper.read(self, self.ensure_native_byte_order)
            except (ValueError, TypeError, EOFError) as exc:
                raise FormatError(f"The file is damaged: a joblib array could not be read ({exc})") from exc

    return RestrictedNumpyUnpickler
