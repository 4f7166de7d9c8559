"""Save one model in every format ModelShelf writes, and measure what each costs.

The tutorial compares pickle and joblib; this adds joblib's compression levels and skops, and
says which files are safe to accept from a stranger. Figures are measured on the caller's model
and machine each time, never quoted.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from core import formats
from core.errors import InvalidParameterError
from core.safety import WorkerModel

#: (format, compression level) pairs compared by default.
DEFAULT_VARIANTS: tuple[tuple[str, int], ...] = (
    ("pickle", 0),
    ("joblib", 0),
    ("joblib", 3),
    ("joblib", 9),
    ("skops", 0),
)

SAFETY = {
    "skops": "yes: skops lists every type in the file and refuses unknown ones before loading",
    "pickle": "only through ModelShelf's restricted loader: plain unpickling runs the file's code",
    "joblib": "only through ModelShelf's restricted loader: joblib.load unpickles, running the file's code",
}

#: When to use which, in two sentences (the dashboard shows this under the table).
ADVICE = (
    "For your own models, pickle or uncompressed joblib load fastest (joblib can also memory-map large "
    "arrays), and joblib with compression 3 trades some save time for a much smaller file. "
    "For any file that crosses a trust boundary (shared, uploaded, downloaded) use skops: it is checked "
    "before anything in it runs, at the cost in size and time the table shows."
)


@dataclass(frozen=True)
class FormatTiming:
    """One format's figures for one model."""

    format: str
    compress: int
    size_bytes: int
    save_seconds: float
    load_seconds: float
    safe_for_strangers: bool
    safety: str

    @property
    def label(self) -> str:
        return f"joblib (compress {self.compress})" if self.format == "joblib" else self.format


def measure_format(model: Any, fmt: str, compress: int = 0, repeats: int = 1) -> FormatTiming:
    """Serialise and reload ``model`` ``repeats`` times in one format; keep the fastest of each."""
    _check_variant(fmt, compress, repeats)
    save_times: list[float] = []
    load_times: list[float] = []
    data = b""
    for _ in range(repeats):
        started = time.perf_counter()
        data = formats.dumps(model, fmt, compress)
        save_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        formats.load_trusted(data, fmt)  # bytes we just wrote ourselves
        load_times.append(time.perf_counter() - started)
    return _timing(fmt, compress, len(data), min(save_times), min(load_times))


def _check_variant(fmt: str, compress: int, repeats: int) -> None:
    formats.check_format(fmt, compress)
    if repeats < 1:
        raise InvalidParameterError(f"Invalid value {repeats!r} for repeats: expected an integer >= 1")


def _timing(fmt: str, compress: int, size: int, save_s: float, load_s: float) -> FormatTiming:
    return FormatTiming(fmt, compress, size, save_s, load_s, safe_for_strangers=fmt == "skops", safety=SAFETY[fmt])


def compare_formats(
    model: Any, variants: tuple[tuple[str, int], ...] = DEFAULT_VARIANTS, repeats: int = 1
) -> pd.DataFrame:
    """One row per (format, compression): file size, save and load time, and whether it is safe to accept.

    Columns: ``label, format, compress, size_bytes, save_seconds, load_seconds, safe_for_strangers, safety``.
    A model held by a worker (a stranger's, or any in a public demo) is measured over there, under
    its time limit; the figures it sends back are only numbers.
    """
    if isinstance(model, WorkerModel):
        for fmt, compress in variants:
            _check_variant(fmt, compress, repeats)
        figures = model.measure_formats(list(variants), repeats)
        timings = [
            _timing(fmt, compress, int(size), save, load)
            for (fmt, compress), (size, save, load) in zip(variants, figures, strict=True)
        ]
    else:
        timings = [measure_format(model, fmt, compress, repeats) for fmt, compress in variants]
    return pd.DataFrame([{"label": t.label} | dataclasses.asdict(t) for t in timings])
