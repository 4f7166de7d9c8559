"""The one way to load model bytes that did not come from this store's own save.

Uploads in the dashboard, ``python -m core import`` and bundle import all call
:func:`load_untrusted`. Nothing else in ModelShelf calls ``pickle.load``, ``joblib.load`` or
``skops.io.load`` on bytes from outside (``core.formats.load_trusted`` is for the store's own,
sha256-checked files).

How a stranger's file is kept from running code:

* pickle and joblib files are read by a restricted unpickler (pickle's pure-Python one, so each
  opcode can be guarded): globals resolve only through ``core.allowlist``; only a short list of
  them may be *called*, each with its arguments checked; instances of allowlisted classes are
  made with ``cls.__new__(cls)`` and no arguments; a file may not set attributes on a class or
  function; array states must match their shapes. joblib's compressed files are decompressed
  here with a bound on the output, and its array wrapper goes through the same guards.
* skops files: ``skops.io.get_untrusted_types`` lists what the file needs beyond skops' own
  defaults; every entry must be in ModelShelf's allowlist (never a list from the file), and the
  load is told to trust exactly those.
* afterwards: a fitted scikit-learn estimator with ``predict``; what it holds checked against
  ``core.model_policy`` (no code outside reviewed slots, dispatch names from scikit-learn); every tree, boosted tree,
  neighbours index, support-vector set and sparse matrix in it checked (``core.model_checks``)
  before anything calls ``predict``.

Limits (:class:`LoadLimits`): file size, decompressed size, and a time limit. The time limit is
checked between pickle opcodes (so a file cannot keep the unpickler busy), and the whole load
runs in a worker thread that the caller stops waiting for at the deadline. Python cannot kill a
thread: a single C call that runs long (a huge allocation, skops' own loader) finishes in the
background and its result is thrown away; the caller gets its error on time.
"""

from __future__ import annotations

import bz2
import functools
import io
import json
import lzma
import pickle
import re
import threading
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core import allowlist, model_checks, model_policy
from core.describe import class_path
from core.environment import fold_version_warnings
from core.errors import FormatError, InvalidParameterError, ModelShelfError, UnsafeModelError
from core.formats import Detected, detect_format

_CHUNK = 1 << 20
#: What a scikit-learn version read from a stranger's file may look like before it is shown anywhere.
_VERSION = re.compile(r"[0-9]+(\.[0-9]+){0,3}([.+-]?[A-Za-z0-9]+){0,3}")
_TICK_EVERY = 256
#: Deepest nesting of containers and objects a file may build (real models stay far below).
MAX_NESTING = 200


@dataclass(frozen=True)
class LoadLimits:
    """Bounds on one load: bytes in, bytes after decompression, seconds."""

    max_bytes: int
    max_decompressed_bytes: int
    timeout_s: float

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_decompressed_bytes", "timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise InvalidParameterError(f"Invalid value {value!r} for {name}: expected a positive number")

    @classmethod
    def from_settings(cls, settings: Any = None) -> LoadLimits:
        """The limits configured for this deployment (``core.settings``)."""
        from core.settings import load_settings

        settings = settings or load_settings()
        return cls(
            max_bytes=settings.max_upload_bytes,
            max_decompressed_bytes=settings.max_decompressed_bytes,
            timeout_s=settings.load_timeout_s,
        )


@dataclass
class UntrustedModel:
    """A model from an outside file that passed every check, with what was learnt about it."""

    model: Any
    detected: Detected
    sklearn_version: str | None
    warnings: list[str] = field(default_factory=list)
    estimator: str = ""
    load_seconds: float = 0.0


