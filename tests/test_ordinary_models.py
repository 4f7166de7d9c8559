"""No false refusals: everyday scikit-learn models, as a user saves them, load through the safe loader.

Each model is fitted here on a few rows, saved as pickle, joblib (plain and compressed) and skops,
loaded with ``load_untrusted`` (the upload path) and must give exactly the original's outputs.
A model on this list that is refused is a bug in the allowlist, not in the model.
"""

from __future__ import annotations

import copy
import functools
import io
import pickle
from collections.abc import Callable
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.calibration import CalibratedClassifierCV
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.datasets import load_iris, make_regression
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    AdaBoostClassifier,
    BaggingClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    StackingClassifier,
    VotingClassifier,
)
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.model_selection import GridSearchCV
from sklearn.naive_bayes import GaussianNB, MultinomialNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier

from core.errors import FormatError, UnsafeModelError
from core.safety.loader import _load_untrusted as load_untrusted
from tests.test_safe_load import LIMITS, _refused

# Fitting on a few rows: short MLP runs do not converge, and SVC(probability=True) is deprecated in 1.9.
pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore:The `probability` parameter was deprecated:FutureWarning"),
]

FORMATS = ("pickle", "pickle-p2", "joblib", "joblib-z3", "skops")
OUTPUTS = ("predict", "predict_proba", "decision_function", "transform", "score_samples")

Built = tuple[Any, Any]  # (fitted model, rows to compare outputs on)


def _iris() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X.iloc[::2].reset_index(drop=True), y.to_numpy()[::2]  # 75 rows, 3 classes


def _regression() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_regression(n_samples=80, n_features=5, noise=3.0, random_state=0)
    return X, y - y.min() + 1.0  # positive targets, so log1p/expm1 round-trips


def _mixed_frame() -> tuple[pd.DataFrame, np.ndarray]:
    """Numbers and a categorical column, like a CSV a user uploads."""
    X, y = _iris()
    colour = np.where(X["petal length (cm)"] > 4.5, "red", np.where(X["sepal width (cm)"] > 3, "blue", "green"))
    return X.assign(colour=pd.Categorical(colour)), y


TEXTS = [
    "cheap pills buy now",
    "meeting moved to monday",
    "win money now",
    "lunch on friday?",
    "buy cheap watches",
    "project report attached",
    "free money offer",
    "see you at the meeting",
] * 4
TEXT_LABELS = np.array([1, 0, 1, 0, 1, 0, 1, 0] * 4)


def scaled_logistic_regression() -> Built:
    X, y = _iris()
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y), X


def column_transformer_one_hot_forest() -> Built:
    X, y = _mixed_frame()
    prep = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["colour"])], remainder="passthrough")
    model = Pipeline([("prep", prep), ("forest", RandomForestClassifier(n_estimators=8, random_state=0))])
    return model.fit(X, y), X


def imputer_gradient_boosting() -> Built:
    X, y = _iris()
    X = X.copy()
    X.iloc[::7, 1] = np.nan
    model = make_pipeline(SimpleImputer(), GradientBoostingClassifier(n_estimators=10, random_state=0))
    return model.fit(X, y), X


def svc_probability() -> Built:
    X, y = _iris()
    return SVC(probability=True, random_state=0).fit(X, y), X


def svc_precomputed_kernel() -> Built:
    X, y = _iris()
    gram = rbf_kernel(X.to_numpy())
    return SVC(kernel="precomputed").fit(gram, y), gram


def k_neighbours() -> Built:
    X, y = _iris()
    return KNeighborsClassifier(n_neighbors=5).fit(X, y), X


def voting() -> Built:
    X, y = _iris()
    members = [
        ("lr", LogisticRegression(max_iter=500)),
        ("tree", DecisionTreeClassifier(max_depth=3, random_state=0)),
        ("nb", GaussianNB()),
    ]
    return VotingClassifier(members, voting="soft").fit(X, y), X


