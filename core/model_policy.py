"""What a stranger's model may HOLD: deny by default, one explicit rule per dangerous slot.

The restricted unpickler (``core.safe_load``) decides what a file may call *while it is read*.
That is not enough: scikit-learn calls what a model holds *later*. A pipeline made only of
allowlisted pieces, ``FunctionTransformer(numpy.memmap, kw_args={"mode": "w+"})``, writes a
file the first time anyone predicts with it; ``CountVectorizer(input="filename")`` reads one;
a k-NN ``metric``, an SVC ``kernel`` or a ColumnTransformer column selector is called with the
data. So after loading and before anything uses the model, :func:`check_model_policy` walks
every object reachable from it and applies these rules:

* **Code is refused everywhere** (classes, functions, builtins, numpy ufuncs, ``functools.partial``,
  bound methods, any other callable object) except in the few slots that have a rule saying
  otherwise: ``func``/``inverse_func`` (a short, reviewed list of pure numpy functions, and the
  ``check_array`` partial scikit-learn itself stores), ``dtype`` (numpy scalar types),
  ``score_func`` (scikit-learn's own univariate scores, used only when fitting), ``pooling_func``
  (numpy reductions), a fitted search's scorer (scikit-learn's own metrics), column selectors made
  by ``make_column_selector``, and scikit-learn's own Gaussian-process kernels.
* **Dispatch strings come from scikit-learn's names**: every parameter whose declared
  constraints list string options (``metric``, ``kernel``, ``analyzer``, ``solver``, ...) must
  hold one of them; parameters that also take free text have a rule of their own (``metric``:
  a known distance name; ``memory``: None only; ``input``: ``"content"`` only; ``encoding``: a
  text codec; ``token_pattern``: a bounded regular expression ...). Fitted attributes that pick a
  code path (``effective_metric_``, ``_fit_method``, ``out_activation_``, libsvm's ``_impl``,
  ...) are checked the same way.
* **Instances**: only scikit-learn estimators and the helper, numpy and scipy types on the
  allowlist, never ``numpy.memmap`` (a file-backed array) or a file, socket or module.

``tests/test_model_policy.py`` walks ``sklearn.utils.all_estimators()`` and fails when a
parameter that can hold a callable, a class, free text or a path, or a fitted attribute that
holds a string, has no rule here: a new scikit-learn slot cannot slip through unnoticed.
"""

from __future__ import annotations

import codecs
import collections
import functools
import inspect
import re
import string
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

import numpy as np

from core.errors import UnsafeModelError

_MAX_OBJECTS = 5_000_000
_MAX_PATTERN = 1_000  # characters in a regular expression a model may hold

Rule = Callable[[Any, str], None]


class PolicyError(UnsafeModelError):
    """A loaded model holds something it may not: the slot and the value are named."""


def _refuse(where: str, what: str) -> PolicyError:
    return PolicyError(f"Refused: {where} holds {what}, which a model from elsewhere may not hold; nothing was loaded")


def _describe(value: Any) -> str:
    if isinstance(value, type):
        shown = getattr(value, "stands_for", None) or f"{value.__module__}.{value.__qualname__}"
        return f"the class {shown}"
    if isinstance(value, functools.partial):
        return f"a partial of {_describe(value.func)}"
    if isinstance(value, str):
        return f"the string {value[:60]!r}"
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    module = getattr(value, "__module__", None) or type(value).__module__
    if name:
        return f"the callable {module}.{name}"
    return f"a {type(value).__module__}.{type(value).__qualname__}"


# -- what counts as code ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _callable_objects() -> tuple[type, ...]:
    """Objects scikit-learn defines as callable that are data, not code: kernels, selectors,
    losses, splines and scorers (whose own fields are walked and checked like any other)."""
    from scipy.interpolate import BSpline
    from sklearn._loss.link import BaseLink
    from sklearn._loss.loss import BaseLoss
    from sklearn.compose import make_column_selector
    from sklearn.gaussian_process.kernels import Kernel
    from sklearn.metrics._scorer import _BaseScorer, _MultimetricScorer, _PassthroughScorer

    scorers = (_BaseScorer, _MultimetricScorer, _PassthroughScorer)
    return (Kernel, make_column_selector, BaseLoss, BaseLink, BSpline, *scorers)


