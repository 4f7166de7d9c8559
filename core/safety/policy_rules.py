"""One rule per dangerous slot of a loaded model: what each parameter or fitted attribute may hold.

:data:`PARAM_RULES` (by ``get_params`` name) and :data:`FITTED_RULES` (fitted attributes and
helper-object fields): code from a reviewed list or never, dispatch strings from scikit-learn's
own names, bounded regular expressions and loop counts. ``core.safety.policy`` applies them while
it walks the model.
"""

from __future__ import annotations

import codecs
import functools
import re
import string
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.interpolate import BSpline
from sklearn import decomposition, feature_selection
from sklearn.cluster import _kmeans
from sklearn.gaussian_process.kernels import Kernel
from sklearn.metrics import DistanceMetric, get_scorer, get_scorer_names, pairwise
from sklearn.neighbors import VALID_METRICS, VALID_METRICS_SPARSE
from sklearn.neural_network._base import ACTIVATIONS
from sklearn.svm._base import LIBSVM_IMPL

from core.safety.policy_code import (
    Rule,
    _check_array_partial,
    _check_dtype_value,
    _describe,
    _pure_functions,
    _reductions,
    _refuse,
    is_code,
)
from core.safety.pure_functions import PURE_REDUCTIONS, PURE_UFUNCS

_MAX_PATTERN = 1_000  # characters in a regular expression a model may hold


def rule_pure_function(value: Any, where: str) -> None:
    """``func``/``inverse_func``: None, a reviewed ufunc, or scikit-learn's ``check_array`` partial."""
    if value is None or (isinstance(value, np.ufunc) and id(value) in _pure_functions()):
        return
    if isinstance(value, functools.partial):
        _check_array_partial(value, where)
        return
    raise _refuse(where, _describe(value) + f" (allowed: None or numpy.{', numpy.'.join(PURE_UFUNCS)})")


def rule_no_arguments(value: Any, where: str) -> None:
    """``kw_args``: a held function gets the data alone (``out=`` would write into the model's arrays)."""
    if value is None or (type(value) is dict and not value):
        return
    raise _refuse(where, "keyword arguments for its function (a model from elsewhere may pass none)")


def rule_reduction(value: Any, where: str) -> None:
    if value is None or id(value) in _reductions():
        return
    raise _refuse(where, _describe(value) + f" (allowed: numpy.{', numpy.'.join(PURE_REDUCTIONS)})")


def rule_dtype(value: Any, where: str) -> None:
    _check_dtype_value(value, where)


def rule_none(value: Any, where: str) -> None:
    """Slots that name code or a place on disk (tokenizers, caches): only None from a stranger."""
    if value is not None:
        raise _refuse(where, _describe(value) + " (only None is allowed here)")


def rule_content(value: Any, where: str) -> None:
    """Text vectorizers read files when ``input`` is "filename" or "file": only "content"."""
    if value != "content":
        raise _refuse(where, _describe(value) + ' (only "content" is allowed: documents are text, never file names)')


def rule_data(value: Any, where: str) -> None:
    """Plain values (numbers, text, arrays, containers of them): never code, at any depth.

    A rule replaces the generic check for its slot (and a container's items keep the slot), so
    this rule must refuse code itself: ``DummyClassifier(constant=numpy.memmap)`` loaded before.
    """
    rule_no_code(value, where)


def rule_no_code(value: Any, where: str) -> None:
    if is_code(value):
        raise _refuse(where, _describe(value))


def rule_codec(value: Any, where: str) -> None:
    try:
        ok = isinstance(value, str) and codecs.lookup(value)._is_text_encoding
    except LookupError:
        ok = False
    if not ok:
        raise _refuse(where, _describe(value) + " (not a text encoding)")


#: Word patterns a text vectorizer may hold: scikit-learn's default and a few reviewed ones,
#: each linear in the text. Python's ``re`` backtracks in C holding the GIL, so a pattern such as
#: ``(a+)+$`` froze the whole server on 40 characters of crafted text (22 take 0.3 s, x2 per char).
TOKEN_PATTERNS = frozenset(
    {
        r"(?u)\b\w\w+\b",
        r"(?u)\b\w+\b",
        r"\b\w\w+\b",
        r"\b\w+\b",
        r"\w+",
        r"\w\w+",
        r"\S+",
        r"(?u)\b\w+\b|[^\w\s]",
        r"[a-zA-Z]+",
        r"\b[a-zA-Z]+\b",
        r"\b[a-zA-Z][a-zA-Z]+\b",
        r"(?u)\b[a-zA-Z][a-zA-Z]+\b",
    }
)