def stacking() -> Built:
    X, y = _iris()
    members = [("forest", RandomForestClassifier(n_estimators=5, random_state=0)), ("svc", SVC(random_state=0))]
    model = StackingClassifier(members, final_estimator=LogisticRegression(max_iter=500), cv=3)
    return model.fit(X, y), X


def _grid() -> GridSearchCV:
    X, y = _iris()
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    return GridSearchCV(pipe, {"logisticregression__C": [0.1, 1.0, 10.0]}, cv=3).fit(X, y)


def grid_search_best_estimator() -> Built:
    return _grid().best_estimator_, _iris()[0]


def grid_search_fitted() -> Built:
    return _grid(), _iris()[0]


def ridge() -> Built:
    X, y = _regression()
    return Ridge(alpha=0.5).fit(X, y), X


def extra_trees_regressor() -> Built:
    X, y = _regression()
    return ExtraTreesRegressor(n_estimators=8, random_state=0).fit(X, y), X


def _ufunc_pipeline(func: Callable) -> Built:
    X, y = _iris()
    model = Pipeline([("f", FunctionTransformer(func)), ("lr", LogisticRegression(max_iter=500))])
    return model.fit(X, y), X


def function_transformer_log1p() -> Built:
    return _ufunc_pipeline(np.log1p)


def function_transformer_sqrt() -> Built:
    return _ufunc_pipeline(np.sqrt)


def mlp_adam() -> Built:
    X, y = _iris()
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0)
    return make_pipeline(StandardScaler(), model).fit(X, y), X


def mlp_sgd() -> Built:
    X, y = _iris()
    model = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", max_iter=50, random_state=0)
    return make_pipeline(StandardScaler(), model).fit(X, y), X


def mlp_regressor() -> Built:
    X, y = _regression()
    return MLPRegressor(hidden_layer_sizes=(8,), max_iter=50, random_state=0).fit(X, y), X


def calibrated_sigmoid() -> Built:
    X, y = _iris()
    return CalibratedClassifierCV(LogisticRegression(max_iter=500), method="sigmoid", cv=3).fit(X, y), X


def calibrated_isotonic() -> Built:
    X, y = _iris()
    return CalibratedClassifierCV(GaussianNB(), method="isotonic", cv=3).fit(X, y), X


def calibrated_temperature() -> Built:
    X, y = _iris()
    return CalibratedClassifierCV(LogisticRegression(max_iter=500), method="temperature", cv=3).fit(X, y), X


def select_k_best() -> Built:
    X, y = _iris()
    return make_pipeline(SelectKBest(f_classif, k=2), LogisticRegression(max_iter=500)).fit(X, y), X


def hist_gb_classifier_categorical_dtype() -> Built:
    X, y = _mixed_frame()
    return HistGradientBoostingClassifier(max_iter=10, categorical_features="from_dtype").fit(X, y), X


def hist_gb_classifier_categorical_mask() -> Built:
    X, y = _mixed_frame()
    X = X.assign(colour=X["colour"].cat.codes.astype(float))
    mask = [False, False, False, False, True]
    return HistGradientBoostingClassifier(max_iter=10, categorical_features=mask).fit(X.to_numpy(), y), X.to_numpy()


def hist_gb_regressor_categorical_dtype() -> Built:
    X, _ = _mixed_frame()
    target = X["sepal length (cm)"].to_numpy() + (X["colour"] == "red") * 2.0
    X = X.drop(columns="sepal length (cm)")
    return HistGradientBoostingRegressor(max_iter=10, categorical_features="from_dtype").fit(X, target), X


def hist_gb_regressor_categorical_mask() -> Built:
    X, y = _regression()
    X = X.copy()
    X[:, 0] = (X[:, 0] > 0).astype(float) + (X[:, 0] > 1)
    mask = [True, False, False, False, False]
    return HistGradientBoostingRegressor(max_iter=10, categorical_features=mask).fit(X, y), X


def hist_gb_regressor() -> Built:
    X, y = _regression()
    return HistGradientBoostingRegressor(max_iter=10).fit(X, y), X