class _Guard:
    """Shared by every unpickler of one load: the deadline, the byte budget, what was seen."""

    def __init__(self, limits: LoadLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.timeout_s
        self.cancelled = threading.Event()
        self.ops = 0
        self.sklearn_versions: list[str] = []
        #: ``id(object) -> nesting depth`` of what the unpicklers built, recorded from depth 2 up.
        self.depths: dict[int, int] = {}
        #: ``id(object) -> objects reached following every path`` (shared parts counted each time).
        self.sizes: dict[int, int] = {}

    def tick(self) -> None:
        if self.cancelled.is_set() or time.monotonic() > self.deadline:
            raise UnsafeModelError(
                f"Loading the file took longer than the {self.limits.timeout_s:g} s limit, so it was stopped"
            )


def _timed(handler: Callable[[Any], None]) -> Callable[[Any], None]:
    def op(self: Any) -> None:
        self._guard.ops += 1
        if self._guard.ops % _TICK_EVERY == 0:
            self._guard.tick()
        handler(self)

    return op


class _RestrictedMixin:
    """The guards, shared by the plain and the joblib unpickler (both pickle's pure-Python one)."""

    _guard: _Guard
    stack: list[Any]
    append: Callable[[Any], None]

    def find_class(self, module: str, name: str) -> Any:
        self._guard.tick()
        if getattr(self, "proto", 5) < 3:
            module, name = _python2_names(module, name)
        return allowlist.resolve(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeModelError("The file refers to external objects (pickle persistent ids), which is not allowed")

    def _call(self, func: Any, args: Any) -> Any:
        entry = allowlist.call_checks().get(id(func))
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
        return cls.__new__(cls)

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
            allowlist.check_partial_state(state)
        if isinstance(inst, np.dtype):
            _check_dtype_state(inst, state)
        if isinstance(inst, np.random.SeedSequence):
            allowlist.check_seed_sequence_state(state)
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
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]
        _after_build(self.stack[-1])


def _dtype_from_state(base: np.dtype, state: tuple) -> np.dtype:
    """The dtype numpy's public constructor makes from a pickled dtype state's public parts."""
    endian, subdtype, names, fields, elsize = state[1], state[2], state[3], state[4], state[5]
    if names is not None:
        if not isinstance(names, tuple) or not isinstance(fields, dict) or not isinstance(elsize, int):
            raise ValueError("malformed fields")
        entries = [fields[name] for name in names]
        if any(not isinstance(e, tuple) or len(e) not in (2, 3) for e in entries):
            raise ValueError("malformed field")
        spec: dict[str, Any] = {
            "names": list(names),
            "formats": [e[0] for e in entries],
            "offsets": [e[1] for e in entries],
            "itemsize": elsize,
        }
        if any(len(e) == 3 for e in entries):
            spec["titles"] = [e[2] if len(e) == 3 else None for e in entries]
        return np.dtype(spec, align=bool(isinstance(state[7], int) and state[7] & 0x80))
    if subdtype is not None:
        return np.dtype(subdtype)
    return base.newbyteorder(endian) if endian in ("<", ">") else base


def _check_dtype_state(inst: np.dtype, state: Any) -> None:
    """``dtype.__setstate__`` trusts its input and can crash on a damaged one: accept only the
    exact state numpy itself writes for the dtype that the state's public parts describe."""
    if inst.kind in "mM":
        raise FormatError("The file holds a datetime dtype; model files here may not")
    ok = False
    if isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4):
        try:
            candidate = _dtype_from_state(inst, state)
            expected = candidate.__reduce__()
            ok = expected[1][0] == inst.__reduce__()[1][0] and _same_state(expected[2], state)
        except (KeyError, TypeError, ValueError, IndexError, OverflowError):
            ok = False
    if not ok:
        raise FormatError("The file is damaged or crafted: a numpy dtype in it is inconsistent")


def _same_state(a: Any, b: Any) -> bool:
    """Exact structural equality (types too), so ``True == 1`` tricks do not pass."""
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same_state(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, np.dtype):
        return a == b and a.__reduce__()[2] == b.__reduce__()[2]
    return bool(a == b)


def _after_build(obj: Any) -> None:
    if isinstance(obj, np.dtype):
        check_dtype(obj)


