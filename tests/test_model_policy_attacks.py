"""Red-team attacks on core.safety.policy: bypasses found after the policy was merged.

Each test builds a hostile model here from pieces the loader allows, writes it as a pickle, a
joblib file and (where skops can write it) a skops file, and checks that ``load_untrusted``
refuses it naming the slot. Each docstring says what the attack did before the fix. Attacks
that hang the interpreter in C (holding the GIL) run in a child process with a timeout.
"""

from __future__ import annotations

import collections
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import skops.io
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.gaussian_process.kernels import DotProduct
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import DistanceMetric
from sklearn.naive_bayes import MultinomialNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from core.errors import FormatError, UnsafeModelError
from core.safety.loader import _load_untrusted as load_untrusted
from core.safety.policy import check_model_policy
from tests import test_model_policy
from tests.test_model_policy import LIMITS, _formats

ROOT = Path(__file__).resolve().parent.parent
# test_model_policy's fixtures, used here too: iris data, and a fresh working folder per test (autouse).
iris = test_model_policy.iris
in_tmp = test_model_policy.in_tmp


def _refused(model, *needles: str, skops_too: bool = True) -> list[str]:
    """Every format is refused by load_untrusted, and the policy itself refuses the object.

    An earlier layer may refuse a file first (the allowlist no longer names numpy.memmap, the
    unpickler refuses special attributes, skops refuses types): the policy must refuse the same
    object too, naming the slot, in case a file ever gets it past those layers.
    """
    messages = []
    for data in _formats(model, skops_too).values():
        with pytest.raises((UnsafeModelError, FormatError)) as caught:
            load_untrusted(data, limits=LIMITS)
        messages.append(str(caught.value))
    with pytest.raises(UnsafeModelError) as direct:
        check_model_policy(model)
    for needle in needles:
        assert needle in str(direct.value), str(direct.value)
    return messages


def _lr(iris) -> LogisticRegression:
    X, y = iris
    return LogisticRegression(max_iter=500).fit(X, y)


# -- instance attributes that replace a class's methods ----------------------------------------------


@pytest.mark.parametrize("name", ["predict", "predict_proba", "transform", "_sk_visual_block_", "get_params"])
def test_instance_attribute_may_not_replace_a_method(iris, name):
    """Before: ``lr.__dict__["predict"] = DotProduct()`` loaded (a kernel is callable data), and
    ``predict`` then ran the sender's kernel on the rows, returning a 2x2 Gram matrix."""
    lr = _lr(iris)
    lr.__dict__[name] = DotProduct()
    _refused(lr, f"LogisticRegression.{name}", "DotProduct")


def test_instance_attribute_may_not_replace_a_property(iris):
    """Before: the pipeline diagram (``estimator_html_repr``) linked to the sender's site:
    ``_doc_link_template`` is a property, and an instance string replaced it."""
    lr = _lr(iris)
    lr.__dict__["_doc_link_template"] = "https://attacker.example/{estimator_name}"
    _refused(lr, "LogisticRegression._doc_link_template")


@pytest.mark.parametrize("name", ["__sklearn_clone__", "__array__", "__class__"])
def test_special_attributes_in_a_plain_state_are_refused(iris, name):
    """Before: the unpickler refused ``__x__`` keys only in a (dict, slots) state; a plain dict
    state put ``__sklearn_clone__`` (which ``clone`` calls) on the instance and the model loaded."""
    lr = _lr(iris)
    lr.__dict__[name] = DotProduct()
    _refused(lr, f"LogisticRegression.{name}")


def test_plain_class_defaults_may_still_be_overridden(iris):
    """A class default that is plain data (LassoLars.positive) set on the instance is ordinary."""
    from sklearn.linear_model import LassoLars

    X, y = iris
    check_model_policy(LassoLars(alpha=0.01).fit(X, y))


# -- code in slots whose rule accepted anything -------------------------------------------------------


