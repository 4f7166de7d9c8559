"""PEP 562 exports for a package whose names live in heavier modules (``core``, ``core.store``).

``import core`` must not cost numpy, pandas or scikit-learn: a command that only reads the index
starts at once. The package names ``name -> module`` and this builds its ``__getattr__`` and
``__dir__``; a name is imported from its module when first asked for, then kept as a plain
attribute of the package.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any


def lazy_exports(
    package: str, namespace: dict[str, Any], exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose globals are ``namespace``."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__


def lazy_module(name: str) -> ModuleType:
    """``name``, imported on first attribute access (the recipe of ``importlib.util.LazyLoader``).

    For a module a few methods need and the rest never touch: ``Store.list`` must not pay for
    pandas and scikit-learn because ``Store.save`` needs them.
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
