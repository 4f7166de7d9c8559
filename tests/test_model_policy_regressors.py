"""Regressors from strangers: every everyday regressor loads, and each regressor-only slot is attacked.

The corpus (13 regressors on scikit-learn's diabetes data, as pickle, joblib and skops) must load
through the safe loader and the sandboxed worker with the original's predictions, bit for bit.
Then, attack first: each hostile model is built here from a real fitted regressor, shown to run
the sender's code, crash or misbehave when loaded the ordinary way (where that is safe to show,
in a child process when it may crash), and must be refused with one line naming what is wrong.
"""

from __future__ import annotations

import copy
import functools
import io
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import skops.io
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.gaussian_process.kernels import RBF
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeRegressor

from core.errors import UnsafeModelError
from core.safety import LoadLimits, WorkerPool, load_in_worker
from core.safety.loader import _load_untrusted as load_untrusted
from core.safety.policy import check_model_policy
from tests.floats import same

ROOT = Path(__file__).resolve().parent.parent
LIMITS = LoadLimits(max_bytes=100_000_000, max_decompressed_bytes=100_000_000, timeout_s=60)


@pytest.fixture(scope="module")
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    return load_diabetes(return_X_y=True)


def _corpus() -> dict[str, Callable[[], Any]]:
    return {
        "linear_regression": LinearRegression,
        "ridge": lambda: Ridge(alpha=0.5),
        "lasso": lambda: Lasso(alpha=0.05),
        "elastic_net": lambda: ElasticNet(alpha=0.01, l1_ratio=0.5),
        "svr": lambda: SVR(C=50.0),
        "knn": lambda: KNeighborsRegressor(n_neighbors=5),
        "random_forest": lambda: RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0),
        "extra_trees": lambda: ExtraTreesRegressor(n_estimators=10, max_depth=6, random_state=0),
        "gradient_boosting": lambda: GradientBoostingRegressor(n_estimators=20, random_state=0),
        "hist_gradient_boosting": lambda: HistGradientBoostingRegressor(max_iter=20, random_state=0),
        "decision_tree": lambda: DecisionTreeRegressor(max_depth=6, random_state=0),
        "scaled_ridge": lambda: make_pipeline(StandardScaler(), Ridge()),
        "log_target_ridge": lambda: TransformedTargetRegressor(regressor=Ridge(), func=np.log1p, inverse_func=np.expm1),
    }


CORPUS = _corpus()


def _dumped(model: Any, fmt: str) -> bytes:
    if fmt == "pickle":
        return pickle.dumps(model, protocol=5)
    if fmt == "skops":
        return skops.io.dumps(model)
    handle = io.BytesIO()
    joblib.dump(model, handle, compress=3 if fmt == "joblib-z3" else 0)
    return handle.getvalue()


@pytest.fixture(scope="module")
def fitted(diabetes) -> dict[str, Any]:
    X, y = diabetes
    return {name: make().fit(X, y) for name, make in CORPUS.items()}


@pytest.fixture(scope="module")
def pool():
    made = WorkerPool(size=1)
    yield made
    made.close()


@pytest.mark.parametrize("fmt", ["pickle", "joblib", "joblib-z3", "skops"])
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_regressor_loads_with_the_same_predictions(fitted, diabetes, name: str, fmt: str) -> None:
    model = fitted[name]
    loaded = load_untrusted(_dumped(model, fmt), limits=LIMITS).model
    assert type(loaded) is type(model)
    assert np.array_equal(loaded.predict(diabetes[0]), model.predict(diabetes[0]))


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_regressor_loads_in_the_worker(fitted, diabetes, pool, name: str) -> None:
    model = fitted[name]
    held = load_in_worker(_dumped(model, "joblib"), LIMITS, pool=pool)
    assert held.n_features_in_ == 10
    assert not hasattr(held, "predict_proba")
    assert same(held.predict(diabetes[0]), model.predict(diabetes[0]))  # the worker's one BLAS thread


# -- helpers for the attacks -----------------------------------------------------------------------


def _refused(model: Any, *needles: str, formats: tuple[str, ...] = ("pickle", "joblib", "skops")) -> str:
    """Refused with one line in every format that can carry the model, naming ``needles``."""
    message = ""
    carried = 0
    for fmt in formats:
        try:
            data = _dumped(model, fmt)
        except Exception:  # noqa: BLE001 - skops cannot write every hostile object: nothing to load
            continue
        carried += 1
        with pytest.raises(UnsafeModelError) as caught:
            load_untrusted(data, limits=LIMITS)
        message = str(caught.value)
        assert "\n" not in message
        for needle in needles:
            assert needle in message, (fmt, message)
    assert carried, "no format could carry the model"
    return message