def test_plain_data_slots_hold_no_code(iris):
    """Before: ``constant``, ``fill_value``, ``missing_values``... had a rule (``rule_data``) that
    replaced the generic no-code check: ``DummyClassifier(constant=numpy.memmap)`` loaded and
    predicted the class ``numpy.memmap`` for every row."""
    X, y = iris
    dummy = DummyClassifier(strategy="constant", constant=1).fit(X, y)
    dummy.constant = np.memmap
    _refused(dummy, "DummyClassifier.constant", "numpy.memmap")
    dummy.constant = [1, (2, np.memmap)]  # at any depth
    _refused(dummy, "DummyClassifier.constant", "numpy.memmap")


# -- objects the walk did not see -------------------------------------------------------------------


def test_objects_in_structured_array_fields_are_walked(iris):
    """Before: a record array's object field was not walked: numpy.memmap hid in ``hidden_``."""
    lr = _lr(iris)
    hidden = np.empty(2, dtype=[("a", "f8"), ("b", "O")])
    hidden[0] = (1.0, np.memmap)
    hidden[1] = (2.0, "text")
    lr.hidden_ = hidden
    _refused(lr, "hidden_", "numpy.memmap", skops_too=False)


def test_attributes_of_container_subclasses_are_walked(iris):
    """Before: an OrderedDict's own attributes (its pickled ``__dict__``, not its items) were not
    walked: numpy.memmap hid there. (A Bunch ignores a pickled ``__dict__``: nothing to hide.)"""
    lr = _lr(iris)
    ordered = collections.OrderedDict(a=1)
    ordered.__dict__["hook"] = np.memmap
    lr.extra_ = ordered
    _refused(lr, "OrderedDict.hook", "numpy.memmap", skops_too=False)


def test_skops_defaultdict_factory_is_walked():
    """Before: skops trusts ``collections.defaultdict`` by default and the walk saw only its
    items: ``vocabulary_ = defaultdict(numpy.float64, ...)`` loaded, and predicting an unseen word
    called the factory, which inserted the word into the model's vocabulary (3 -> 4 entries)."""
    model = Pipeline([("cv", CountVectorizer()), ("nb", MultinomialNB())]).fit(["alpha beta", "beta gamma"], [0, 1])
    vectorizer = model.steps[0][1]
    vectorizer.vocabulary_ = collections.defaultdict(np.float64, vectorizer.vocabulary_)
    data = skops.io.dumps(model)
    with pytest.raises(UnsafeModelError, match=r"default_factory"):
        load_untrusted(data, limits=LIMITS)


def _pyfunc_metric():
    """A Python-function distance whose function and keywords come from the file."""
    metric = DistanceMetric.get_metric("pyfunc", func=np.exp)
    metric.__setstate__((2.0, np.zeros(1), np.zeros((1, 1)), np.memmap, {"mode": "w+"}))
    return metric


def test_python_function_distance_in_a_ball_tree_is_refused(iris):
    """Before: a ball tree's metric lives in its compiled state, out of the walk's sight; a
    ``PyFuncDistance`` there loaded and ``predict`` called ``numpy.memmap(row, row, mode="w+")``
    (it failed only on "shape must be given if mode == 'w+'")."""
    X, y = iris
    knn = KNeighborsClassifier(algorithm="ball_tree").fit(X, y)
    state = list(knn._tree.__getstate__())
    state[11] = _pyfunc_metric()
    knn._tree.__setstate__(tuple(state))
    for message in _refused(knn, skops_too=False):
        assert "PyFuncDistance" in message, message
    with pytest.raises(UnsafeModelError, match=r"PyFuncDistance"):
        check_model_policy(knn)  # the policy refuses it too, should the allowlist ever list it


