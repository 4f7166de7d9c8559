"""Bounds on one load of a stranger's bytes: the configured limits and the guard that enforces them.

:class:`LoadLimits` (file size, decompressed size, seconds) travels from the caller to the worker;
``_Guard`` is made once per load and shared by every stage (unpicklers, decompression, checks),
which call its ``tick`` to stop at the deadline.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidParameterError, UnsafeModelError
from core.settings import load_settings


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
        settings = settings or load_settings()
        return cls(
            max_bytes=settings.max_upload_bytes,
            max_decompressed_bytes=settings.max_decompressed_bytes,
            timeout_s=settings.load_timeout_s,
        )


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