def check_dtype(dtype: np.dtype) -> None:
    """A dtype set from a file's state must equal the one numpy's own constructor makes of it.

    ``dtype.__setstate__`` trusts its flags, sizes and field table; a damaged or crafted one
    (say, fields that claim no Python objects where there are some) crashes numpy on first
    use. So it is rebuilt through the public constructor and every property compared.
    """
    try:
        if dtype.names is not None:
            fields = dtype.fields or {}
            entries = [fields[name] for name in dtype.names]
            if any(not isinstance(e[0], np.dtype) or not isinstance(e[1], int) for e in entries):
                raise ValueError("malformed field")
            spec: dict[str, Any] = {
                "names": list(dtype.names),
                "formats": [e[0] for e in entries],
                "offsets": [e[1] for e in entries],
                "itemsize": dtype.itemsize,
            }
            if any(len(e) > 2 for e in entries):
                spec["titles"] = [e[2] if len(e) > 2 else None for e in entries]
            canonical = np.dtype(spec, align=dtype.isalignedstruct)
        elif dtype.subdtype is not None:
            canonical = np.dtype(dtype.subdtype)
        else:
            canonical = np.dtype(dtype.str)
        same = (
            canonical == dtype
            and canonical.flags == dtype.flags
            and canonical.itemsize == dtype.itemsize
            and canonical.alignment == dtype.alignment
            and canonical.fields == dtype.fields
        )
    except (KeyError, TypeError, ValueError, IndexError, OverflowError):
        same = False
    if not same:
        raise FormatError("The file is damaged or crafted: a numpy dtype in it is inconsistent")


def _python2_names(module: str, name: str) -> tuple[str, str]:
    import _compat_pickle

    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _check_array_state(state: Any, budget: int) -> None:
    """ndarray.__setstate__((version, shape, dtype, fortran, data)): data must fit the shape."""
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise FormatError("The file is damaged: an array has a malformed state")
    shape, dtype, data = state[-4], state[-3], state[-1]
    if not isinstance(dtype, np.dtype) or not isinstance(shape, tuple):
        raise FormatError("The file is damaged: an array has no valid dtype or shape")
    if any(not isinstance(s, int) or s < 0 for s in shape):
        raise FormatError(f"The file is damaged: an array has the shape {shape!r:.60}")
    count = int(np.prod(shape, dtype=object)) if shape else 1
    if count * max(dtype.itemsize, 1) > budget:
        raise UnsafeModelError(f"An array in the file would need more than the {budget:,}-byte limit")
    if dtype.hasobject:
        ok = isinstance(data, list) and len(data) == count
    else:
        buffer = isinstance(data, (bytes, bytearray, pickle.PickleBuffer))
        ok = buffer and memoryview(data).nbytes == count * dtype.itemsize
    if not ok:
        raise FormatError("The file is damaged: an array's data does not match its shape")


def _check_masked_array_state(state: Any, budget: int) -> None:
    """MaskedArray.__setstate__((version, shape, dtype, fortran, data, mask, fill_value)).

    The data as for any array; the mask one byte per element (plain dtypes only); the fill value
    a plain scalar.
    """
    if not isinstance(state, tuple) or len(state) != 7:
        raise FormatError("The file is damaged: a masked array has a malformed state")
    _check_array_state(state[:5], budget)
    shape, dtype, mask, fill = state[1], state[2], state[5], state[6]
    if dtype.names is not None or dtype.subdtype is not None:
        raise UnsafeModelError("The file holds a masked array of a structured dtype; model files here may not")
    count = int(np.prod(shape, dtype=object)) if shape else 1
    if not isinstance(mask, (bytes, bytearray)) or len(mask) != count:
        raise FormatError("The file is damaged: a masked array's mask does not match its shape")
    if fill is not None and not isinstance(fill, (bool, int, float, complex, str, bytes, np.generic)):
        raise UnsafeModelError("The file gives a masked array a fill value that is not a plain value")
    if isinstance(fill, np.generic) and fill.dtype.hasobject:
        raise UnsafeModelError("The file gives a masked array a fill value that is not a plain value")


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