def transformed_target_log1p() -> Built:
    X, y = _regression()
    model = TransformedTargetRegressor(regressor=LinearRegression(), func=np.log1p, inverse_func=np.expm1)
    return model.fit(X, y), X


def count_vectorizer_naive_bayes() -> Built:
    return make_pipeline(CountVectorizer(), MultinomialNB()).fit(TEXTS, TEXT_LABELS), TEXTS


def tfidf_logistic_regression() -> Built:
    model = make_pipeline(TfidfVectorizer(input="content", ngram_range=(1, 2)), LogisticRegression())
    return model.fit(TEXTS, TEXT_LABELS), TEXTS


def pca_logistic_regression() -> Built:
    X, y = _iris()
    return make_pipeline(PCA(n_components=2), LogisticRegression(max_iter=500)).fit(X, y), X


def isolation_forest() -> Built:
    X, _ = _iris()
    return IsolationForest(n_estimators=10, random_state=0).fit(X), X


def k_means() -> Built:
    X, _ = _iris()
    return KMeans(n_clusters=3, n_init=2, random_state=0).fit(X), X


def bagging() -> Built:
    X, y = _iris()
    return BaggingClassifier(n_estimators=5, random_state=0).fit(X, y), X


def ada_boost() -> Built:
    X, y = _iris()
    return AdaBoostClassifier(n_estimators=10, random_state=0).fit(X, y), X


def svr() -> Built:
    X, y = _regression()
    return SVR(C=10.0).fit(X, y), X


def k_neighbours_regressor() -> Built:
    X, y = _regression()
    return KNeighborsRegressor(n_neighbors=4).fit(X, y), X


def lasso() -> Built:
    X, y = _regression()
    return Lasso(alpha=0.1).fit(X, y), X


def elastic_net() -> Built:
    X, y = _regression()
    return ElasticNet(alpha=0.1, l1_ratio=0.5).fit(X, y), X


def linear_regression() -> Built:
    X, y = _regression()
    return LinearRegression().fit(X, y), X


CORPUS: dict[str, Callable[[], Built]] = {
    f.__name__: f
    for f in (
        scaled_logistic_regression,
        column_transformer_one_hot_forest,
        imputer_gradient_boosting,
        svc_probability,
        svc_precomputed_kernel,
        k_neighbours,
        voting,
        stacking,
        grid_search_best_estimator,
        grid_search_fitted,
        ridge,
        extra_trees_regressor,
        function_transformer_log1p,
        function_transformer_sqrt,
        mlp_adam,
        mlp_sgd,
        mlp_regressor,
        calibrated_sigmoid,
        calibrated_isotonic,
        calibrated_temperature,
        select_k_best,
        hist_gb_classifier_categorical_dtype,
        hist_gb_classifier_categorical_mask,
        hist_gb_regressor_categorical_dtype,
        hist_gb_regressor_categorical_mask,
        hist_gb_regressor,
        transformed_target_log1p,
        count_vectorizer_naive_bayes,
        tfidf_logistic_regression,
        pca_logistic_regression,
        isolation_forest,
        k_means,
        bagging,
        ada_boost,
        svr,
        k_neighbours_regressor,
        lasso,
        elastic_net,
        linear_regression,
    )
}


def _saved(model: Any, how: str) -> bytes:
    """The bytes a user would upload, saved the way they would save them."""
    if how == "pickle":
        return pickle.dumps(model)
    if how == "pickle-p2":
        return pickle.dumps(model, protocol=2)
    if how.startswith("joblib"):
        buffer = io.BytesIO()
        joblib.dump(model, buffer, compress=3 if how.endswith("z3") else 0)
        return buffer.getvalue()
    return skops.io.dumps(model)


def _outputs(model: Any, rows: Any) -> dict[str, Any]:
    """Every output the model offers on ``rows``, by method name."""
    return {name: getattr(model, name)(rows) for name in OUTPUTS if hasattr(model, name)}