@lru_cache(maxsize=1)
def _made_here() -> tuple[type, ...]:
    """Callables scikit-learn builds itself while loading, from checked data, never from the file.

    ``IsotonicRegression.__setstate__`` rebuilds ``f_`` (a scipy ``interp1d``) from its
    thresholds; the allowlist has no way for a file to make one. Not walked: its insides are
    scipy's own bound methods.
    """
    from scipy.interpolate import interp1d

    return (interp1d,)


#: Where scikit-learn keeps the callable data objects above (kernels, losses, splines, scorers,
#: column selectors): anywhere else, such an object is a method put in place of the real one
#: (``lr.predict = DotProduct()``) or a step's missing ``transform``.
CALLABLE_DATA_SLOTS = frozenset(
    {
        "kernel",
        "kernel_",
        "k1",
        "k2",
        "kernels",
        "metric",
        "affinity",
        "_loss",
        "_base_loss",
        "loss",
        "loss_",
        "bsplines_",
        "scorer_",
        "_scorers",
        "scoring",
        "transformers",
        "transformers_",
        "_columns",
    }
)


def is_code(value: Any) -> bool:
    """Anything that runs when called: classes, functions, ufuncs, partials, methods, callables."""
    if isinstance(value, type):
        return True
    if isinstance(value, (np.ndarray, np.generic, str, bytes)):
        return False
    return callable(value) and not isinstance(value, (*_callable_objects(), *_made_here()))


# -- reviewed pure functions -----------------------------------------------------------------------

#: numpy ufuncs a ``FunctionTransformer`` / ``TransformedTargetRegressor`` may hold: elementwise
#: arithmetic on the array they are given, no I/O, no object access.
PURE_UFUNCS = (
    "abs",
    "absolute",
    "arcsinh",
    "arctan",
    "cbrt",
    "ceil",
    "cos",
    "exp",
    "exp2",
    "expm1",
    "fabs",
    "floor",
    "log",
    "log10",
    "log1p",
    "log2",
    "negative",
    "positive",
    "reciprocal",
    "rint",
    "sign",
    "sin",
    "sinh",
    "sqrt",
    "square",
    "tanh",
    "trunc",
)

#: numpy reductions ``FeatureAgglomeration(pooling_func=...)`` may hold.
PURE_REDUCTIONS = ("mean", "median", "max", "min", "sum", "amax", "amin")


@lru_cache(maxsize=1)
def _pure_functions() -> frozenset[int]:
    return frozenset(id(getattr(np, n)) for n in PURE_UFUNCS if isinstance(getattr(np, n, None), np.ufunc))


@lru_cache(maxsize=1)
def _reductions() -> frozenset[int]:
    return frozenset(id(getattr(np, n)) for n in PURE_REDUCTIONS if hasattr(np, n))


@lru_cache(maxsize=1)
def _numpy_types() -> frozenset[int]:
    """numpy's scalar types and the builtin ones numpy maps to them, as ``dtype`` values."""
    types = {t for t in set(np.sctypeDict.values()) if t.__module__ == "numpy"}
    types |= {float, int, bool, complex, str, object}
    return frozenset(id(t) for t in types)


#: Largest item a dtype a model asks for may have (a 16-character text item is 64 bytes).
_MAX_ITEMSIZE = 64


def _check_dtype_value(value: Any, where: str) -> None:
    """A scalar numpy dtype: no records, sub-arrays or raw bytes, items of at most 64 bytes.

    ``OneHotEncoder(dtype="(2000,2000)f8")`` made each one-hot cell a 32 MB sub-array:
    transforming 150 rows took 30 s and 9.3 GB before scipy refused the dtype.
    """
    if value is None or isinstance(value, (str, np.dtype)):
        try:
            dtype = np.dtype(value)
        except (TypeError, ValueError) as exc:
            raise _refuse(where, _describe(value) + " (not a numpy dtype)") from exc
        if dtype.fields or dtype.subdtype or dtype.kind in "VmM" or dtype.itemsize > _MAX_ITEMSIZE:
            shown = value if isinstance(value, str) else dtype.str
            raise _refuse(where, f"the dtype {shown!r:.60} (allowed: numeric, bool, object or short text scalars)")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_dtype_value(item, where)
        return
    if isinstance(value, type) and id(value) in _numpy_types():
        return
    raise _refuse(where, _describe(value) + " (a dtype must be a numpy type)")


