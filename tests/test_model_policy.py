"""core.safety.policy: what a stranger's model may hold, attacked slot by slot.

Each hostile model below is made of pieces the unpickler allows (scikit-learn estimators,
numpy functions, builtin types) but would write or read a file, or call code of the sender's
choosing, the first time anyone predicts with it. Each is built here, saved as a pickle, a joblib
file and (where skops can write it) a skops file, and must be refused by ``load_untrusted``
with a message naming the slot, before anything predicts, so no file appears or is read.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import pickle
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
import skops.io
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.datasets import load_iris
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.naive_bayes import MultinomialNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC
from sklearn.utils import all_estimators

from core.errors import UnsafeModelError
from core.safety import LoadLimits
from core.safety import policy as model_policy
from core.safety.loader import _load_untrusted as load_untrusted
from core.safety.policy import check_model_policy
from core.safety.policy_rules import FITTED_RULES, PARAM_RULES

LIMITS = LoadLimits(max_bytes=100_000_000, max_decompressed_bytes=100_000_000, timeout_s=60)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Hostile models write relative to the working directory: make it a fresh one."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _formats(model, skops_too: bool = True) -> dict[str, bytes]:
    """The model as pickle, joblib and (where skops can write it) skops bytes."""
    out = {"pickle": pickle.dumps(model, protocol=5)}
    handle = io.BytesIO()
    joblib.dump(model, handle)
    out["joblib"] = handle.getvalue()
    if skops_too:
        with contextlib.suppress(Exception):  # skops cannot write every hostile object
            out["skops"] = skops.io.dumps(model)
    return out


def _refused(model, *needles: str) -> None:
    """Refused by load_untrusted in every format, and by the policy itself naming the slot.

    The unpickler's allowlist refuses some of these pieces earlier (numpy.memmap is not on it);
    the policy must refuse them too, in case a file ever gets them past the allowlist.
    """
    for data in _formats(model).values():
        with pytest.raises(UnsafeModelError):
            load_untrusted(data, limits=LIMITS)
    with pytest.raises(UnsafeModelError) as caught:
        check_model_policy(model)
    for needle in needles:
        assert needle in str(caught.value), str(caught.value)


def _fitted_lr(iris, n_features: int = 4) -> LogisticRegression:
    X, y = iris
    return LogisticRegression(max_iter=500).fit(X[:, :n_features], y)


def _fitted_ft(ft: FunctionTransformer, n_features: int = 4) -> FunctionTransformer:
    ft.n_features_in_ = n_features
    return ft


# -- the review's breaches, one test each -----------------------------------------------------------


def test_memmap_write_pipeline_is_refused(iris, in_tmp: Path):
    """The write primitive: numpy.memmap(X, mode="w+") creates a file named by the scored data."""
    ft = _fitted_ft(FunctionTransformer(np.memmap, kw_args={"mode": "w+", "shape": (8,), "dtype": "uint8"}))
    model = Pipeline([("w", ft), ("lr", _fitted_lr(iris))])
    _refused(model, "FunctionTransformer.func", "numpy.memmap")
    assert list(in_tmp.iterdir()) == []


def test_bytes_and_str_chain_is_refused(iris, in_tmp: Path):
    """bytes -> str -> memmap -> StandardScaler(copy=False): the full chain from the review."""
    scaler = StandardScaler(copy=False).fit(np.zeros((2, 4)))
    scaler.mean_ = np.frombuffer(b"payload!" * 4, dtype=np.float64)
    steps = [
        ("b", _fitted_ft(FunctionTransformer(bytes))),
        ("s", _fitted_ft(FunctionTransformer(str))),
        ("m", _fitted_ft(FunctionTransformer(np.memmap, kw_args={"mode": "w+", "shape": (4, 4)}))),
        ("scale", scaler),
        ("lr", _fitted_lr(iris)),
    ]
    _refused(Pipeline(steps), "FunctionTransformer.func")
    assert list(in_tmp.iterdir()) == []


@pytest.mark.parametrize("func", [bytes, str, np.memmap, np.load, print, eval], ids=lambda f: f.__name__)
def test_function_transformer_holds_only_reviewed_functions(iris, func):
    ft = _fitted_ft(FunctionTransformer(np.log1p))
    ft.func = func
    model = Pipeline([("f", ft), ("lr", _fitted_lr(iris))])
    with pytest.raises(UnsafeModelError, match=r"FunctionTransformer\.func"):
        check_model_policy(model)


def test_inverse_func_and_kw_args_are_checked(iris):
    ft = _fitted_ft(FunctionTransformer(np.log1p, inverse_func=np.memmap))
    with pytest.raises(UnsafeModelError, match="inverse_func"):
        check_model_policy(Pipeline([("f", ft), ("lr", _fitted_lr(iris))]))
    ft = _fitted_ft(FunctionTransformer(np.log1p, kw_args={"out": bytes}))
    with pytest.raises(UnsafeModelError, match="kw_args"):
        check_model_policy(Pipeline([("f", ft), ("lr", _fitted_lr(iris))]))


def test_transformed_target_regressor_functions(iris):
    X, y = iris
    reg = TransformedTargetRegressor(LinearRegression(), func=np.log1p, inverse_func=np.expm1).fit(X, y)
    check_model_policy(reg)  # the ordinary form is fine
    reg.inverse_func = np.memmap
    _refused(reg, "inverse_func", "numpy.memmap")


def test_vectorizer_reading_files_is_refused(in_tmp: Path):
    """CountVectorizer(input="filename", analyzer=int) reads a server file into an error message."""
    (in_tmp / "secret.txt").write_text("12345")
    model = Pipeline([("cv", CountVectorizer()), ("nb", MultinomialNB())]).fit(["alpha beta", "beta gamma"], [0, 1])
    model.steps[0][1].input = "filename"
    _refused(model, "CountVectorizer.input", "content")
    model.steps[0][1].input = "file"
    _refused(model, "CountVectorizer.input")
    model.steps[0][1].input = "content"
    model.steps[0][1].analyzer = int
    _refused(model, "CountVectorizer.analyzer", "builtins.int")


@pytest.mark.parametrize("slot", ["tokenizer", "preprocessor"])
def test_vectorizer_code_slots(slot):
    docs = ["alpha beta", "beta gamma", "gamma delta"]
    model = Pipeline([("tf", TfidfVectorizer()), ("lr", LogisticRegression())]).fit(docs, [0, 1, 0])
    setattr(model.steps[0][1], slot, str)
    _refused(model, f"TfidfVectorizer.{slot}")


def test_knn_metric_and_weights(iris):
    X, y = iris
    knn = KNeighborsClassifier(algorithm="brute").fit(X, y)
    for attr in ("metric", "effective_metric_", "weights"):
        hostile = KNeighborsClassifier(algorithm="brute").fit(X, y)
        setattr(hostile, attr, np.memmap)
        _refused(hostile, f"KNeighborsClassifier.{attr}")
    knn.metric = "not-a-metric"
    _refused(knn, "KNeighborsClassifier.metric", "not-a-metric")


def test_svc_callable_kernel(iris):
    X, y = iris
    svc = SVC().fit(X, y)
    svc.kernel = np.memmap
    _refused(svc, "SVC.kernel")
    svc.kernel = "filename"
    _refused(svc, "SVC.kernel")


def test_column_transformer_callable_columns(iris):
    X, y = iris
    ct = ColumnTransformer([("s", StandardScaler(), [0, 1])], remainder="passthrough")
    model = Pipeline([("ct", ct), ("lr", LogisticRegression(max_iter=500))]).fit(X, y)
    model.steps[0][1].transformers_[0] = ("s", model.steps[0][1].transformers_[0][1], np.memmap)
    _refused(model, "ColumnTransformer.transformers_", "numpy.memmap")


def test_pipeline_memory_path(iris):
    X, y = iris
    model = Pipeline([("lr", LogisticRegression(max_iter=500))]).fit(X, y)
    model.memory = "/tmp/cache-of-the-sender"
    _refused(model, "Pipeline.memory")


def test_memmap_instance_is_refused(iris, in_tmp: Path):
    lr = _fitted_lr(iris)
    backing = np.memmap(in_tmp / "backing.bin", dtype=np.float64, mode="w+", shape=lr.coef_.shape)
    backing[:] = lr.coef_
    hostile = _fitted_lr(iris)
    hostile.coef_ = backing
    with pytest.raises(UnsafeModelError, match=r"numpy\.memmap"):
        check_model_policy(hostile)


def test_skops_trusts_only_what_models_need(iris):
    """skops would build numpy.memmap and builtins.bytes because they were on the allowlist."""
    for func in (np.memmap, bytes):
        ft = _fitted_ft(FunctionTransformer(np.log1p))
        ft.func = func
        data = skops.io.dumps(Pipeline([("f", ft), ("lr", _fitted_lr(iris))]))
        with pytest.raises(UnsafeModelError, match=r"not allowed|FunctionTransformer\.func"):
            load_untrusted(data, limits=LIMITS)


def test_declared_string_options_are_enforced(iris):
    X, y = iris
    lr = LogisticRegression(max_iter=500).fit(X, y)
    lr.solver = "../../etc/passwd"
    _refused(lr, "LogisticRegression.solver", "lbfgs")


def test_refusal_names_the_nested_slot(iris):
    ft = _fitted_ft(FunctionTransformer(np.log1p))
    ft.func = np.memmap
    inner = Pipeline([("f", ft), ("lr", _fitted_lr(iris))])
    outer = Pipeline([("inner", inner)])
    with pytest.raises(UnsafeModelError) as caught:
        check_model_policy(outer)
    assert "FunctionTransformer.func" in str(caught.value)
    assert "nothing was loaded" in str(caught.value)


# -- ordinary models are not refused ------------------------------------------------------------------


def test_ordinary_function_slots_are_accepted(iris):
    X, y = iris
    for func in (np.log1p, np.sqrt, np.exp, None):
        model = Pipeline([("f", FunctionTransformer(func)), ("lr", LogisticRegression(max_iter=500))]).fit(X, y)
        check_model_policy(model)
    text = Pipeline([("cv", CountVectorizer()), ("nb", MultinomialNB())]).fit(["alpha beta", "beta gamma"], [0, 1])
    check_model_policy(text)


# -- every slot scikit-learn has is covered ----------------------------------------------------------


def _needs_rule(constraints) -> bool:
    """Can this parameter hold code, a class, free text or a path (anything beyond declared options)?"""
    from sklearn.utils._param_validation import Hidden

    if constraints == "no_validation":
        return True
    for constraint in constraints:
        inner = constraint.constraint if isinstance(constraint, Hidden) else constraint
        if inner is callable or inner == "callable" or inner is str or inner is type:
            return True
    return False


def test_every_parameter_that_can_hold_code_or_text_has_a_rule():
    missing = []
    for name, cls in all_estimators():
        constraints = getattr(cls, "_parameter_constraints", None)
        if constraints is None:
            # No declared constraints: every parameter must be either an estimator slot or ruled.
            for param, spec in inspect.signature(cls.__init__).parameters.items():
                if spec.kind in (spec.VAR_POSITIONAL, spec.VAR_KEYWORD):
                    continue
                walked = ("self", "steps", "transformer_list", "transformer_weights", "estimator")
                plain = ("n_jobs", "verbose", "verbose_feature_names_out")
                if param not in walked and param not in plain and param not in PARAM_RULES:
                    missing.append(f"{name}.{param}")
            continue
        for param, allowed in constraints.items():
            if _needs_rule(allowed) and param not in PARAM_RULES:
                missing.append(f"{name}.{param}")
    assert not missing, f"parameters with no rule in core.safety.policy_rules.PARAM_RULES: {missing}"


def _fitted_defaults():
    """Every estimator scikit-learn can build and fit with defaults on small iris-like data."""
    X, y = load_iris(return_X_y=True)
    X = np.abs(X)
    fitted = []
    try:
        from sklearn.utils._test_common.instance_generator import _construct_instances
    except ImportError:  # pragma: no cover - scikit-learn moved it
        _construct_instances = None
    for name, cls in all_estimators():
        try:
            instances = list(_construct_instances(cls)) if _construct_instances else [cls()]
        except Exception:  # noqa: BLE001 - some need arguments this test does not know
            continue
        for instance in instances[:1]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    target = y if not name.startswith("MultiTask") else np.c_[y, y]
                    instance.fit(X, target)
                except Exception:  # noqa: BLE001 - text-, label- or pair-only estimators
                    try:
                        instance.fit(X)
                    except Exception:  # noqa: BLE001
                        continue
            fitted.append((name, instance))
    return fitted


def _fitted_string_slots(obj, found: set[str], seen: set[int]) -> None:
    if model_policy.is_code(obj):
        return  # code is refused or ruled where it is held; its insides are not model state
    if id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool, type(None), np.ndarray, np.generic)):
        return
    seen.add(id(obj))
    if isinstance(obj, dict):
        values = list(obj.values())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        values = list(obj)
    else:
        params = set(type(obj)._get_param_names()) if isinstance(obj, BaseEstimator) else set()
        for key, value in getattr(obj, "__dict__", {}).items():
            if key not in params and (isinstance(value, str) or model_policy.is_code(value)):
                found.add(f"{type(obj).__name__}.{key}")
        values = list(getattr(obj, "__dict__", {}).values())
    for value in values:
        _fitted_string_slots(value, found, seen)


#: Fitted attributes that hold strings scikit-learn never dispatches on: labels and names.
FITTED_STRINGS_THAT_ARE_DATA = {
    "_fit_dtype",
    "_solver",
    "best_estimator_",
    "method",
    "kind",
    "name",
    "_estimator_type",
    "_sklearn_version",
    "effective_solver_",
    "_algorithm",
    "_output_type",
    "type_of_target_",
    "y_type_",
    "_strategy",
    "_fit_algorithm",
    "_criterion",
    "_metric",
    "_normalize",
    "_tree_type",
    "_svd_solver",
    "_fit_svd_solver",
    "_initial_strategy",
    "_multi_class",
    "_penalty",
    "_weight_type",
    "_loss_name",
    # set by a parent's __init__ and read only while fitting
    "algorithm",
    "deflation_mode",
    "mode",
    "constant_value_bounds",
    "length_scale_bounds",
    "_init",
    "loss",
    "precompute",
    "learning_rate",
    "penalty",
    "solver_",
    "termination_condition_",
    "target_type_",
}


def test_every_fitted_string_or_code_slot_has_a_rule():
    """Fit what scikit-learn can fit with defaults; every string/code attribute must be known."""
    unknown = set()
    refused: list[str] = []
    accepted = 0
    for name, instance in _fitted_defaults():
        found: set[str] = set()
        _fitted_string_slots(instance, found, set())
        for slot in found:
            attr = slot.split(".", 1)[1]
            if attr not in FITTED_RULES and attr not in FITTED_STRINGS_THAT_ARE_DATA:
                unknown.add(slot)
        try:
            check_model_policy(instance)  # scikit-learn's own defaults are never refused
        except UnsafeModelError as exc:
            refused.append(f"{name}: {exc}")
        accepted += 1
    assert accepted > 120, accepted
    assert not refused, "\n".join(refused)
    assert not unknown, f"fitted attributes holding strings or code with no rule: {sorted(unknown)}"