@pytest.fixture(scope="module", params=list(CORPUS))
def fitted(request: pytest.FixtureRequest) -> tuple[str, Any, Any, dict[str, Any]]:
    name = request.param
    model, rows = CORPUS[name]()
    return name, model, rows, _outputs(model, rows)


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 24


@pytest.mark.parametrize("how", FORMATS)
def test_ordinary_model_loads_and_gives_the_same_outputs(fitted, how: str) -> None:
    name, model, rows, expected = fitted
    assert "predict" in expected, name
    loaded = load_untrusted(_saved(model, how), limits=LIMITS)
    assert type(loaded.model) is type(model)
    assert loaded.detected.format == how.split("-")[0]
    got = _outputs(loaded.model, rows)
    assert got.keys() == expected.keys()
    for method, want in expected.items():
        assert np.array_equal(got[method], want), f"{name} {how}: {method} differs after loading"


# -- what the corpus needed opens no holes -------------------------------------------------------
#
# Each hostile file below is built here, from a real fitted pipeline whose FunctionTransformer
# (or another attribute) is swapped for what an attacker would put there.


class Reduce:
    """Pickles as ``func(*args)`` and, given a state, a BUILD of that state on the result."""

    def __init__(self, func: Any, *args: Any, state: Any = None) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


@functools.lru_cache(maxsize=1)
def _fitted_log1p_pipeline() -> Pipeline:
    return function_transformer_log1p()[0]


def _hostile_pipeline(func: Any, kw_args: Any = None) -> Pipeline:
    """A fitted, ordinary-looking pipeline whose FunctionTransformer holds ``func``."""
    model = copy.deepcopy(_fitted_log1p_pipeline())
    model.steps[0][1].func = func
    model.steps[0][1].kw_args = kw_args
    return model


@pytest.mark.parametrize("how", ["pickle", "pickle-p2", "joblib", "skops"])
def test_memmap_may_not_be_held_as_a_callable(tmp_path, how: str) -> None:
    # np.memmap(path, mode="w+") creates or truncates a file: held as FunctionTransformer.func, a
    # file's transform would write wherever its input names.
    model = _hostile_pipeline(np.memmap, {"mode": "w+", "shape": (4,), "dtype": "uint8"})
    live = tmp_path / "written-by-the-original"
    model.steps[0][1].transform(str(live))  # the payload works on the object as built...
    assert live.exists()
    _refused(_saved(model, how), "numpy.memmap")  # ... and its file is refused


def test_a_joblib_array_saved_from_a_memmap_still_loads(tmp_path) -> None:
    # joblib records numpy.memmap as the array's class when the array was a memmap; read as a plain array.
    model, rows = scaled_logistic_regression()
    path = tmp_path / "coef.npy"
    mapped = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=model[-1].coef_.shape)
    mapped[:] = model[-1].coef_
    expected = model.predict(rows)
    model[-1].coef_ = mapped
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    assert b"memmap" in buffer.getvalue()
    loaded = load_untrusted(buffer.getvalue(), limits=LIMITS).model
    assert type(loaded[-1].coef_) is np.ndarray
    assert np.array_equal(loaded.predict(rows), expected)


@pytest.mark.parametrize("how", ["pickle", "pickle-p2", "joblib", "skops"])
@pytest.mark.parametrize("held", [bytes, bytearray, slice, set])
def test_rebuilders_may_not_be_held_as_callables(held: Any, how: str) -> None:
    # bytes(n) allocates n bytes: the pickle machinery may call these, a model may not keep them.
    _refused(_saved(_hostile_pipeline(held), how), f"builtins.{held.__name__}")


@pytest.mark.parametrize("how", ["pickle", "joblib", "skops"])
def test_rebuilding_functions_may_not_be_held(how: str) -> None:
    import copyreg

    _refused(_saved(_hostile_pipeline(copyreg._reconstructor), how), "copyreg._reconstructor")


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_ufuncs_may_be_named_but_not_called_while_loading(protocol: int) -> None:
    data = pickle.dumps(Reduce(np.exp, np.float64(800.0)), protocol=protocol)
    _refused(data, "numpy.exp may not be called")