def test_python_function_distance_as_metric_is_refused(iris):
    X, y = iris
    knn = KNeighborsClassifier(algorithm="brute").fit(X, y)
    knn.metric = knn.effective_metric_ = _pyfunc_metric()
    for message in _refused(knn, skops_too=False):
        assert "PyFuncDistance" in message, message
    with pytest.raises(UnsafeModelError, match=r"KNeighborsClassifier\.(effective_)?metric.*PyFuncDistance"):
        check_model_policy(knn)


def test_compiled_objects_are_walked_through_their_state(iris):
    """KD/ball trees keep their metric in compiled state: the walk reaches it there."""
    X, y = iris
    knn = KNeighborsClassifier(algorithm="kd_tree").fit(X, y)
    check_model_policy(knn)  # the ordinary tree and its metric pass
    state = list(knn._tree.__getstate__())
    state[11] = _pyfunc_metric()
    knn._tree.__setstate__(tuple(state))
    with pytest.raises(UnsafeModelError, match=r"KDTree \(pickled state 11\) holds .*PyFuncDistance"):
        check_model_policy(knn)


# -- keyword arguments that write into the model -------------------------------------------------------


def test_ufunc_out_keyword_is_refused(iris):
    """Before: ``FunctionTransformer(numpy.negative, kw_args={"out": lr.coef_})`` loaded, and
    one ``predict`` wrote the negated input row into the model's coefficients (coef_[0, :2]
    went from [-0.42, 0.97] to [-5.1, -3.5]): the input rewrote state the checks had passed."""
    X, _y = iris
    lr = _lr(iris)
    ft = FunctionTransformer(np.negative, kw_args={"out": lr.coef_})
    ft.n_features_in_ = X.shape[1]
    _refused(Pipeline([("f", ft), ("lr", lr)]), "FunctionTransformer.kw_args")
    ft.kw_args = {"where": np.ones(4, dtype=bool)}
    _refused(Pipeline([("f", ft), ("lr", lr)]), "FunctionTransformer.kw_args")
    ft.kw_args = {"dtype": object}  # the object loop calls each input value's own method
    _refused(Pipeline([("f", ft), ("lr", lr)]), "FunctionTransformer.kw_args")


def test_held_functions_get_no_keyword_arguments_at_all(iris):
    """Deny by default: even harmless-looking ufunc options are refused (ordinary models pass none)."""
    X, y = iris
    model = Pipeline(
        [("f", FunctionTransformer(np.log1p, kw_args={"casting": "same_kind"})), ("lr", LogisticRegression())]
    )
    with pytest.raises(UnsafeModelError, match="kw_args"):
        check_model_policy(model.fit(X, y))
    check_model_policy(model.set_params(f__kw_args=None).fit(X, y))


def test_output_container_names_are_scikit_learns(iris):
    """Before: ``_sklearn_output_config`` held any string; ``set_output`` dispatches on it by name."""
    X, _y = iris
    scaler = StandardScaler().fit(X)
    scaler._sklearn_output_config = {"transform": "os"}
    _refused(Pipeline([("s", scaler), ("lr", _lr(iris))]), "_sklearn_output_config", "os")
    scaler.set_output(transform="pandas")
    check_model_policy(scaler)


# -- resources a model asks for at predict time -------------------------------------------------------


def test_thread_count_is_bounded(iris):
    """Before: ``KNeighborsClassifier(algorithm="kd_tree")`` with ``n_jobs=30000`` loaded; one
    ``predict`` on 150 rows took 33 s and left 21,908 threads alive in the process."""
    X, y = iris
    knn = KNeighborsClassifier(algorithm="kd_tree").fit(X, y)
    knn.n_jobs = 30_000
    _refused(knn, "KNeighborsClassifier.n_jobs", "30000")
    knn.n_jobs = -1
    check_model_policy(knn)


