"""The one door for strangers' bytes: the sandboxed worker, the safe loader and what it checks.

Everything that reads a model file ModelShelf did not save itself goes through here:

- ``worker`` (the pool, the process), ``protocol`` (what crosses the pipe), ``proxy``
  (:class:`WorkerModel`, :func:`load_untrusted`, whether the sandbox is strong enough), ``sandbox``
  (the OS layers);
- inside the worker process only: ``worker_child`` (its request loop) and ``loader`` (the
  in-process loader), which reads with ``unpickler`` (and ``arrays``), ``archives``
  (decompression and zip limits) and ``skops_load``, under ``limits``;
- what a file may name (``allowlist``, ``pure_functions``) and call (``calls``), what a loaded
  model may hold (``policy``, ``policy_rules``, ``policy_code``) and the structures compiled code
  trusts (``checks``, ``checks_structures``, ``checks_trees``, ``checks_neighbors_svm``).

It imports nothing of the store, the CLI or ``core.portable``: what the worker does with a model
besides loading and calling it lives in ``core.worker_ops`` (see ``worker_child``).
"""

from core.safety.archives import check_zip
from core.safety.checks import n_features_of
from core.safety.limits import LoadLimits
from core.safety.proxy import (
    WorkerModel,
    load_in_worker,
    load_untrusted,
    require_strong_sandbox,
    sandbox_is_weak,
    sandbox_layers,
)
from core.safety.worker import ALL_LAYERS, WorkerPool, default_pool

__all__ = [
    "ALL_LAYERS",
    "LoadLimits",
    "WorkerModel",
    "WorkerPool",
    "check_zip",
    "default_pool",
    "load_in_worker",
    "load_untrusted",
    "n_features_of",
    "require_strong_sandbox",
    "sandbox_is_weak",
    "sandbox_layers",
]
