"""Comparing what a worker computed with what this process computed.

The worker runs one BLAS/OpenMP thread; this process runs as many as the machine has. A
least-squares solve or a kernel sum split across threads adds in another order, and on some
CPUs (an AMD EPYC here) the last bit or two of a float differ: the same model, not a different
one. Everything else must be equal.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def same(a: Any, b: Any) -> bool:
    """Equal, floats to 12 significant digits (numbers, lists, dicts and arrays, nested)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple, np.ndarray)) and isinstance(b, (list, tuple, np.ndarray)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    return bool(a == b)