def _check_array_partial(value: functools.partial, where: str) -> None:
    """The partial exactly as the unpickler admits it (skops builds partials itself: check again)."""
    from core.allowlist import check_partial_parts

    try:
        check_partial_parts(value.func, value.args, value.keywords, vars(value))
    except UnsafeModelError as exc:
        raise _refuse(where, _describe(value) + f" ({exc})") from exc


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
        "core.model_policy.TOKEN_PATTERNS; any other expression can backtrack for ever on crafted text)",
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
    from sklearn.metrics import pairwise
    from sklearn.neighbors import VALID_METRICS, VALID_METRICS_SPARSE

    names: set[str] = set(pairwise.PAIRWISE_DISTANCE_FUNCTIONS) | set(pairwise.PAIRWISE_KERNEL_FUNCTIONS)
    names |= set(getattr(pairwise, "_VALID_METRICS", ()))
    for table in (VALID_METRICS, VALID_METRICS_SPARSE):
        for values in table.values():
            names |= set(values)
    names |= {"precomputed", "nan_euclidean"}
    return frozenset(n for n in names if isinstance(n, str))


def rule_metric(value: Any, where: str) -> None:
    """Metrics and kernels: a name scikit-learn knows, or its own DistanceMetric/kernel objects."""
    from sklearn.gaussian_process.kernels import Kernel
    from sklearn.metrics import DistanceMetric

    if value is None or isinstance(value, (DistanceMetric, Kernel)):
        return
    if isinstance(value, str) and value in _metric_names():
        return
    raise _refuse(where, _describe(value) + " (a metric or kernel must be one of scikit-learn's names)")


@lru_cache(maxsize=1)
def _scorer_names() -> frozenset[str]:
    from sklearn.metrics import get_scorer_names

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
    from sklearn import feature_selection as fs

    names = ("chi2", "f_classif", "f_oneway", "f_regression", "mutual_info_classif", "mutual_info_regression")
    return frozenset(id(getattr(fs, n)) for n in (*names, "r_regression") if hasattr(fs, n))


def rule_score_function(value: Any, where: str) -> None:
    if value is None or id(value) in _score_functions():
        return
    raise _refuse(where, _describe(value) + " (allowed: scikit-learn's own univariate score functions)")


@lru_cache(maxsize=1)
def _metric_functions() -> frozenset[int]:
    """The metric functions behind scikit-learn's named scorers (what a fitted search may hold)."""
    from sklearn.metrics import get_scorer

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
    from sklearn.cluster import _kmeans

    if value in (getattr(_kmeans, "_kmeans_single_lloyd", None), getattr(_kmeans, "_kmeans_single_elkan", None)):
        return
    raise _refuse(where, _describe(value) + " (allowed: scikit-learn's own k-means routines)")


def rule_bspline_asarray(value: Any, where: str) -> None:
    """scipy's BSpline (SplineTransformer) keeps the array constructor it was made with."""
    from scipy.interpolate import BSpline

    reference = BSpline(np.arange(8.0), np.ones(4), 3)._asarray
    if value is not reference:
        raise _refuse(where, _describe(value) + " (allowed: scipy's own array constructor)")


def rule_activation(value: Any, where: str) -> None:
    from sklearn.neural_network._base import ACTIVATIONS

    rule_names(*ACTIVATIONS)(value, where)


def rule_libsvm_impl(value: Any, where: str) -> None:
    from sklearn.svm._base import LIBSVM_IMPL

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
    from sklearn import decomposition as d

    names = ("NMF", "MiniBatchNMF", "LatentDirichletAllocation", "DictionaryLearning")
    names += ("MiniBatchDictionaryLearning", "SparseCoder")
    return tuple(getattr(d, n) for n in names if hasattr(d, n))


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


# -- string options declared by scikit-learn ------------------------------------------------------


@lru_cache(maxsize=512)
def declared_strings(cls: type, param: str) -> tuple[frozenset[str] | None, bool]:
    """(the string options a parameter declares, whether it also takes free text).

    ``(None, False)`` when the parameter declares no string constraint at all.
    """
    from sklearn.utils._param_validation import Hidden, Options, StrOptions

    constraints = getattr(cls, "_parameter_constraints", {}).get(param)
    if not isinstance(constraints, list):
        return None, False
    options: set[str] = set()
    free = False
    for constraint in constraints:
        inner = constraint.constraint if isinstance(constraint, Hidden) else constraint
        if isinstance(inner, (StrOptions, Options)):
            options |= {o for o in inner.options if isinstance(o, str)}
        elif inner is str:
            free = True
    if not options and not free:
        return None, False
    return frozenset(options), free