def _recorded(table: dict[int, int], obj: Any) -> int:
    """A depth or size recorded for ``obj``, else 1 for a container or an object with attributes,
    0 for a plain value (``_Guard.depths`` and ``_Guard.sizes`` share the rule)."""
    if type(obj) in _PLAIN_VALUES:  # most stack items: numbers, text, arrays (no recursion through them)
        return 0
    known = table.get(id(obj))
    if known is not None:
        return known
    return 1 if isinstance(obj, (tuple, list, dict, set, frozenset)) or hasattr(obj, "__dict__") else 0


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
        for item in items:  # one pass (this runs for every container a file builds)
            if type(item) in _PLAIN_VALUES:
                continue
            deepest = max(deepest, _recorded(depths, item))
            expanded += _recorded(sizes, item)
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
    return {key: _timed(handler) for key, handler in table.items()}


class RestrictedUnpickler(_RestrictedMixin, pickle._Unpickler):  # type: ignore[name-defined,misc]
    """pickle's own unpickler with every global, call and state change checked."""

    dispatch = _guarded_dispatch(pickle._Unpickler.dispatch, _RestrictedMixin.load_build)  # type: ignore[attr-defined]

    def __init__(self, file: Any, guard: _Guard) -> None:
        pickle._Unpickler.__init__(self, file)  # type: ignore[attr-defined]
        self._guard = guard


def _joblib_unpickler() -> type:
    """joblib's NumpyUnpickler with the same guards, and its array wrapper read within bounds."""
    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    def load_build(self: Any) -> None:
        self._guard_build()
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]
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

        def __init__(self, file: io.BytesIO, guard: _Guard) -> None:
            NumpyUnpickler.__init__(self, "", file, ensure_native_byte_order=True, mmap_mode=None)
            self._guard = guard
            # The payload's length, found by seeking: BytesIO.getbuffer() would copy a BytesIO that
            # shares the caller's bytes (the whole file, once more, in memory).
            here = file.tell()
            self._size = file.seek(0, io.SEEK_END)
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
            count = int(np.prod(shape, dtype=object)) if shape else 1
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
                raise FormatError(f"The file is damaged: a joblib array could not be read ({exc})") from None

    return RestrictedNumpyUnpickler


# -- decompression -------------------------------------------------------------------------------


def _too_big(limit: int) -> UnsafeModelError:
    return UnsafeModelError(
        f"The file expands to more than {limit:,} bytes when decompressed (the limit), so it was refused"
    )


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """One xz variable-length integer (7 bits a byte, at most 9 bytes) and the position after it."""
    value = 0
    for shift in range(0, 63, 7):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise ValueError("varint too long")


def _declared_size(data: bytes, method: str) -> int | None:
    """The uncompressed size a compressed stream declares, where the format records one.

    Only a hint, for refusing early: a crafted file can lie, so the output is counted anyway.
    gzip's trailer holds the size modulo 2**32, lzma's header the size (or "unknown"), and an
    xz file's index the size of each block; zlib and bz2 record none.
    """
    try:
        if method == "gzip" and len(data) >= 18:
            return int.from_bytes(data[-4:], "little")
        if method == "lzma" and len(data) >= 13:
            size = int.from_bytes(data[5:13], "little")
            return None if size == 2**64 - 1 else size
        if method == "xz" and len(data) >= 24 and data[-2:] == b"YZ":
            index_size = (int.from_bytes(data[-8:-4], "little") + 1) * 4
            index = data[-12 - index_size : -12]
            if index[:1] != b"\x00":
                return None
            records, pos = _read_varint(index, 1)
            total = 0
            for _ in range(min(records, 100_000)):
                _unpadded, pos = _read_varint(index, pos)
                size, pos = _read_varint(index, pos)
                total += size
            return total
    except (ValueError, IndexError):
        return None
    return None


