"""Array and dtype states a file sets: each must be one numpy itself would write.

``ndarray.__setstate__``, ``MaskedArray.__setstate__`` and ``dtype.__setstate__`` trust their
input; a damaged or crafted state crashes numpy or reads past a buffer. The restricted unpickler
(``core.safety.unpickler``) runs these checks before each BUILD of an array or a dtype.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np

from core.errors import FormatError, UnsafeModelError


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
        # numpy's stubs take only their private TypedDict for a fields spec; numpy documents a plain dict.
        return np.dtype(spec, align=bool(isinstance(state[7], int) and state[7] & 0x80))  # type: ignore[call-overload]
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
            fields: Mapping[str, Any] = dtype.fields or {}
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
            canonical = np.dtype(spec, align=dtype.isalignedstruct)  # type: ignore[call-overload]  # see _dtype_from_state
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


def _check_array_state(state: Any, budget: int) -> None:
    """ndarray.__setstate__((version, shape, dtype, fortran, data)): data must fit the shape."""
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise FormatError("The file is damaged: an array has a malformed state")
    shape, dtype, data = state[-4], state[-3], state[-1]
    if not isinstance(dtype, np.dtype) or not isinstance(shape, tuple):
        raise FormatError("The file is damaged: an array has no valid dtype or shape")
    if any(not isinstance(s, int) or s < 0 for s in shape):
        raise FormatError(f"The file is damaged: an array has the shape {shape!r:.60}")
    count = math.prod(shape)
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
    count = math.prod(shape)
    if not isinstance(mask, (bytes, bytearray)) or len(mask) != count:
        raise FormatError("The file is damaged: a masked array's mask does not match its shape")
    if fill is not None and not isinstance(fill, (bool, int, float, complex, str, bytes, np.generic)):
        raise UnsafeModelError("The file gives a masked array a fill value that is not a plain value")
    if isinstance(fill, np.generic) and fill.dtype.hasobject:
        raise UnsafeModelError("The file gives a masked array a fill value that is not a plain value")