def _declared_name(owner: Any, slot: str | None, value: Any) -> bool:
    if not isinstance(value, str) or slot is None or slot not in _param_names(owner):
        return False
    options, _free = declared_strings(type(owner), slot)
    return options is not None and value in options


def _check_declared_string(obj: Any, param: str, value: Any, where: str) -> None:
    if not isinstance(value, str):
        return
    options, free = declared_strings(type(obj), param)
    if options is None or free or value in options:
        return
    if value in ("deprecated", "warn"):  # scikit-learn's own transition sentinels
        return
    raise _refuse(where, _describe(value) + f" (scikit-learn allows: {', '.join(sorted(options))})")


# -- the walk -------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _never_instances() -> tuple[type, ...]:
    import io
    import socket
    import types

    from sklearn.metrics import _dist_metrics

    # PyFuncDistance calls the Python function it holds (from its pickled state, out of the
    # walk's sight) with every pair of rows: code in a slot no rule reviews.
    pyfunc = tuple(
        getattr(_dist_metrics, n) for n in ("PyFuncDistance64", "PyFuncDistance32") if hasattr(_dist_metrics, n)
    )
    return (np.memmap, io.IOBase, socket.socket, types.ModuleType, types.FrameType, types.CodeType, *pyfunc)


@lru_cache(maxsize=1)
def _opaque_types() -> tuple[type, ...]:
    """Compiled objects that keep their state outside ``__dict__``: walked through ``__getstate__``."""
    from sklearn.metrics._dist_metrics import DistanceMetric32, DistanceMetric64
    from sklearn.neighbors import BallTree, KDTree

    return (DistanceMetric64, DistanceMetric32, KDTree, BallTree)


def _slots(obj: Any) -> Iterator[tuple[Any, Any]]:
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        yield from state.items()


_PLAIN = (type(None), bool, int, float, str)


_NOTHING = object()


@lru_cache(maxsize=65536)
def _class_defines(cls: type, key: str) -> Any:
    """What ``cls`` itself defines under ``key`` (``_NOTHING`` if nothing): a forest's 200 trees ask
    the same questions, so the answers are kept (classes do not change while a server runs)."""
    try:
        return inspect.getattr_static(cls, key)
    except AttributeError:
        return _NOTHING


def _check_attribute_names(obj: Any, where: str) -> None:
    """An instance attribute may not be special (``__...__``) nor hide what its class defines.

    Python finds an instance's ``__dict__`` before its class's methods and properties, so a file
    that sets ``predict``, ``transform``, ``__sklearn_tags__`` or ``_sk_visual_block_`` on an
    estimator replaces the method scikit-learn and ModelShelf call. Only a plain class default
    (``LassoLars.positive = False``) may be overridden, by a plain value.
    """
    cls = type(obj)
    for key, value in _slots(obj):
        if not isinstance(key, str):
            raise _refuse(f"{where} (an attribute name)", _describe(key) + " (attribute names are text)")
        if key.startswith("__") and key.endswith("__"):
            raise _refuse(f"{cls.__name__}.{key[:60]}", _describe(value) + " (special attributes are the class's own)")
        defined = _class_defines(cls, key)
        if defined is _NOTHING:
            continue
        if value is defined or (isinstance(defined, _PLAIN) and isinstance(value, _PLAIN)):
            continue
        raise _refuse(
            f"{cls.__name__}.{key[:60]}",
            _describe(value) + f" in place of what its class defines there ({_describe(defined)})",
        )


def _param_names(obj: Any) -> frozenset[str]:
    from sklearn.base import BaseEstimator

    if not isinstance(obj, BaseEstimator):
        return frozenset()
    return _class_param_names(type(obj))


@lru_cache(maxsize=1024)
def _class_param_names(cls: type) -> frozenset[str]:
    """Once per class: ``_get_param_names`` inspects the signature (slow for 500,000 values)."""
    try:
        return frozenset(cls._get_param_names())
    except (RuntimeError, TypeError, ValueError):
        return frozenset()