def _inflate(data: bytes, method: str, guard: _Guard) -> io.BytesIO:
    """Decompress joblib's stream into one buffer, counting output and stopping at the limit.

    The output is written into a BytesIO that the unpickler then reads in place: one copy of
    the decompressed bytes, never two (``bytes(bytearray)`` would copy it all once more). A
    stream that declares a size over the limit is refused before anything is decompressed.
    """
    limit = guard.limits.max_decompressed_bytes
    declared = _declared_size(data, method)
    if declared is not None and declared > limit:
        raise _too_big(limit)
    out = io.BytesIO()
    if method in ("zlib", "gzip"):
        decompressor: Any = zlib.decompressobj(zlib.MAX_WBITS | (16 if method == "gzip" else 0))
        errors: tuple[type[Exception], ...] = (zlib.error,)
    elif method in ("bz2", "xz", "lzma"):
        if method == "bz2":
            decompressor = bz2.BZ2Decompressor()
        else:
            decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ if method == "xz" else lzma.FORMAT_ALONE)
        errors = (OSError, EOFError, lzma.LZMAError)
    else:
        raise FormatError(f"joblib files compressed with {method} are not supported; use zlib, gzip, bz2, xz or lzma")
    pending = data
    try:
        while not decompressor.eof:
            # Never more than one byte past the limit: enough to know it was crossed.
            room = min(_CHUNK, limit - out.tell() + 1)
            if method in ("zlib", "gzip"):
                chunk = decompressor.decompress(pending, room)
                pending = decompressor.unconsumed_tail
            else:
                chunk = decompressor.decompress(pending, max_length=room)
                pending = b""
            out.write(chunk)
            if out.tell() > limit:
                raise _too_big(limit)
            if not chunk and (not pending if method in ("zlib", "gzip") else decompressor.needs_input):
                raise FormatError(f"The {method}-compressed file is truncated")
            guard.tick()
    except errors as exc:
        raise FormatError(f"The file is not a valid {method}-compressed joblib file ({exc})") from exc
    out.seek(0)
    return out


# -- the three formats ---------------------------------------------------------------------------


def _unpickle(data: bytes, detected: Detected, guard: _Guard) -> Any:
    if detected.format == "joblib" and detected.compression:
        handle = _inflate(data, detected.compression, guard)
        if handle.read(1) != b"\x80":
            raise FormatError("The decompressed file is not a joblib pickle")
        handle.seek(0)
    else:
        handle = io.BytesIO(data)
    cls = RestrictedUnpickler if detected.format == "pickle" else _joblib_unpickler()
    try:
        return cls(handle, guard).load()
    except (ModelShelfError, MemoryError):
        raise
    except RecursionError as exc:
        raise _too_deep() from exc
    except Exception as exc:  # a malformed stream fails in many ways: one message
        raise FormatError(
            f"The file is damaged or cut short: its pickle data is malformed near byte {handle.tell():,}"
        ) from exc


def _skops_version(data: bytes) -> str | None:
    """The scikit-learn version skops recorded for the top-level object (in schema.json)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
        raw = schema["content"]["content"]["_sklearn_version"]["content"]
        return str(json.loads(raw))
    except Exception:  # noqa: BLE001 - only a label: any damage means "unknown"
        return None


def check_zip(data: bytes, limits: LoadLimits, max_entries: int = 100_000) -> None:
    """A zip's entries are read up to their declared sizes: bound their count and sum before reading any.

    For skops files here and for bundles (``core.portable.bundle``), under the same configured limit.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise FormatError(f"The file looks like a zip archive but is damaged ({exc})") from None
    if len(infos) > max_entries:
        raise UnsafeModelError(f"The archive holds {len(infos):,} files (at most {max_entries:,}); refused")
    total = sum(info.file_size for info in infos)
    if total > limits.max_decompressed_bytes:
        raise _too_big(limits.max_decompressed_bytes)


def _load_skops(data: bytes, guard: _Guard) -> Any:
    import skops.io

    check_zip(data, guard.limits)
    try:
        needed = skops.io.get_untrusted_types(data=data)
    except Exception as exc:  # skops raises many kinds on a malformed schema
        detail = " ".join(str(exc).split())[:200]
        raise FormatError(f"The skops file is damaged ({detail or 'its schema is malformed'})") from exc
    allowed = allowlist.skops_type_names()
    refused = [name for name in needed if name not in allowed]
    for name in refused:
        if missing := allowlist.missing_message(*name.rsplit(".", 1)):
            raise FormatError(missing)
    if refused:
        shown = ", ".join(refused[:5]) + (" ..." if len(refused) > 5 else "")
        verb = "is" if len(refused) == 1 else "are"
        raise UnsafeModelError(f"{shown} {verb} not allowed: the skops file was not loaded")
    guard.tick()
    try:
        return skops.io.loads(data, trusted=[name for name in needed if name in allowed])
    except (ModelShelfError, MemoryError, ImportError):
        raise  # ImportError: a module this release lacks, which _as_error names for the user
    except RecursionError as exc:
        raise _too_deep() from exc
    except Exception as exc:  # skops and zipfile raise many kinds on a damaged file
        raise FormatError("The skops file is damaged: its contents could not be read as a model") from exc