@pytest.mark.parametrize("dtype", ["(2000,2000)f8", "V100000", "U1000", "f8,f8", np.dtype([("a", "f8")])])
def test_dtype_parameters_are_plain_scalars(iris, dtype):
    """Before: ``OneHotEncoder(dtype="(2000,2000)f8")`` loaded; ``transform`` of 150 rows made
    each cell a 32 MB sub-array, taking 30 s and 9.3 GB before scipy refused the dtype."""
    from sklearn.preprocessing import OneHotEncoder

    X, y = iris
    model = Pipeline([("e", OneHotEncoder(handle_unknown="ignore")), ("lr", LogisticRegression())]).fit(X[:, :2], y)
    check_model_policy(model)
    model.steps[0][1].dtype = dtype
    _refused(model, "OneHotEncoder.dtype")


@pytest.mark.parametrize(
    "template",
    ["{feature_name:>100000000}", "{feature_name!r}", "{feature_name.__class__}", "{transformer_name[0]}", "{x}"],
)
def test_feature_name_template_is_only_the_two_names(iris, template):
    """Before: ``verbose_feature_names_out="{feature_name:>100000000}"`` (30 bytes) loaded, and
    showing the model's feature weights (``core.views.feature_weights``, which asks for feature
    names) took 15 s and 2.9 GB of memory; a wider field exhausts the server's memory."""
    from sklearn.compose import ColumnTransformer

    X, y = iris
    ct = ColumnTransformer([("s", StandardScaler(), [0, 1, 2, 3])], verbose_feature_names_out="{feature_name}_x")
    model = Pipeline([("ct", ct), ("lr", LogisticRegression(max_iter=500))]).fit(X, y)
    check_model_policy(model)  # the plain template is fine
    ct.verbose_feature_names_out = template
    _refused(model, "ColumnTransformer.verbose_feature_names_out")


@pytest.mark.parametrize(("name", "slot"), [("NMF", "max_iter"), ("LatentDirichletAllocation", "max_doc_update_iter")])
def test_transform_iterations_are_bounded(iris, name, slot):
    """Before: ``NMF`` with ``max_iter=10**11`` and ``tol=-1`` loaded; ``transform`` of one row
    ran the coordinate descent every time (200,000 iterations took 1.4 s: 10**11 take days)."""
    import sklearn.decomposition

    X, y = iris
    step = getattr(sklearn.decomposition, name)(n_components=2, max_iter=50)
    model = Pipeline([("d", step), ("lr", LogisticRegression())]).fit(X, y)
    check_model_policy(model)
    setattr(step, slot, 10**11)
    step.tol = step.mean_change_tol = -1.0
    _refused(model, f"{name}.{slot}", "100000000000")