def rule_token_pattern(value: Any, where: str) -> None:
    """``token_pattern``: None or one of the reviewed word patterns (no backtracking blow-up)."""
    if value is None or (isinstance(value, str) and value in TOKEN_PATTERNS):
        return
    raise _refuse(
        where,
        _describe(value) + " (allowed: scikit-learn's default word pattern or another reviewed one: "
        "core.safety.policy_rules.TOKEN_PATTERNS; any other expression can backtrack for ever on crafted text)",
    )


#: A column selector's ``pattern`` is matched against column names (which the scoring data
#: names): literal names, ``^``/``$`` anchors, ``.`` and ``|`` only: no repetition, no groups.
_COLUMN_PATTERN = re.compile(r"\^?[A-Za-z0-9_ .:/-]*\$?(\|\^?[A-Za-z0-9_ .:/-]*\$?)*")


def rule_column_pattern(value: Any, where: str) -> None:
    """``make_column_selector(pattern=...)``: None or literal names with anchors and ``|``."""
    if value is None or (isinstance(value, str) and len(value) <= _MAX_PATTERN and _COLUMN_PATTERN.fullmatch(value)):
        return
    raise _refuse(where, _describe(value) + ' (allowed: column names with "^", "$", "." and "|", no repetition)')


_ATTRIBUTE_PATH = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*")


def rule_attribute_path(value: Any, where: str) -> None:
    """``importance_getter``: "auto" or a dotted path of public attribute names, never code."""
    if isinstance(value, str) and (value == "auto" or _ATTRIBUTE_PATH.fullmatch(value)):
        return
    raise _refuse(where, _describe(value) + ' (allowed: "auto" or a dotted name like "coef_")')


_PRE_DISPATCH = re.compile(r"\s*([0-9]{1,3}\s*\*\s*)?n_jobs\s*|\s*[0-9]{1,6}\s*")


def rule_pre_dispatch(value: Any, where: str) -> None:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return
    if value is None or (isinstance(value, str) and _PRE_DISPATCH.fullmatch(value)):
        return
    raise _refuse(where, _describe(value) + ' (allowed: a count or "K*n_jobs")')


@lru_cache(maxsize=1)
def _metric_names() -> frozenset[str]:
    """Every distance or kernel name scikit-learn accepts anywhere (and scipy's, which it forwards)."""
    names: set[str] = set(pairwise.PAIRWISE_DISTANCE_FUNCTIONS) | set(pairwise.PAIRWISE_KERNEL_FUNCTIONS)
    names |= set(getattr(pairwise, "_VALID_METRICS", ()))
    for table in (VALID_METRICS, VALID_METRICS_SPARSE):
        for values in table.values():
            names |= set(values)
    names |= {"precomputed", "nan_euclidean"}
    return frozenset(n for n in names if isinstance(n, str))


def rule_metric(value: Any, where: str) -> None:
    """Metrics and kernels: a name scikit-learn knows, or its own DistanceMetric/kernel objects."""
    if value is None or isinstance(value, (DistanceMetric, Kernel)):
        return
    if isinstance(value, str) and value in _metric_names():
        return
    raise _refuse(where, _describe(value) + " (a metric or kernel must be one of scikit-learn's names)")


@lru_cache(maxsize=1)
def _scorer_names() -> frozenset[str]:
    return frozenset(get_scorer_names())


def rule_scoring(value: Any, where: str) -> None:
    """``scoring``: None or scikit-learn's scorer names (one, a list, or a dict of them)."""
    if value is None or value == "loss":  # "loss": HistGradientBoosting's early-stopping default
        return
    names = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple, set)) else [value]
    for name in names:
        if not (isinstance(name, str) and name in _scorer_names()):
            raise _refuse(where, _describe(name) + " (allowed: scikit-learn's scorer names)")


@lru_cache(maxsize=1)
def _score_functions() -> frozenset[int]:
    names = ("chi2", "f_classif", "f_oneway", "f_regression", "mutual_info_classif", "mutual_info_regression")
    return frozenset(
        id(getattr(feature_selection, n)) for n in (*names, "r_regression") if hasattr(feature_selection, n)
    )


def rule_score_function(value: Any, where: str) -> None:
    if value is None or id(value) in _score_functions():
        return
    raise _refuse(where, _describe(value) + " (allowed: scikit-learn's own univariate score functions)")


@lru_cache(maxsize=1)
def _metric_functions() -> frozenset[int]:
    """The metric functions behind scikit-learn's named scorers (what a fitted search may hold)."""
    found = set()
    for name in _scorer_names():
        scorer = get_scorer(name)
        func = getattr(scorer, "_score_func", None)
        if func is not None:
            found.add(id(func))
    return frozenset(found)


def rule_metric_function(value: Any, where: str) -> None:
    if id(value) in _metric_functions():
        return
    raise _refuse(where, _describe(value) + " (allowed: the metric functions of scikit-learn's named scorers)")