@pytest.mark.parametrize("how", ["pickle", "joblib", "skops"])
def test_a_ufunc_outside_the_short_list_is_refused(how: str) -> None:
    # skops trusts every numpy ufunc by default; ModelShelf's list is shorter, for every format.
    _refused(_saved(_hostile_pipeline(np.frexp), how), "numpy.frexp")


@pytest.mark.parametrize("how", ["pickle", "joblib", "skops"])
@pytest.mark.parametrize(
    "kw_args",
    [{"out": np.zeros((75, 4))}, {"casting": "unsafe", "dtype": np.int8}, {"where": np.zeros((75, 4), bool)}],
    ids=["out", "casting", "where"],
)
def test_a_held_ufunc_gets_no_keyword_arguments(kw_args: dict, how: str) -> None:
    # np.exp(X, out=an_array_the_file_shares_with_an_index) would rewrite that index after it was checked.
    _refused(_saved(_hostile_pipeline(np.exp, kw_args), how), "FunctionTransformer.kw_args", "keyword arguments")


@pytest.mark.parametrize("how", ["pickle", "joblib", "skops"])
def test_a_ufunc_only_where_scikit_learn_calls_it_with_data(how: str) -> None:
    X, y = _iris()
    model = KNeighborsClassifier(algorithm="brute").fit(X, y)
    model.metric = model.effective_metric_ = np.log1p  # metric(x, y) would write into y: log1p's out
    _refused(_saved(model, how), "numpy.log1p", "KNeighborsClassifier")


def _check_array_partial(**kwargs: Any) -> Any:
    from functools import partial

    from sklearn.utils.validation import check_array

    return partial(check_array, **kwargs)


@pytest.mark.parametrize("how", ["pickle", "pickle-p2", "joblib", "skops"])
@pytest.mark.parametrize(
    "payload",
    [
        "partial(bytes, 10**10)",
        "partial(numpy.exp)",
        "partial(check_array, copy=True, estimator=...)",
        "partial(check_array, X)",
        "partial(check_array, dtype=object)",
        "partial(check_array) with a __dict__",
        "partial(check_array, accept_sparse=True)",
    ],
)
def test_partial_only_around_check_array_as_scikit_learn_writes_it(payload: str, how: str) -> None:
    from functools import partial

    from sklearn.utils.validation import check_array

    X, _ = _iris()
    made = {
        "partial(bytes, 10**10)": lambda: partial(bytes, 10**10),
        "partial(numpy.exp)": lambda: partial(np.exp),
        "partial(check_array, copy=True, estimator=...)": lambda: _check_array_partial(
            dtype=[np.float64], ensure_all_finite=False, copy=True, estimator=LogisticRegression()
        ),
        "partial(check_array, X)": lambda: partial(check_array, X.to_numpy()),
        "partial(check_array, dtype=object)": lambda: _check_array_partial(dtype=object, ensure_all_finite=False),
        "partial(check_array, accept_sparse=True)": lambda: _check_array_partial(
            dtype=[np.float64], accept_sparse=True
        ),
    }
    if payload == "partial(check_array) with a __dict__":
        func = _check_array_partial(dtype=[np.float64], ensure_all_finite=False)
        func.note = "extra"
    else:
        func = made[payload]()
    data = _saved(_hostile_pipeline(func), how)
    if how == "skops" and payload in ("partial(bytes, 10**10)", "partial(check_array, dtype=object)"):
        _refused(data, "is not allowed: the skops file")  # skops is refused the type first
    else:
        _refused(data, "functools.partial")


def test_partial_state_may_not_swap_the_function() -> None:
    # partial(check_array) is fine; its BUILD state then names another function.
    from functools import partial

    from sklearn.utils.validation import check_array

    swapped = Reduce(partial, check_array, state=(bytes, (10**10,), None, None))
    _refused(pickle.dumps(_hostile_pipeline(swapped), protocol=2), "functools.partial")
    _refused(pickle.dumps(Reduce(partial, bytes), protocol=4), "functools.partial")