# -- graphs that are small on disk and endless when followed ----------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from core.errors import FormatError, UnsafeModelError
    from core.safety import LoadLimits
    from core.safety.loader import _load_untrusted as load_untrusted
    data = open({path!r}, "rb").read()
    try:
        loaded = load_untrusted(data, limits=LoadLimits(max_bytes=10**8, max_decompressed_bytes=10**8, timeout_s=20))
    except UnsafeModelError as exc:
        print("refused:", exc)
        sys.exit(0)
    print("loaded", flush=True)
    started = time.monotonic()
    {use}
    print("used in", time.monotonic() - started)
    """
)


def _run_child(tmp_path: Path, data: bytes, use: str) -> subprocess.CompletedProcess:
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    code = _CHILD.format(root=str(ROOT), path=str(path), use=use)
    try:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the child still ran after 120 s (the attack works): {exc.stdout!r}")


def test_backtracking_token_pattern(tmp_path: Path):
    """Before: ``token_pattern="(a+)+$"`` (within the 1,000-character bound) loaded; predicting
    one document of 22 a's and "!" took 0.3 s, doubling per character, in C with the GIL held:
    40 characters freeze the whole server for a day."""
    model = Pipeline([("cv", CountVectorizer()), ("nb", MultinomialNB())]).fit(["alpha beta", "beta gamma"], [0, 1])
    check_model_policy(model)  # the default pattern is fine
    model.steps[0][1].token_pattern = r"(a+)+$"
    result = _run_child(tmp_path, pickle.dumps(model, protocol=5), "loaded.model.predict(['a' * 40 + '!'])")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refused:" in result.stdout and "CountVectorizer.token_pattern" in result.stdout, result.stdout


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"a*a*a*a*!", r"^(x|x)*y", r"num\d+"])
def test_column_selector_pattern_is_literal(iris, pattern):
    """A selector's pattern is matched against the scoring data's column names: no repetition."""
    from sklearn.compose import ColumnTransformer, make_column_selector

    X, y = iris
    ct = ColumnTransformer([("s", StandardScaler(), [0, 1, 2, 3])])
    model = Pipeline([("ct", ct), ("lr", LogisticRegression(max_iter=500))]).fit(X, y)
    ct.transformers_[0] = ("s", ct.transformers_[0][1], make_column_selector(pattern="^sepal|width$"))
    check_model_policy(model)
    ct.transformers_[0] = ("s", ct.transformers_[0][1], make_column_selector(pattern=pattern))
    _refused(model, "make_column_selector.pattern")


def test_shared_tuples_in_a_parameter(iris, tmp_path: Path):
    """Before: a 40-level tuple shared twice per level (a 1 kB file) loaded; the dashboard's
    pipeline diagram (``estimator_html_repr``, which reprs changed parameters) then needed 2**40
    steps in C, holding the GIL: the whole server froze (depth 22 took 3.7 s, each level doubles)."""
    lr = _lr(iris)
    shared: tuple = (1,)
    for _ in range(40):
        shared = (shared, shared)
    lr.class_weight = [shared]
    result = _run_child(
        tmp_path,
        pickle.dumps(lr, protocol=5),
        "from sklearn.utils import estimator_html_repr; estimator_html_repr(loaded.model)",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # The unpickler's own expansion bound now refuses the file first; the policy's bound is the
    # second line (for objects skops builds itself).
    assert "refused:" in result.stdout, result.stdout
    assert "path by path" in result.stdout or "reaches more than" in result.stdout, result.stdout


def test_shared_kernels_in_a_gaussian_process(iris, tmp_path: Path):
    """Before: ``Sum(k, k)`` nested 40 levels (one shared kernel per level) loaded; the first
    ``predict`` evaluated the base kernel 2**40 times."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, Sum

    X, y = iris
    gpr = GaussianProcessRegressor(optimizer=None).fit(X[:20], y[:20])
    kernel = RBF()
    for _ in range(40):
        kernel = Sum(kernel, kernel)
    gpr.kernel_ = kernel
    result = _run_child(
        tmp_path, pickle.dumps(gpr, protocol=5), "import numpy as np; loaded.model.predict(np.ones((1, 4)))"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # The unpickler's own expansion bound now refuses the file first; the policy's bound is the
    # second line (for objects skops builds itself).
    assert "refused:" in result.stdout, result.stdout
    assert "path by path" in result.stdout or "reaches more than" in result.stdout, result.stdout


def test_nesting_depth_is_bounded(iris):
    """A list nested 250 levels deep (a few kB) in a parameter: refused before anything recurses
    into it (``repr``, ``get_params``, the diagram); real models nest a few dozen levels."""
    lr = _lr(iris)
    nested: list = [1.0]
    for _ in range(250):
        nested = [nested]
    lr.class_weight = nested
    with pytest.raises(UnsafeModelError, match=r"levels deep|too deeply"):
        load_untrusted(pickle.dumps(lr, protocol=5), limits=LIMITS)


def test_ordinary_sharing_is_accepted(iris):
    """Real models share arrays and estimators a few times over: that stays accepted."""
    from sklearn.ensemble import StackingClassifier, VotingClassifier

    X, y = iris
    voting = VotingClassifier([("a", LogisticRegression(max_iter=500)), ("b", LogisticRegression(max_iter=500))])
    stack = StackingClassifier([("v", voting), ("lr", LogisticRegression(max_iter=500))]).fit(X, y)
    check_model_policy(stack)