def check_model_policy(model: Any, tick: Callable[[], None] | None = None) -> None:
    """Refuse a model that holds code, file-backed arrays or dispatch values outside the rules.

    Walks every object reachable from ``model`` (attributes, containers, object arrays and
    their fields, compiled objects' pickled state). Each value is checked in its slot:
    ``Class.attribute`` with a rule above, else the generic rule (no code; string options as
    scikit-learn declares them). Then the graph's size counted path by path is bounded.
    """
    # id -> object: holding a reference keeps temporaries (field views, compiled objects' state)
    # alive, so that no later object can reuse an id and be skipped as already seen.
    seen: dict[int, Any] = {}
    stack: list[tuple[Any, str, str | None, Any]] = [(model, type(model).__name__, None, None)]
    never = _never_instances()
    while stack:
        value, where, slot, owner = stack.pop()
        if value is None or isinstance(value, (bool, int, float, complex, np.number, np.bool_)):
            if value is not None and slot in _NUMBER_SLOTS and (rule := _rule_for(owner, slot)) in _NUMBER_RULES:
                rule(value, where)
            if value is not None and slot in _PREDICT_LOOPS:
                _check_predict_loop(owner, slot, value, where)
            continue
        if isinstance(value, never):
            raise _refuse(
                where,
                _describe(value) + " (file-backed arrays, files, sockets, modules and Python-function metrics never)",
            )
        rule = _rule_for(owner, slot)
        if rule in _NAME_RULES and _declared_name(owner, slot, value):
            pass  # one of the options scikit-learn itself declares for this parameter
        elif rule is not None:
            rule(value, where)
        elif is_code(value):
            raise _refuse(where, _describe(value))
        elif (
            callable(value)
            and slot not in CALLABLE_DATA_SLOTS
            and not isinstance(value, (np.ndarray, np.generic, *_made_here()))
        ):
            raise _refuse(where, _describe(value) + " (a callable object, allowed only where scikit-learn keeps one)")
        if owner is not None and slot is not None and slot in _param_names(owner):
            _check_declared_string(owner, slot, value, where)
        if isinstance(value, (str, bytes, bytearray, type)) or id(value) in seen:
            continue
        seen[id(value)] = value
        if len(seen) > _MAX_OBJECTS:
            raise PolicyError(f"Refused: the model holds more than {_MAX_OBJECTS:,} objects; nothing was loaded")
        if tick is not None and len(seen) % 4096 == 0:
            tick()
        if not is_code(value):
            _check_attribute_names(value, where)
        stack.extend(reversed(_children(value, where, slot, owner)))  # in order: the first bad slot is named
    _check_expansion(model, tick)


#: Rules that also see numbers (every other rule is about text, code or containers).
_NUMBER_RULES: frozenset[Rule] = frozenset({rule_n_jobs})
_NUMBER_SLOTS = frozenset({"n_jobs"})

#: Rules that accept any option scikit-learn declares for the parameter (others, like ``input``,
#: are narrower than the declared options on purpose).
_NAME_RULES: frozenset[Rule] = frozenset({rule_metric, rule_scoring, rule_no_code})


def _rule_for(owner: Any, slot: str | None) -> Rule | None:
    if owner is None or slot is None:
        return None
    if slot in _param_names(owner):
        return PARAM_RULES.get(slot)
    return FITTED_RULES.get(slot)


def _label(key: Any) -> str:
    """A dict key for a message, without calling its ``repr`` (a crafted key's repr can take forever)."""
    if isinstance(key, str):
        return repr(key[:40])
    if isinstance(key, (bool, int, float, np.number)):
        return repr(key)[:40]
    return f"<{type(key).__name__}>"


def _fields(value: Any, where: str, slot: str | None, owner: Any) -> list[tuple[Any, str, str | None, Any]]:
    """The fields of a structured array or record whose dtype holds Python objects."""
    names = value.dtype.names or ()
    if not names and isinstance(value, np.void):
        raise _refuse(where, "a numpy record holding objects outside named fields")
    return [(value[name], f"{where}[{_label(name)}]", slot, owner) for name in names]