def test_partial_may_not_be_made_without_its_constructor() -> None:
    # NEWOBJ on functools.partial with no arguments, then a BUILD: the state goes through the same check.
    data = b"\x80\x04cfunctools\npartial\n)\x81cbuiltins\nbytes\n\x8a\x05\x00\xe4\x0bT\x02\x85N\x86\x8c\x00\x94N\x94b."
    _refused(data, "functools.partial")


def test_masked_array_rebuilder_checks_its_arguments() -> None:
    from numpy.ma.core import _mareconstruct

    huge = pickle.dumps(Reduce(_mareconstruct, np.ma.MaskedArray, np.ndarray, (10**12,), "b"), protocol=4)
    _refused(huge, "_mareconstruct")
    other = pickle.dumps(Reduce(_mareconstruct, np.ma.MaskedArray, np.memmap, (0,), "b"), protocol=4)
    _refused(other, "memmap")


def test_masked_array_state_must_match_its_shape() -> None:
    from numpy.ma.core import _mareconstruct

    good = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    version, shape, dtype, fortran, raw, mask, fill = good.__reduce__()[2]
    args = (np.ma.MaskedArray, np.ndarray, (0,), "b")
    assert np.ma.allequal(load_pickled_array(Reduce(_mareconstruct, *args, state=good.__reduce__()[2])), good)
    for bad in [
        (version, (3,), dtype, fortran, raw, b"\x00", fill),  # mask shorter than the data
        (version, (4,), dtype, fortran, raw, mask, fill),  # data shorter than the shape
        (version, shape, dtype, fortran, raw, mask, Reduce(bytes, 3)),  # a fill value that is not a scalar
    ]:
        with pytest.raises((UnsafeModelError, FormatError)):
            load_pickled_array(Reduce(_mareconstruct, *args, state=bad))


def load_pickled_array(payload: Any) -> Any:
    """Load ``payload`` as a fitted model's attribute and give it back."""
    model, _ = linear_regression()
    model.extra_ = payload
    return load_untrusted(pickle.dumps(model, protocol=4), limits=LIMITS).model.extra_


def test_precomputed_kernel_support_indices_stay_inside_the_kernel() -> None:
    # libsvm reads row[support_[i]] of each kernel row given to predict: an index past the
    # training kernel's width would read outside the caller's array.
    model, _ = svc_precomputed_kernel()
    model.support_ = model.support_.copy()
    model.support_[0] = model.shape_fit_[0] + 10_000
    _refused(pickle.dumps(model), "support vector model", "outside the training kernel")


def test_categorical_split_must_be_categorical_for_the_binner() -> None:
    # predict maps a categorical split's feature through the binner's mask; a split on a feature the
    # binner does not know as categorical would read a bitset that does not exist.
    model, _ = hist_gb_classifier_categorical_dtype()
    model._bin_mapper.is_categorical_ = np.zeros_like(model._bin_mapper.is_categorical_)
    _refused(pickle.dumps(model), "boosted")  # the binner and the trees disagree: refused before predict


@pytest.mark.parametrize("how", ["pickle", "joblib", "skops"])
@pytest.mark.parametrize(
    ("func", "expected"),
    [
        ("check_array", "FunctionTransformer.func"),
        ("f_classif", "FunctionTransformer.func"),
    ],
)
def test_allowlisted_functions_only_where_scikit_learn_keeps_them(func: str, expected: str, how: str) -> None:
    # On the list for one place (inside HistGradientBoosting's partial, SelectKBest.score_func), not
    # as any other callable, where their keyword arguments would come from the file.
    from sklearn.utils.validation import check_array

    held = {"check_array": check_array, "f_classif": f_classif}[func]
    _refused(_saved(_hostile_pipeline(held, {"copy": True}), how), func, expected)
