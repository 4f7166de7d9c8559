"""Repeated measurements: the median, min and max of a few runs, baseline and subject interleaved.

Interleaving (baseline, subject, baseline, subject, ...) makes both sides see the same machine
load on a shared machine, so their ratio is fairer than two separate batches.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Samples:
    """The values of one measured quantity (seconds or bytes) over repeated runs."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)


def time_once(fn: Callable[[], Any], teardown: Callable[[Any], Any] | None = None, number: int = 1) -> float:
    """Seconds one call of ``fn`` takes; with ``number`` > 1, the mean of that many back-to-back
    calls (for sub-millisecond calls, which a garbage collection just before would slow down
    by cold caches). ``teardown`` gets the last result, outside the timed region."""
    gc.collect()
    started = time.perf_counter()
    for _ in range(number):
        result = fn()
    elapsed = (time.perf_counter() - started) / number
    if teardown is not None:
        teardown(result)
    return elapsed


def time_pair(
    baseline: Callable[[], Any],
    subject: Callable[[], Any],
    repeats: int,
    warmup: int = 1,
    baseline_teardown: Callable[[Any], Any] | None = None,
    subject_teardown: Callable[[Any], Any] | None = None,
    number: int = 1,
) -> tuple[Samples, Samples]:
    """Time ``baseline`` and ``subject`` alternately, ``repeats`` times each after ``warmup`` rounds."""
    base: list[float] = []
    subj: list[float] = []
    for i in range(warmup + repeats):
        b = time_once(baseline, baseline_teardown, number)
        s = time_once(subject, subject_teardown, number)
        if i >= warmup:
            base.append(b)
            subj.append(s)
    return Samples(base), Samples(subj)


def time_many(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> Samples:
    """Time ``fn`` alone, ``repeats`` times after ``warmup`` calls."""
    values = [time_once(fn) for _ in range(warmup + repeats)]
    return Samples(values[warmup:])