def _children(value: Any, where: str, slot: str | None, owner: Any) -> list[tuple[Any, str, str | None, Any]]:
    """(child, where, slot, owner): containers keep their parent's slot, objects start their own.

    Nothing is out of sight: a container subclass's own attributes (``OrderedDict``, ``Bunch``),
    a ``defaultdict``'s factory, a structured array's object fields and a compiled object's
    pickled state (distance metrics, KD/ball trees) are walked like everything else.
    """
    own = [(v, f"{type(value).__name__}.{k}", k, value) for k, v in _slots(value)]
    if isinstance(value, dict):  # keys are names of the owner's choosing: checked as plain values
        keys = [(k, f"{where} (a key)", None, None) for k in value]
        items = [(v, f"{where}[{_label(k)}]", slot, owner) for k, v in value.items()]
        if isinstance(value, collections.defaultdict):
            items.append((value.default_factory, f"{where} (its default_factory)", None, None))
        return keys + items + own
    if isinstance(value, (list, tuple, set, frozenset)):
        return [(v, f"{where}[{i}]", slot, owner) for i, v in enumerate(value)] + own
    if isinstance(value, np.ndarray):
        if not value.dtype.hasobject:
            return []
        if value.dtype.names:
            return _fields(value, where, slot, owner)
        return [(v, f"{where}[...]", slot, owner) for v in value.ravel()]
    if isinstance(value, np.void):
        return _fields(value, where, slot, owner) if value.dtype.hasobject else []
    if isinstance(value, functools.partial):
        return []  # checked whole by its slot's rule
    if inspect.isroutine(value) or isinstance(value, (np.ufunc, *_made_here())):
        return []
    if isinstance(value, _opaque_types()):
        state = value.__getstate__()
        name = type(value).__name__
        return [(v, f"{name} (pickled state {i})", None, None) for i, v in enumerate(state)]
    return own


# -- the graph's size, path by path ---------------------------------------------------------------

#: Objects reached when every path is followed (what ``repr``, ``hash``, ``==``, ``get_params``,
#: the pipeline diagram and a kernel's ``__call__`` do), and how deep.
_MAX_EXPANDED = 2 * _MAX_OBJECTS
_MAX_DEPTH = 200
_END = object()


def _check_expansion(model: Any, tick: Callable[[], None] | None = None) -> None:
    """Refuse a graph that is small on disk and huge when followed path by path.

    A file can share one object twice at each of 40 levels (``t = (t, t)``, ``Sum(k, k)``): 80
    objects, but ``repr``, ``hash`` and ``==`` of the top one, ``get_params`` and the HTML diagram
    of an estimator made that way, or a Gaussian process's kernel, visit 2**40. Each node's
    expanded size is counted once (memoised) in a depth-first pass; a cycle counts as one.
    """
    sizes: dict[int, int] = {}
    alive: list[Any] = []  # temporaries (views, pickled states) keep their ids while counted
    on_path: set[int] = {id(model)}
    frames: list[list[Any]] = [[model, iter(_graph_children(model)), 1]]
    while frames:
        frame = frames[-1]
        child = next(frame[1], _END)
        if child is _END:
            frames.pop()
            on_path.discard(id(frame[0]))
            sizes[id(frame[0])] = frame[2]
            alive.append(frame[0])
            if tick is not None and len(sizes) % 4096 == 0:
                tick()
            if frames:
                frames[-1][2] += frame[2]
                _bound_expansion(frames[-1][2])
            continue
        key = id(child)
        if key in sizes:
            frame[2] += sizes[key]
            _bound_expansion(frame[2])
        elif key in on_path or _is_leaf(child):
            frame[2] += 1
        else:
            if len(frames) >= _MAX_DEPTH:
                raise PolicyError(
                    f"Refused: the model nests objects more than {_MAX_DEPTH} levels deep; nothing was loaded"
                )
            on_path.add(key)
            frames.append([child, iter(_graph_children(child)), 1])


def _is_leaf(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, bytearray, type, np.generic)):
        return not (isinstance(value, np.void) and value.dtype.hasobject)
    return isinstance(value, np.ndarray) and not value.dtype.hasobject


def _graph_children(value: Any) -> list[Any]:
    return [child for child, _where, _slot, _owner in _children(value, "", None, None)]


def _bound_expansion(size: int) -> None:
    if size > _MAX_EXPANDED:
        raise PolicyError(
            f"Refused: the model's objects, followed path by path, number more than {_MAX_EXPANDED:,} "
            "(shared many times over, so showing or using it would never finish); nothing was loaded"
        )