#: In a child process: load argv[1] the ordinary way (joblib.load, no checks) and predict 3 rows.
PLAIN_CHILD = """
import sys, joblib, numpy as np
from sklearn.datasets import load_diabetes
model = joblib.load(sys.argv[1])
print("PREDICTED", model.predict(load_diabetes(return_X_y=True)[0][:3]).tolist(), flush=True)
"""


def _plain_load_in_child(tmp_path: Path, model: Any) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "plain.joblib"
    joblib.dump(model, path)
    return subprocess.run(
        [sys.executable, "-c", PLAIN_CHILD, str(path)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )


# -- TransformedTargetRegressor: func and inverse_func -----------------------------------------------


def _ttr(diabetes, **changes: Any) -> TransformedTargetRegressor:
    X, y = diabetes
    model = TransformedTargetRegressor(regressor=Ridge(), func=np.log1p, inverse_func=np.expm1).fit(X, y)
    for key, value in changes.items():
        setattr(model, key, value)
        setattr(model.transformer_, key, value)
    return model


def test_a_transformed_target_function_runs_the_senders_code_without_the_check(tmp_path: Path, diabetes) -> None:
    """shutil.copytree(secrets, stolen, <prediction>): one row's prediction copies a folder, unchecked."""
    secrets, stolen = tmp_path / "secrets", tmp_path / "stolen"
    secrets.mkdir()
    (secrets / "key.txt").write_text("the server's secret")
    model = _ttr(diabetes, inverse_func=functools.partial(shutil.copytree, str(secrets), str(stolen)))
    with pytest.raises(AttributeError):  # the copy is made first; scikit-learn then chokes on its result
        model.predict(diabetes[0][:1])
    assert (stolen / "key.txt").read_text() == "the server's secret"
    shutil.rmtree(stolen)
    _refused(model, "shutil.copytree")  # by the file's allowlist, before anything is built
    with pytest.raises(UnsafeModelError, match=r"TransformedTargetRegressor\.inverse_func holds a partial"):
        check_model_policy(model)  # and by the policy, should a file ever get it past the allowlist
    assert not stolen.exists()


@pytest.mark.parametrize(
    "func",
    [
        os.system,
        eval,
        functools.partial(os.system, "true"),
        functools.partial(eval, "1"),
        functools.partial(np.log1p, out=None),
        np.memmap,
        np.add,
        print,
    ],
    ids=["os.system", "eval", "partial-os.system", "partial-eval", "partial-log1p", "memmap", "add", "print"],
)
@pytest.mark.parametrize("slot", ["func", "inverse_func"])
def test_transformed_target_functions_outside_the_pure_list_are_refused(diabetes, func: Any, slot: str) -> None:
    model = _ttr(diabetes, **{slot: func})
    _refused(model)
    with pytest.raises(UnsafeModelError, match=rf"TransformedTargetRegressor\.{slot} holds"):
        check_model_policy(model)
    # the fitted FunctionTransformer inside carries the function too: checked on its own
    inner = _ttr(diabetes)
    setattr(inner.transformer_, slot, func)
    with pytest.raises(UnsafeModelError, match=rf"FunctionTransformer\.{slot} holds"):
        check_model_policy(inner)


def test_transformed_target_keyword_arguments_are_refused(diabetes) -> None:
    """``inv_kw_args={"out": coef_}`` would make each prediction overwrite the model's own array."""
    model = _ttr(diabetes)
    model.transformer_.inv_kw_args = {"out": model.regressor_.coef_}
    _refused(model, "FunctionTransformer.inv_kw_args")


# -- SVR: callable kernels -------------------------------------------------------------------------------


def _svr_with_callable_kernel(diabetes) -> SVR:
    """An SVR fitted with a Gaussian-process kernel object (callable data on the allowlist), made to
    look like an ordinary SVR (n_features_in_, support vectors) with support_ far past the rows."""
    X, y = diabetes
    model = SVR(kernel=RBF()).fit(X[:50], y[:50])
    model.n_features_in_ = 10
    model.support_vectors_ = np.zeros((model.support_.shape[0], 10))
    model.support_ = np.full_like(model.support_, 10**7)
    return model


def test_an_svr_with_a_callable_kernel_crashes_without_the_check(tmp_path: Path, diabetes) -> None:
    run = _plain_load_in_child(tmp_path, _svr_with_callable_kernel(diabetes))
    assert run.returncode != 0 and "PREDICTED" not in run.stdout, run.stdout + run.stderr[-500:]


def test_an_svr_with_a_callable_kernel_is_refused(diabetes) -> None:
    _refused(_svr_with_callable_kernel(diabetes), "SVR.kernel", "never a callable kernel")
    plain = SVR(kernel=RBF()).fit(*[a[:50] for a in diabetes])  # even one scikit-learn fitted itself
    _refused(plain, "SVR.kernel")


@pytest.mark.parametrize("kernel", ["euclidean", "chi2", len])
def test_an_svr_kernel_is_one_of_libsvms_names(diabetes, kernel: Any) -> None:
    model = SVR().fit(*[a[:50] for a in diabetes])
    model.kernel = kernel
    _refused(model)  # len: by the file's allowlist already
    with pytest.raises(UnsafeModelError, match=r"SVR\.kernel holds"):
        check_model_policy(model)


# -- KNeighborsRegressor: callable metrics and the Minkowski power ---------------------------------------


@pytest.mark.parametrize("algorithm", ["brute", "ball_tree"])
def test_a_neighbours_regressor_with_a_callable_metric_is_refused(diabetes, algorithm: str) -> None:
    X, y = diabetes
    model = KNeighborsRegressor(metric=RBF(), algorithm="brute").fit(X, y)  # loaded before this check
    _refused(model, "KNeighborsRegressor.metric", "never a callable metric")
    functional = KNeighborsRegressor(algorithm=algorithm).fit(X, y)
    functional.metric = functional.effective_metric_ = eval
    _refused(functional, "eval")


def _knn_with_power(diabetes, algorithm: str, p: float) -> KNeighborsRegressor:
    X, y = diabetes
    model = KNeighborsRegressor(algorithm=algorithm, p=3).fit(X, y)
    model.p = p
    model.effective_metric_params_ = {"p": p, "w": None}
    if model._tree is not None:
        state = list(model._tree.__getstate__())
        metric_state = list(state[11].__getstate__())
        metric_state[0] = p
        state[11].__setstate__(tuple(metric_state))
    return model


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree", "ball_tree"])
@pytest.mark.parametrize("p", [0.0, -1.0, float("nan"), float("inf")], ids=["0", "-1", "nan", "inf"])
def test_a_neighbours_regressor_power_out_of_bounds_is_refused(diabetes, algorithm: str, p: float) -> None:
    model = _knn_with_power(diabetes, algorithm, p)
    _refused(model, "neighbours model", "power above 0")


def test_a_nan_power_makes_every_prediction_the_same_without_the_check(diabetes) -> None:
    X = diabetes[0][:20]
    honest = _knn_with_power(diabetes, "kd_tree", 3.0).predict(X)
    broken = _knn_with_power(diabetes, "kd_tree", float("nan")).predict(X)
    assert np.unique(honest).size > 10 and np.unique(broken).size == 1


def test_a_tree_search_with_a_power_below_one_is_refused(diabetes) -> None:
    """scikit-learn builds no KD/ball tree for 0 < p < 1 (not a distance: the tree's pruning is wrong)."""
    _refused(_knn_with_power(diabetes, "kd_tree", 0.5), "below 1")


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
def test_ordinary_neighbours_powers_load(diabetes, algorithm: str) -> None:
    X, y = diabetes
    for p in (1, 2, 3, np.inf):
        model = KNeighborsRegressor(algorithm=algorithm, p=p).fit(X, y)
        assert np.array_equal(
            load_untrusted(_dumped(model, "joblib"), limits=LIMITS).model.predict(X), model.predict(X)
        )
    fractional = KNeighborsRegressor(algorithm="brute", p=0.5).fit(X, y)
    assert np.array_equal(
        load_untrusted(_dumped(fractional, "joblib"), limits=LIMITS).model.predict(X), fractional.predict(X)
    )


def test_neighbours_regressor_callable_weights_are_refused(diabetes) -> None:
    model = KNeighborsRegressor().fit(*diabetes)
    model.weights = np.exp
    _refused(model, "KNeighborsRegressor.weights")


# -- GradientBoostingRegressor: estimators_ and init_ ----------------------------------------------------


@pytest.fixture(scope="module")
def gbr(diabetes) -> GradientBoostingRegressor:
    return GradientBoostingRegressor(n_estimators=4, max_depth=2, random_state=0).fit(*diabetes)


def _edited(model: Any, edit: Callable[[Any], None]) -> Any:
    crafted = copy.deepcopy(model)
    edit(crafted)
    return crafted


def _cells(m: Any, column: Any) -> None:
    m.estimators_ = np.concatenate([m.estimators_, m.estimators_], axis=1) if column == "wide" else m.estimators_
    if column == "flat":
        m.estimators_ = m.estimators_.ravel()


def _cell(m: Any, value: Any) -> None:
    m.estimators_ = m.estimators_.copy()
    m.estimators_[1, 0] = value


def _wider_cell(m: Any) -> None:
    cell = DecisionTreeRegressor(max_depth=2).fit(np.random.default_rng(0).random((30, 12)), np.arange(30.0))
    _cell(m, cell)


GBR_CASES = {
    "two-trees-per-stage": (lambda m: _cells(m, "wide"), "tree(s) per stage, where 1 are expected"),
    "flat-grid": (lambda m: _cells(m, "flat"), "not a 2-D array of trees"),
    "classifier-cell": (
        lambda m: _cell(m, DecisionTreeClassifier(max_depth=1).fit(np.eye(10), [0, 1] * 5)),
        "not a DecisionTreeRegressor",
    ),
    "extra-tree-cell": (
        lambda m: _cell(m, ExtraTreeRegressor(max_depth=1).fit(np.eye(10), np.arange(10.0))),
        "not a DecisionTreeRegressor",
    ),
    "wider-cell": (_wider_cell, "a tree expects 12 features, the model 10"),
    "stage-count": (lambda m: setattr(m, "n_estimators_", 99), "does not match n_estimators_"),
    "init-no-output": (
        lambda m: (setattr(m.init_, "n_outputs_", 0), setattr(m.init_, "constant_", np.empty((1, 0)))),
        "does not predict one number per row",
    ),
    "init-two-outputs": (
        lambda m: (setattr(m.init_, "n_outputs_", 2), setattr(m.init_, "constant_", np.ones((1, 2)))),
        "does not predict one number per row",
    ),
    "init-text": (lambda m: setattr(m.init_, "constant_", np.array([["1"]])), "does not predict one number"),
    "init-other-estimator": (lambda m: setattr(m, "init_", LinearRegression()), "its init_ is neither"),
}


@pytest.mark.parametrize("case", sorted(GBR_CASES))
def test_gradient_boosting_regressor_structures_are_refused(gbr, case: str) -> None:
    edit, words = GBR_CASES[case]
    _refused(_edited(gbr, edit), "gradient boosting model", words)


def test_a_gradient_boosting_init_without_outputs_misbehaves_without_the_check(gbr, diabetes) -> None:
    """n_outputs_ 0: predict_stages writes every row's sum into a (rows, 0) array (past its end)."""
    crafted = _edited(gbr, GBR_CASES["init-no-output"][0])
    assert crafted.predict(diabetes[0][:3]).shape == (0,)
    assert _edited(gbr, GBR_CASES["init-two-outputs"][0]).predict(diabetes[0][:3]).shape == (6,)


# -- HistGradientBoostingRegressor: the binner and the predictors -----------------------------------------


@pytest.fixture(scope="module")
def hgbr(diabetes) -> HistGradientBoostingRegressor:
    X, y = diabetes
    X = X.copy()
    X[:, 1] = (X[:, 1] > 0).astype(float)  # sex: a categorical column
    X[::9, 2] = np.nan
    model = HistGradientBoostingRegressor(max_iter=5, categorical_features=[1], random_state=0).fit(X, y)
    model._preprocessor = None  # checked on its own in test_structure_attacks; here the trees
    return model


def _hgb_nodes(m: Any, field: str, value: int) -> None:
    for trees in m._predictors:
        for predictor in trees:
            inner = np.flatnonzero((predictor.nodes["is_leaf"] == 0) & (predictor.nodes["is_categorical"] == 0))
            predictor.nodes[field][inner[:1]] = value


HGBR_CASES = {
    "threshold-past-bins": (lambda m: _hgb_nodes(m, "bin_threshold", 254), "bin threshold"),
    "feature-past-width": (lambda m: _hgb_nodes(m, "feature_idx", 40), "splits on feature 40"),
    "link-past-nodes": (lambda m: _hgb_nodes(m, "left", 10_000), "child index"),
    "link-cycle": (lambda m: _hgb_nodes(m, "left", 0), "child index 0"),
    "binner-short": (
        lambda m: setattr(m._bin_mapper, "bin_thresholds_", m._bin_mapper.bin_thresholds_[:3]),
        "its binner knows 3 features, the model 10",
    ),
    "bins-disagree": (
        lambda m: setattr(m._bin_mapper, "n_bins_non_missing_", m._bin_mapper.n_bins_non_missing_ + 7),
        "bin thresholds and bin counts disagree",
    ),
    "trees-per-iteration": (lambda m: setattr(m, "n_trees_per_iteration_", 2), "trees per iteration"),
    "mid-fit": (lambda m: setattr(m, "_in_fit", True), "middle of fitting"),
}


@pytest.mark.parametrize("case", sorted(HGBR_CASES))
def test_hist_gradient_boosting_regressor_structures_are_refused(hgbr, case: str) -> None:
    edit, words = HGBR_CASES[case]
    _refused(_edited(hgbr, edit), "boosted", words, formats=("pickle", "joblib"))


# -- tree regressors: node links, features, values ------------------------------------------------------


def _retree(estimator: Any, edit: Callable[[dict], None]) -> None:
    tree = estimator.tree_
    state = tree.__getstate__()
    state["nodes"] = state["nodes"].copy()
    edit(state)
    tree.__setstate__(state)


def _first_split(state: dict, field: str, value: int) -> None:
    state["nodes"][field][0] = value


TREE_CASES = {
    "child-past-nodes": (lambda s: _first_split(s, "left_child", 10**6), "child index"),
    "child-loops-to-root": (lambda s: _first_split(s, "right_child", 0), "child index 0"),
    "feature-past-width": (lambda s: _first_split(s, "feature", 10), "splits on feature 10"),
    "depth-understated": (lambda s: s.update(max_depth=0), "max_depth"),
}


@pytest.mark.parametrize("case", sorted(TREE_CASES))
@pytest.mark.parametrize("name", ["decision_tree", "random_forest", "extra_trees", "gradient_boosting"])
def test_tree_regressor_structures_are_refused(fitted, name: str, case: str) -> None:
    edit, words = TREE_CASES[case]
    model = copy.deepcopy(fitted[name])
    trees = [model] if name == "decision_tree" else list(np.ravel(model.estimators_))
    _retree(trees[-1], edit)
    _refused(model, "tree", words, formats=("pickle", "joblib"))


def test_a_tree_regressor_value_array_of_another_shape_is_refused(fitted) -> None:
    model = copy.deepcopy(fitted["decision_tree"])
    state = model.tree_.__getstate__()
    state["values"] = np.ascontiguousarray(np.repeat(state["values"], 3, axis=2))
    with pytest.raises(ValueError):  # scikit-learn's own state check: such a tree cannot even be made
        model.tree_.__setstate__(state)


# -- linear models: coef_ and intercept_ against n_features_in_ -----------------------------------------


LINEAR_CASES = {
    "intercept-per-row": (lambda m: setattr(m, "intercept_", np.array([1.0, 200.0, 3000.0])), "intercept_"),
    "three-outputs": (lambda m: setattr(m, "coef_", np.ones((3, 10))), "intercept_ is not a number or 3"),
    "narrow-coef": (lambda m: setattr(m, "coef_", np.ones(4)), "coef_ has 4 column(s), the model 10 features"),
    "text-coef": (lambda m: setattr(m, "coef_", np.array(["1"] * 10)), "not a 1-D or 2-D array of numbers"),
    "object-coef": (lambda m: setattr(m, "coef_", np.array([10**400] * 10, dtype=object)), "array of numbers"),
    "cube-coef": (lambda m: setattr(m, "coef_", np.ones((1, 1, 10))), "array of numbers"),
    "text-intercept": (lambda m: setattr(m, "intercept_", np.array(["0"])), "intercept_"),
}


@pytest.mark.parametrize("case", sorted(LINEAR_CASES))
@pytest.mark.parametrize("name", ["linear_regression", "ridge", "lasso", "elastic_net"])
def test_linear_regressor_shapes_are_refused(fitted, name: str, case: str) -> None:
    edit, words = LINEAR_CASES[case]
    model = copy.deepcopy(fitted[name])
    if case == "three-outputs":
        model.intercept_ = np.zeros(2)
    edit(model)
    _refused(model, "linear model", words)


def test_linear_shapes_misbehave_without_the_check(fitted, diabetes) -> None:
    """Three intercepts: each of three rows gets its own offset; any other row count fails."""
    model = _edited(fitted["ridge"], LINEAR_CASES["intercept-per-row"][0])
    rows = diabetes[0][:3]
    shift = model.predict(rows) - fitted["ridge"].predict(rows)
    assert np.allclose(shift, np.array([1.0, 200.0, 3000.0]) - fitted["ridge"].intercept_)
    with pytest.raises(ValueError):
        model.predict(diabetes[0][:4])


def test_a_pipeline_with_a_crafted_ridge_is_refused(fitted) -> None:
    model = copy.deepcopy(fitted["scaled_ridge"])
    model[-1].coef_ = np.ones(4)
    _refused(model, "linear model", "coef_ has 4 column(s)")