# -- the entry point -----------------------------------------------------------------------------


def _load(data: bytes, detected: Detected, guard: _Guard) -> tuple[Any, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = _load_skops(data, guard) if detected.format == "skops" else _unpickle(data, detected, guard)
        model_checks.check_nesting(model, MAX_NESTING, guard.tick)
        model_policy.check_model_policy(model, guard.tick)
        model_checks.validate_model(model, guard.tick)
        model_checks.check_fitted_estimator(model)
    return model, list(caught)


def _run_with_deadline(guard: _Guard, work: Callable[[], Any]) -> Any:
    """Run ``work`` in a worker thread; stop waiting at the deadline (see the module docstring)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="modelshelf-safe-load", daemon=True)
    worker.start()
    worker.join(max(guard.deadline - time.monotonic(), 0.0) + 0.5)
    if worker.is_alive():
        guard.cancelled.set()  # the unpickler stops at its next opcode; a C call runs to its end
        raise UnsafeModelError(
            f"Loading the file took longer than the {guard.limits.timeout_s:g} s limit, so it was stopped"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _as_error(exc: BaseException) -> ModelShelfError:
    """Whatever a damaged file makes the loader raise, as one message for the user."""
    if isinstance(exc, ModelShelfError):
        return exc
    if isinstance(exc, RecursionError):
        return UnsafeModelError("The file nests objects too deeply to be a model")
    if isinstance(exc, MemoryError):
        return UnsafeModelError("The file asks for more memory than a model should")
    if isinstance(exc, ImportError):
        return FormatError(f"The file needs a module that is not available here ({exc})")
    text = " ".join(str(exc).split())[:200]
    return FormatError(f"The file is damaged or not a model file ({type(exc).__name__}: {text})")


def load_untrusted(data: bytes, *, limits: LoadLimits | None = None) -> UntrustedModel:
    """Load model bytes from outside the store without running any of the file's code.

    Raises FormatError (not a model, damaged, unsupported), UnsafeModelError (asks for something
    outside the allowlist, a crafted structure, over a limit) or another ModelShelfError, always
    with one message fit to show a user; never any other exception.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidParameterError(f"load_untrusted takes the file's bytes, not a {type(data).__name__}")
    data = bytes(data)
    limits = limits or LoadLimits.from_settings()
    if len(data) > limits.max_bytes:
        raise UnsafeModelError(
            f"The file is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes, so it was refused"
        )
    try:
        detected = detect_format(data)
    except ModelShelfError:
        raise
    except Exception as exc:  # zipfile raises more than BadZipFile on a crafted header
        raise FormatError("The file looks like a zip archive but is damaged or of an unsupported kind") from exc
    allowlist.allowed_globals()  # built once per process, before the file's clock starts
    guard = _Guard(limits)
    started = time.perf_counter()
    try:
        model, caught = _run_with_deadline(guard, lambda: _load(data, detected, guard))
    except Exception as exc:  # noqa: BLE001 - turned into one ModelShelfError
        raise _as_error(exc) from None
    version = _skops_version(data) if detected.format == "skops" else None
    if version is None and guard.sklearn_versions:
        version = guard.sklearn_versions[-1]  # the outermost object's state is set last
    return UntrustedModel(
        model=model,
        detected=detected,
        sklearn_version=version if version is not None and _VERSION.fullmatch(version) else None,
        warnings=fold_version_warnings(caught),
        estimator=class_path(model),
        load_seconds=time.perf_counter() - started,
    )