def rule_cv(value: Any, where: str) -> None:
    """``cv``: a fold count, None, or one of scikit-learn's splitters (no custom iterables of code)."""
    if value is None or isinstance(value, (int, np.integer, str, np.ndarray)):
        return
    module = type(value).__module__
    if module.startswith("sklearn.model_selection") or module.startswith("sklearn.calibration"):
        return
    if isinstance(value, (list, tuple)):
        return  # explicit (train, test) index pairs: data
    raise _refuse(where, _describe(value) + " (allowed: an int, None or a scikit-learn splitter)")


def rule_names(*allowed: str) -> Rule:
    """A fitted attribute that selects a code path: one of a fixed set of names."""
    names = frozenset(allowed)

    def check(value: Any, where: str) -> None:
        if value is None or isinstance(value, (list, tuple)) or (isinstance(value, str) and value in names):
            return  # a list or tuple's items are checked one by one
        raise _refuse(where, _describe(value) + f" (allowed: {', '.join(sorted(names))})")

    return check


def rule_kmeans_single(value: Any, where: str) -> None:
    """BisectingKMeans keeps the k-means routine it fitted with (never called by predict)."""
    if value in (getattr(_kmeans, "_kmeans_single_lloyd", None), getattr(_kmeans, "_kmeans_single_elkan", None)):
        return
    raise _refuse(where, _describe(value) + " (allowed: scikit-learn's own k-means routines)")


def rule_bspline_asarray(value: Any, where: str) -> None:
    """scipy's BSpline (SplineTransformer) keeps the array constructor it was made with."""
    reference = BSpline(np.arange(8.0), np.ones(4), 3)._asarray
    if value is not reference:
        raise _refuse(where, _describe(value) + " (allowed: scipy's own array constructor)")


def rule_activation(value: Any, where: str) -> None:
    rule_names(*ACTIVATIONS)(value, where)


def rule_libsvm_impl(value: Any, where: str) -> None:
    rule_names(*LIBSVM_IMPL)(value, where)


#: joblib starts ``n_jobs`` threads at predict time (k-NN with a KD/ball tree, forests...):
#: ``n_jobs=30000`` took 33 s and left 21,908 threads behind after one predict.
_MAX_JOBS = 256


def rule_n_jobs(value: Any, where: str) -> None:
    """``n_jobs``: None or a worker count between -256 and 256 (no thread flood at predict)."""
    if value is None:
        return
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and -_MAX_JOBS <= value <= _MAX_JOBS:
        return
    shown = f"the number {value!r:.40}" if isinstance(value, (int, float, np.number)) else _describe(value)
    raise _refuse(where, f"{shown} (allowed: None or a count between -{_MAX_JOBS} and {_MAX_JOBS})")


#: Iteration counts that ``transform`` itself loops over (an NMF with ``max_iter=10**11`` and a
#: negative ``tol`` took 1.4 s per 200,000 iterations to transform one row: days). Only these
#: estimators' counts are bounded; elsewhere ``max_iter`` is spent while fitting, not here.
_PREDICT_LOOPS = frozenset({"max_iter", "transform_max_iter", "max_doc_update_iter"})
_MAX_PREDICT_ITERATIONS = 100_000


@lru_cache(maxsize=1)
def _looping_transforms() -> tuple[type, ...]:
    names: tuple[str, ...] = ("NMF", "MiniBatchNMF", "LatentDirichletAllocation", "DictionaryLearning")
    names += ("MiniBatchDictionaryLearning", "SparseCoder")
    return tuple(getattr(decomposition, n) for n in names if hasattr(decomposition, n))


def _check_predict_loop(owner: Any, slot: str, value: Any, where: str) -> None:
    if not isinstance(owner, _looping_transforms()) or isinstance(value, bool):
        return
    if isinstance(value, (int, np.integer)) and 0 < value <= _MAX_PREDICT_ITERATIONS:
        return
    raise _refuse(
        where, f"the number {value!r:.40} (allowed: 1 to {_MAX_PREDICT_ITERATIONS:,}: transform loops that often)"
    )


_NAME_FORMAT_FIELDS = frozenset({"transformer_name", "feature_name"})
_MAX_NAME_FORMAT = 200


def rule_name_format(value: Any, where: str) -> None:
    """``verbose_feature_names_out``: a bool, or a ``str.format`` template of the two names only.

    The template is formatted once per output feature whenever feature names are shown:
    ``"{feature_name:>100000000}"`` (30 bytes) took 15 s and 2.9 GB to show one model's weights.
    So no format spec, conversion, attribute or index access, and at most 200 characters.
    """
    if isinstance(value, (bool, np.bool_)):
        return
    if not isinstance(value, str) or len(value) > _MAX_NAME_FORMAT:
        raise _refuse(
            where, _describe(value) + f" (allowed: a bool or a name template of at most {_MAX_NAME_FORMAT} characters)"
        )
    try:
        parts = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise _refuse(where, _describe(value) + " (not a name template)") from exc
    for _text, field, spec, conversion in parts:
        if field is not None and (field not in _NAME_FORMAT_FIELDS or spec or conversion):
            raise _refuse(
                where, _describe(value) + " (allowed fields: {transformer_name} and {feature_name}, as they are)"
            )


