"""Slots whose allowed values depend on the estimator holding them, not only on their name.

``core.safety.policy_rules`` judges a slot by its name: ``kernel`` and ``metric`` may hold a
name scikit-learn knows or one of its kernel objects, because a Gaussian process keeps its
kernel there. The same object in an SVR or a k-NN model is a *callable* kernel or metric, and
those estimators hand what it returns to compiled code: libsvm indexes a callable kernel's
matrix by the model's ``support_`` without a bound (an SVR holding a Gaussian-process kernel and
``support_`` of 10**7 segfaulted at predict). So, deny by default, per estimator family:

* libsvm models (SVC, SVR, NuSVR, OneClassSVM...): ``kernel`` is one of libsvm's kernel names;
* nearest-neighbour models: ``metric`` and ``effective_metric_`` are metric names;
* any other estimator: a Gaussian-process kernel object only in a Gaussian process.
"""

from __future__ import annotations

from typing import Any

from sklearn.gaussian_process.kernels import Kernel
from sklearn.neighbors._base import NeighborsBase
from sklearn.svm._base import BaseLibSVM

from core.safety.policy_code import Rule, _describe, _refuse
from core.safety.policy_rules import rule_metric

#: libsvm's own kernels (``precomputed``: the caller gives the kernel matrix, checked by shape).
LIBSVM_KERNELS = frozenset({"linear", "poly", "rbf", "sigmoid", "precomputed"})


def rule_libsvm_kernel(value: Any, where: str) -> None:
    """A libsvm model's ``kernel``: one of libsvm's names, never a callable (its matrix is
    indexed by ``support_`` in C, unchecked)."""
    if isinstance(value, str) and value in LIBSVM_KERNELS:
        return
    raise _refuse(where, _describe(value) + f" (allowed: {', '.join(sorted(LIBSVM_KERNELS))}; never a callable kernel)")


def rule_metric_name(value: Any, where: str) -> None:
    """A neighbours model's metric: a name scikit-learn knows, never a callable or an object."""
    if isinstance(value, str):
        rule_metric(value, where)
        return
    raise _refuse(where, _describe(value) + " (allowed: a metric name; never a callable metric)")


def rule_no_kernel_object(value: Any, where: str) -> None:
    """Outside a Gaussian process, a kernel or metric slot holds no Gaussian-process kernel."""
    if isinstance(value, Kernel):
        raise _refuse(where, _describe(value) + " (kernel objects belong to Gaussian processes only)")
    rule_metric(value, where)


def refine(owner: Any, slot: str, rule: Rule | None) -> Rule | None:
    """The rule for ``owner.slot``: a metric slot's rule narrowed by the estimator's family."""
    if rule is not rule_metric:
        return rule
    if isinstance(owner, BaseLibSVM) and slot == "kernel":
        return rule_libsvm_kernel
    if isinstance(owner, NeighborsBase) and slot in ("metric", "effective_metric_"):
        return rule_metric_name
    if type(owner).__module__.startswith("sklearn.gaussian_process"):
        return rule
    return rule_no_kernel_object