#: ``set_output`` containers scikit-learn dispatches to by name.
_OUTPUT_CONTAINERS = frozenset({"default", "pandas", "polars"})


def rule_output_config(value: Any, where: str) -> None:
    """``_sklearn_output_config``: a dict of method names to one of scikit-learn's containers."""
    if isinstance(value, dict) and type(value) is dict:
        return  # its values are checked one by one against this rule
    if isinstance(value, str) and value in _OUTPUT_CONTAINERS:
        return
    raise _refuse(where, _describe(value) + f" (allowed: {', '.join(sorted(_OUTPUT_CONTAINERS))})")


#: Parameters (``get_params`` names) with a rule of their own: every one that can hold code, a
#: class, free text or a path, for every estimator in ``sklearn.utils.all_estimators()``. String
#: options that scikit-learn declares (``StrOptions``) are checked for every other parameter too.
PARAM_RULES: dict[str, Rule] = {
    # code: a reviewed list, or never
    "func": rule_pure_function,
    "inverse_func": rule_pure_function,
    "kw_args": rule_no_arguments,
    "inv_kw_args": rule_no_arguments,
    "pooling_func": rule_reduction,
    "score_func": rule_score_function,
    "dtype": rule_dtype,
    "tokenizer": rule_none,
    "preprocessor": rule_none,
    "callback": rule_none,
    "is_data_valid": rule_none,
    "is_model_valid": rule_none,
    "memory": rule_none,
    "input": rule_content,
    "n_jobs": rule_n_jobs,
    # dispatch names: scikit-learn's own, never code
    "metric": rule_metric,
    "kernel": rule_metric,
    "affinity": rule_metric,
    "scoring": rule_scoring,
    "cv": rule_cv,
    "importance_getter": rule_attribute_path,
    "pre_dispatch": rule_pre_dispatch,
    "encoding": rule_codec,
    "token_pattern": rule_token_pattern,
    # options declared by scikit-learn, plus a callable it would call: the declared options only
    "analyzer": rule_no_code,
    "connectivity": rule_no_code,
    "feature_name_combiner": rule_no_code,
    "feature_names_out": rule_no_code,
    "fun": rule_no_code,
    "init": rule_no_code,
    "loss": rule_no_code,
    "max_features": rule_no_code,
    "oob_score": rule_no_code,
    "optimizer": rule_no_code,
    "refit": rule_no_code,
    "strategy": rule_no_code,
    "solver": rule_no_code,
    "strip_accents": rule_no_code,
    "verbose_feature_names_out": rule_name_format,
    "weights": rule_no_code,
    # free values that are data (labels, fill values, thresholds, separators, vocabularies)
    "constant": rule_data,
    "fill_value": rule_data,
    "missing_values": rule_data,
    "outlier_label": rule_data,
    "pos_label": rule_data,
    "separator": rule_data,
    "threshold": rule_data,
    "vocabulary": rule_data,
    "error_score": rule_data,
}

#: Fitted attributes and helper-object fields that hold strings or code, by name. Strings held
#: anywhere else are data (labels, feature names); code held anywhere else is refused.
FITTED_RULES: dict[str, Rule] = {
    "effective_metric_": rule_metric,
    "_fit_method": rule_names("brute", "kd_tree", "ball_tree"),
    "out_activation_": rule_activation,
    "activation": rule_activation,
    "_impl": rule_libsvm_impl,
    "_score_func": rule_metric_function,
    "_kmeans_single": rule_kmeans_single,
    "_asarray": rule_bspline_asarray,
    "pre_dispatch": rule_pre_dispatch,
    # stacking calls getattr(estimator, name)(X) for each of these: method names only
    "stack_method": rule_names("auto", "predict_proba", "decision_function", "predict"),
    "stack_method_": rule_names("auto", "predict_proba", "decision_function", "predict", "drop"),
    "func": rule_pure_function,
    "inverse_func": rule_pure_function,
    "dtype_include": rule_dtype,
    "dtype_exclude": rule_dtype,
    "pattern": rule_column_pattern,
    "_tree_metric": rule_metric,
    "_response_method": rule_names("predict", "predict_proba", "decision_function", "predict_log_proba", "transform"),
    "_sklearn_output_config": rule_output_config,
}
