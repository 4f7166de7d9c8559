"""Direct tests of ``core.safety.checks*``' refusals: every structure compiled code indexes
(decision and boosted trees, binners, KD/ball trees, libsvm arrays, sparse matrices, neighbours,
k-means, gradient-boosting cells), each edited into a hostile shape here and handed to its check.

The checks are pure functions of the loaded objects, so they are called in this process (the
worker runs the same functions out of coverage's sight). Each edit is made on a deep copy of a
real fitted model, so every other part of the model stays as scikit-learn wrote it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    IsolationForest,
    RandomForestClassifier,
)
from sklearn.gaussian_process.kernels import DotProduct
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import DistanceMetric
from sklearn.neighbors import KDTree, KNeighborsClassifier, KNeighborsRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.tree._tree import Tree

from core.errors import FormatError, UnsafeModelError
from core.safety import checks, checks_linear, checks_neighbors_svm, checks_structures, checks_trees


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def fitted(iris) -> dict[str, Any]:
    """One small fitted model of each kind whose structure a check guards."""
    X, y = iris
    categorical = X.copy()
    categorical[:, 0] = np.digitize(X[:, 3], [0.8, 1.7])
    y2 = np.column_stack([y, y[::-1]])
    return {
        "tree": DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y),
        "forest": RandomForestClassifier(n_estimators=2, max_depth=2, random_state=0).fit(X, y),
        "isolation": IsolationForest(n_estimators=2, random_state=0).fit(X),
        "gb2": GradientBoostingClassifier(n_estimators=2, max_depth=1, random_state=0).fit(X, y == 0),
        "gb3": GradientBoostingClassifier(n_estimators=2, max_depth=1, random_state=0).fit(X, y),
        "hgb": HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, y),
        "hgb_cat": HistGradientBoostingClassifier(max_iter=3, categorical_features=[0], random_state=0).fit(
            categorical, y
        ),
        "knn_kd": KNeighborsClassifier(algorithm="kd_tree").fit(X, y),
        "knn_brute": KNeighborsClassifier(algorithm="brute").fit(X, y),
        "knn_2d": KNeighborsClassifier(algorithm="brute").fit(X, y2),
        "kmeans": KMeans(n_clusters=2, n_init=1, random_state=0).fit(X),
        "svc": SVC(random_state=0).fit(X, y),
        "svc_pre": SVC(kernel="precomputed").fit(X @ X.T, y),
        "svr": SVR().fit(X, X[:, 0]),
        "gbr": GradientBoostingRegressor(n_estimators=2, max_depth=1, random_state=0).fit(X, X[:, 0]),
        "ridge": Ridge().fit(X, X[:, 0]),
        "knn_p3": KNeighborsRegressor(algorithm="kd_tree", p=3).fit(X, X[:, 0]),
        "tree7": DecisionTreeRegressor(max_depth=2, random_state=0).fit(X, X[:, 0]),
        "kdtree": KDTree(X, leaf_size=10),
        "X": X,
        "y": y,
    }


def _refused(check: Callable[[], Any], *words: str, error: type = UnsafeModelError) -> None:
    with pytest.raises(error) as caught:
        check()
    message = str(caught.value)
    for word in words:
        assert word in message, message


def _edited(model: Any, edit: Callable[[Any], Any]) -> Any:
    crafted = copy.deepcopy(model)
    edit(crafted)
    return crafted


# -- the plain checks -----------------------------------------------------------------------------


def test_a_model_without_predict_is_refused(iris) -> None:
    scaler = StandardScaler().fit(iris[0])
    _refused(lambda: checks.check_fitted_estimator(scaler), "has no predict method", error=FormatError)


class _PredictOnly(BaseEstimator):
    """A scikit-learn object with ``predict`` but no ``fit``: scikit-learn cannot tell if it is fitted."""

    def predict(self, X):
        return X


def test_something_other_than_a_scikit_learn_model_is_refused() -> None:
    _refused(
        lambda: checks.check_fitted_estimator([1]),
        "holds a builtins.list, not a scikit-learn model",
        error=FormatError,
    )


def test_an_unfitted_model_is_refused() -> None:
    _refused(
        lambda: checks.check_fitted_estimator(LogisticRegression()),
        "holds an unfitted LogisticRegression",
        error=FormatError,
    )


def test_objects_nested_past_the_limit_are_refused() -> None:
    nested: list = []
    for _ in range(50):
        nested = [nested]
    _refused(lambda: checks.check_nesting(nested, 10), "nests objects too deeply to be a model (more than 10 levels)")


def test_a_tree_without_n_features_in_is_refused(fitted) -> None:
    model = _edited(fitted["tree"], lambda m: delattr(m, "n_features_in_"))
    _refused(lambda: checks_structures.validate_model(model), "it has no valid n_features_in_")


def test_a_model_whose_fitted_check_fails_is_refused() -> None:
    _refused(
        lambda: checks.check_fitted_estimator(_PredictOnly()),
        "is not a usable fitted model: _PredictOnly() is not an estimator instance",
        error=FormatError,
    )


def test_a_model_with_more_objects_than_the_bound_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(checks_structures, "_MAX_OBJECTS", 20)  # 5,000,000, lowered to keep the test fast
    _refused(lambda: checks_structures.validate_model([[i] for i in range(50)]), "it holds more than 20 objects")


def test_special_attributes_on_a_scikit_learn_object_are_refused(fitted) -> None:
    model = _edited(fitted["tree"], lambda m: m.__dict__.__setitem__("__sklearn_is_fitted__", True))
    _refused(lambda: checks_structures.validate_model(model), "special attributes (__...__) set on the object")


# -- decision trees -------------------------------------------------------------------------------


def _retree(tree: Tree, edit: Callable[[dict], None]) -> Tree:
    state = tree.__getstate__()
    state["nodes"] = state["nodes"].copy()
    edit(state)
    new = Tree(tree.n_features, np.asarray(tree.n_classes), tree.n_outputs)
    new.__setstate__(state)
    return new


def _leaf_with_one_child(state: dict) -> None:
    nodes = state["nodes"]
    leaf = int(np.flatnonzero(nodes["left_child"] == -1)[0])
    nodes["right_child"][leaf] = 1


def test_a_tree_whose_max_depth_is_not_its_depth_is_refused(fitted) -> None:
    tree = _retree(fitted["tree"].tree_, lambda s: s.__setitem__("max_depth", 10_000))
    _refused(lambda: checks_trees.check_tree(tree), "its max_depth 10000 is not its depth 3")


def test_a_tree_leaf_with_one_child_is_refused(fitted) -> None:
    tree = _retree(fitted["tree"].tree_, _leaf_with_one_child)
    _refused(lambda: checks_trees.check_tree(tree), "a leaf has one child")


def test_a_split_on_a_feature_past_the_models_width_is_refused(fitted) -> None:
    _refused(
        lambda: checks_trees.check_tree(fitted["tree"].tree_, 1), "a node splits on feature 3 of a 1-feature model"
    )


def _links(left: list[int], right: list[int]) -> Callable[[dict], None]:
    def edit(state: dict) -> None:
        state["nodes"]["left_child"] = left
        state["nodes"]["right_child"] = right

    return edit


LINK_CASES = [
    (_links([999, -1, -1, -1, -1, -1, -1], [2, -1, -1, -1, -1, -1, -1]), "a child index 999 is outside 1..6"),
    (_links([1, 2, -1, -1, 5, -1, -1], [1, 3, -1, -1, 6, -1, -1]), "some node has two parents or none"),
    (_links([1, -1, -1, 4, 3, -1, -1], [2, -1, -1, 5, 6, -1, -1]), "4 node(s) cannot be reached from the root"),
]


@pytest.mark.parametrize(("edit", "words"), LINK_CASES, ids=["child-out-of-range", "two-parents", "orphan-cycle"])
def test_tree_links_must_form_one_tree(fitted, edit, words: str) -> None:
    tree = fitted["tree7"].tree_
    assert tree.node_count == 7
    _refused(lambda: checks_trees.check_tree(_retree(tree, edit)), "decision tree", words)


def test_a_tree_with_no_nodes_is_refused(fitted) -> None:
    def empty(state: dict) -> None:
        state["node_count"] = 0
        state["nodes"] = state["nodes"][:0].copy()
        state["values"] = state["values"][:0].copy()

    tree = _retree(fitted["tree"].tree_, empty)
    _refused(lambda: checks_trees.check_tree(tree), "node_count 0 does not match")


def test_a_decision_tree_whose_tree_is_not_a_tree_is_refused(fitted) -> None:
    model = _edited(fitted["tree"], lambda m: setattr(m, "tree_", [1, 2]))
    _refused(lambda: checks_structures.validate_model(model), "its tree_ is not a scikit-learn tree")


def test_a_decision_tree_wider_than_its_estimator_is_refused(fitted) -> None:
    model = _edited(fitted["tree"], lambda m: setattr(m, "n_features_in_", 3))
    _refused(lambda: checks_structures.validate_model(model), "its tree has 4 features, the estimator 3")


# -- ensembles ------------------------------------------------------------------------------------


def test_a_forest_whose_members_are_not_a_list_is_refused(fitted) -> None:
    model = _edited(fitted["forest"], lambda m: setattr(m, "estimators_", "trees"))
    _refused(lambda: checks_trees._check_ensemble_features(model), "its estimators_ is not a list of trees")


def test_an_isolation_forest_with_a_feature_subset_per_member_missing_is_refused(fitted) -> None:
    model = _edited(fitted["isolation"], lambda m: setattr(m, "estimators_features_", m.estimators_features_[:1]))
    _refused(lambda: checks_trees._check_ensemble_features(model), "its feature subsets do not match its members")


def test_a_forest_member_wider_than_its_forest_is_refused(fitted) -> None:
    model = _edited(fitted["forest"], lambda m: setattr(m, "n_features_in_", 3))
    _refused(lambda: checks_trees._check_ensemble_features(model), "a member expects 4 features, the ensemble 3")


def _gb(name: str, edit: Callable[[Any], Any]) -> Callable[[dict], Any]:
    return lambda fitted: _edited(fitted[name], edit)


def _two_output_cell(m) -> None:
    X = np.zeros((4, m.n_features_in_))
    cell = DecisionTreeRegressor(max_depth=1).fit(X + np.arange(4)[:, None], np.arange(8.0).reshape(4, 2))
    m.estimators_ = m.estimators_.copy()
    m.estimators_[0, 0] = cell


def _init_prior(m) -> None:
    m.init_.class_prior_ = np.ones(5)


def _init_classes(m) -> None:
    m.init_.n_classes_ = 7


def _classifier_cell(m) -> None:
    m.estimators_ = m.estimators_.copy()
    m.estimators_[0, 0] = DecisionTreeClassifier(max_depth=1).fit(np.eye(4), [0, 1, 0, 1])


def _narrow_cell(m) -> None:
    m.estimators_ = m.estimators_.copy()
    m.estimators_[0, 0] = copy.deepcopy(m.estimators_[0, 0])
    m.estimators_[0, 0].n_features_in_ = 3


GB_CASES = [
    (_gb("gb2", lambda m: setattr(m, "n_trees_per_iteration_", 3)), "tree(s) per stage, where 1 are expected"),
    (_gb("gb2", _classifier_cell), "a cell of its estimators_ is not a DecisionTreeRegressor"),
    (_gb("gb2", _narrow_cell), "a tree expects 3 features, the model 4"),
    (_gb("gb2", lambda m: setattr(m, "estimators_", m.estimators_.ravel())), "is not a 2-D array of trees"),
    (_gb("gb2", lambda m: setattr(m, "n_classes_", 5)), "its classes do not match its class count"),
    (_gb("gb2", lambda m: setattr(m, "n_estimators_", 999)), "its estimators_ does not match n_estimators_"),
    (_gb("gb2", _two_output_cell), "a tree is not a one-output regression tree"),
    (_gb("gb2", _init_classes), "its init estimator does not know the model's classes"),
    (_gb("gb2", _init_prior), "its init estimator does not know the model's classes"),
    (_gb("gb3", lambda m: setattr(m, "_loss", None)), "its loss is not a multiclass loss"),
    (_gb("gb2", lambda m: setattr(m, "init_", DummyRegressor())), "its init_ is neither 'zero' nor"),
    (_gb("gb2", lambda m: setattr(m, "init_", "one")), "its init_ is neither 'zero' nor"),
    (_gb("gbr", lambda m: setattr(m.init_, "n_outputs_", 0)), "its init estimator does not predict one number per"),
]


@pytest.mark.parametrize(("build", "words"), GB_CASES, ids=[w[:30] for _b, w in GB_CASES])
def test_gradient_boosting_cells_must_match_the_model(fitted, build, words: str) -> None:
    model = build(fitted)
    _refused(lambda: checks_trees._check_gradient_boosting(model), "gradient boosting model", words)


# -- histogram gradient boosting ------------------------------------------------------------------


def _predictor(fitted, name: str = "hgb"):
    model = copy.deepcopy(fitted[name])
    return model, model._predictors[0][0]


def _check_first_predictor(model, predictor, mask=None, n_bins=None) -> Callable[[], None]:
    return lambda: checks_trees.check_predictor(predictor, model.n_features_in_, mask, n_bins)


def test_a_boosted_tree_without_nodes_is_refused(fitted) -> None:
    model, predictor = _predictor(fitted)
    predictor.nodes = predictor.nodes[:0].copy()
    _refused(_check_first_predictor(model, predictor), "its node array is missing or empty")


def test_a_boosted_tree_of_another_node_layout_is_refused(fitted) -> None:
    model, predictor = _predictor(fitted)
    predictor.nodes = np.zeros(3, dtype=[("value", "f8"), ("is_leaf", "u1")])
    _refused(_check_first_predictor(model, predictor), "does not have scikit-learn's node layout")


def test_a_boosted_tree_flag_other_than_0_or_1_is_refused(fitted) -> None:
    model, predictor = _predictor(fitted)
    predictor.nodes["is_categorical"][0] = 9
    _refused(_check_first_predictor(model, predictor), "its is_categorical flags are not all 0 or 1")


def test_a_boosted_tree_split_past_the_models_width_is_refused(fitted) -> None:
    model, predictor = _predictor(fitted)
    inner = predictor.nodes["is_leaf"] == 0
    predictor.nodes["feature_idx"][inner] = 99
    _refused(_check_first_predictor(model, predictor), "a node splits on feature 99 of a 4-feature model")


def test_boosted_tree_bitsets_of_the_wrong_type_are_refused(fitted) -> None:
    model, predictor = _predictor(fitted)
    predictor.raw_left_cat_bitsets = predictor.raw_left_cat_bitsets.astype(np.float64)
    _refused(_check_first_predictor(model, predictor), "its categorical bitsets are malformed")


def test_boosted_tree_bitsets_of_the_wrong_shape_are_refused(fitted) -> None:
    model, predictor = _predictor(fitted)
    predictor.raw_left_cat_bitsets = np.zeros((1, 7), dtype=np.uint32)
    predictor.binned_left_cat_bitsets = np.zeros((1, 7), dtype=np.uint32)
    _refused(_check_first_predictor(model, predictor), "its categorical bitsets have the wrong shape")


def _categorical_node(predictor) -> int:
    nodes = predictor.nodes
    return int(np.flatnonzero((nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 1))[0])


def test_a_categorical_split_past_its_bitsets_is_refused(fitted) -> None:
    model, predictor = _predictor(fitted, "hgb_cat")
    predictor = next(p for it in model._predictors for p in it if p.nodes["is_categorical"].any())
    predictor.nodes["bitset_idx"][_categorical_node(predictor)] = 10_000
    _refused(_check_first_predictor(model, predictor), "a categorical split points past its bitsets")


def test_a_categorical_split_on_a_numeric_feature_is_refused(fitted) -> None:
    model, _ = _predictor(fitted, "hgb_cat")
    predictor = next(p for it in model._predictors for p in it if p.nodes["is_categorical"].any())
    mask = np.zeros(4, dtype=bool)  # the binner says: no categorical feature
    _refused(_check_first_predictor(model, predictor, mask), "a categorical split is on a feature that is not")


def test_a_bin_threshold_past_its_features_bins_is_refused(fitted) -> None:
    model, predictor = _predictor(fitted)
    _refused(_check_first_predictor(model, predictor, None, np.zeros(4, dtype=int)), "bin threshold is past")


def _mapper(edit: Callable[[Any], None]) -> Callable[[Any], None]:
    return lambda m: edit(m._bin_mapper)


def _categorical_edges_out_of_range(mapper) -> None:
    mapper.bin_thresholds_ = list(mapper.bin_thresholds_)
    mapper.bin_thresholds_[0] = mapper.bin_thresholds_[0] + 1_000.0


def _more_bins_than_edges(mapper) -> None:
    mapper.n_bins_non_missing_ = mapper.n_bins_non_missing_.copy()
    mapper.n_bins_non_missing_[1] -= 1


HGB_CASES = [
    ("hgb", _mapper(_more_bins_than_edges), "bin thresholds and bin counts disagree for feature 1"),
    ("hgb", lambda m: setattr(m, "_bin_mapper", None), "its binner (_bin_mapper) is missing"),
    ("hgb", _mapper(lambda b: setattr(b, "bin_thresholds_", b.bin_thresholds_[:2])), "its binner knows 2 features"),
    ("hgb", _mapper(lambda b: setattr(b, "n_bins_non_missing_", None)), "bin counts do not match its features"),
    ("hgb", _mapper(lambda b: setattr(b, "is_categorical_", np.full(4, 3))), "categorical mask does not match"),
    ("hgb", _mapper(lambda b: setattr(b, "missing_values_bin_idx_", 300)), "missing-values bin is not its last"),
    ("hgb_cat", _mapper(_categorical_edges_out_of_range), "categories for feature 0 do not fit a bitset"),
    ("hgb", lambda m: setattr(m, "_in_fit", True), "in the middle of fitting"),
    ("hgb", lambda m: setattr(m, "is_categorical_", np.ones(4, dtype=bool)), "categorical-feature mask does not"),
    ("hgb", lambda m: setattr(m, "n_trees_per_iteration_", 5), "trees per iteration do not match"),
    ("hgb", lambda m: setattr(m, "_preprocessor", "passthrough"), "categorical preprocessor is not the one"),
]


@pytest.mark.parametrize(("name", "edit", "words"), HGB_CASES, ids=[w[:30] for _n, _e, w in HGB_CASES])
def test_hist_gradient_boosting_binner_trees_and_model_must_agree(fitted, name: str, edit, words: str) -> None:
    model = _edited(fitted[name], edit)
    _refused(lambda: checks_trees._check_hist_gradient_boosting(model), "boosted model", words)


def test_a_categorical_preprocessor_ordering_features_unlike_the_binner_is_refused(fitted) -> None:
    model = copy.deepcopy(fitted["hgb_cat"])
    mask = np.zeros(4, dtype=bool)
    mask[1] = True  # the binner says feature 1 is the categorical one; the preprocessor puts feature 0 first
    _refused(
        lambda: checks_trees._check_hist_preprocessor(model._preprocessor, 4, mask),
        "its categorical preprocessor and its binner order features differently",
    )


def test_a_categorical_preprocessor_that_passes_other_columns_through_is_refused(fitted) -> None:
    model = copy.deepcopy(fitted["hgb_cat"])
    model._preprocessor.transformers_[2] = ("remainder", "passthrough", np.ones(4, dtype=bool))
    mask = model._bin_mapper.is_categorical_.astype(bool)
    _refused(
        lambda: checks_trees._check_hist_preprocessor(model._preprocessor, 4, mask),
        "its categorical preprocessor is not the one scikit-learn builds",
    )


# -- nearest neighbours, k-means, KD/ball trees ---------------------------------------------------


def _other_index(m) -> None:
    m._tree = KDTree(m._fit_X[:5])


NEIGHBOUR_CASES = [
    ("knn_kd", lambda m: setattr(m, "_fit_X", m._fit_X.tolist()), "its fitted data is not a 2-D array"),
    ("knn_kd", lambda m: setattr(m, "n_features_in_", 3), "its fitted data has 4 column(s), the model 3 features"),
    ("knn_kd", lambda m: setattr(m, "n_samples_fit_", 1), "its sample count does not match its fitted data"),
    ("knn_kd", lambda m: setattr(m, "_fit_method", "brute"), "its search method and its index disagree"),
    ("knn_kd", _other_index, "its index was built on data of another shape"),
    ("knn_brute", lambda m: setattr(m, "effective_metric_params_", [1]), "its metric parameters are not a mapping"),
    ("knn_brute", lambda m: setattr(m, "effective_metric_params_", {"w": np.ones(2)}), "metric parameter 'w'"),
    ("knn_brute", lambda m: setattr(m, "_y", m._y[:3]), "its labels do not match its fitted data"),
    ("knn_brute", lambda m: setattr(m, "outputs_2d_", True), "its labels and its output count disagree"),
    ("knn_2d", lambda m: setattr(m, "classes_", m.classes_[0]), "its labels and its classes disagree"),
    ("knn_brute", lambda m: setattr(m, "_y", m._y + 10), "a label is outside its classes"),
    ("knn_p3", lambda m: setattr(m, "p", -1.0), "its p is -1.0, not a power above 0"),
    ("knn_p3", lambda m: setattr(m, "p", "3"), "its p is str, not a power above 0"),
    ("knn_p3", lambda m: m.effective_metric_params_.update(p=np.inf), "metric parameter 'p' is inf, not a finite"),
]


@pytest.mark.parametrize(("name", "edit", "words"), NEIGHBOUR_CASES, ids=[w[:30] for _n, _e, w in NEIGHBOUR_CASES])
def test_neighbours_fitted_data_index_and_labels_must_agree(fitted, name: str, edit, words: str) -> None:
    model = _edited(fitted[name], edit)
    _refused(lambda: checks_neighbors_svm._check_neighbors(model), "neighbours model", words)


KMEANS_CASES = [
    (lambda m: setattr(m, "cluster_centers_", m.cluster_centers_[0]), "its cluster centres are not a 2-D array"),
    (lambda m: setattr(m, "n_features_in_", 3), "cluster centres have 4 column(s), the model 3 features"),
    (lambda m: setattr(m, "_n_threads", 5000), "its thread count is not between 1 and 1024"),
]


@pytest.mark.parametrize(("edit", "words"), KMEANS_CASES, ids=[w[:30] for _e, w in KMEANS_CASES])
def test_k_means_centres_and_threads_are_checked(fitted, edit, words: str) -> None:
    model = _edited(fitted["kmeans"], edit)
    _refused(lambda: checks_neighbors_svm._check_kmeans(model), "k-means model", words)


def _rebuilt_kdtree(tree: KDTree, edit: Callable[[list], None]) -> KDTree:
    state = list(tree.__getstate__())
    state[:4] = [np.array(a, copy=True) for a in state[:4]]
    edit(state)
    new = KDTree.__new__(KDTree)
    new.__setstate__(tuple(state))
    return new


def _range_outside(state: list) -> None:
    state[2]["idx_end"][0] = 10_000


def _inner_without_children(state: list) -> None:
    state[2]["is_leaf"][-1] = 0


def _bounds_shape(state: list) -> None:
    state[3] = np.ascontiguousarray(state[3][:, :, :2])


def _levels(state: list) -> None:
    state[5] = 80


def _weights(state: list) -> None:
    state[12] = np.ones(3)


def _index_outside(state: list) -> None:
    state[1][0] = 10_000


KD_CASES = [
    (_index_outside, "its index array does not fit its data"),
    (_range_outside, "a node's range is outside the data"),
    (_inner_without_children, "an inner node has no children"),
    (_bounds_shape, "its node bounds have the wrong shape"),
    (_levels, "its node count does not match its arrays"),
    (_weights, "its sample weights do not match its data"),
]


@pytest.mark.parametrize(("edit", "words"), KD_CASES, ids=[w[:30] for _e, w in KD_CASES])
def test_a_kd_tree_index_must_stay_inside_its_data(fitted, edit, words: str) -> None:
    tree = _rebuilt_kdtree(fitted["kdtree"], edit)
    _refused(lambda: checks_neighbors_svm._check_binary_tree(tree), "neighbours index", words)


def test_a_mahalanobis_metric_with_a_matrix_that_is_not_square_is_refused(fitted) -> None:
    metric = DistanceMetric.get_metric("mahalanobis", VI=np.eye(4))
    state = list(metric.__getstate__())
    state[2] = np.ones((4, 3))
    crafted = type(metric).__new__(type(metric))
    crafted.__setstate__(tuple(state))
    _refused(lambda: checks_neighbors_svm._check_distance_metric(crafted, fitted["X"]), "distance metric", "not square")


@pytest.mark.parametrize(("p", "words"), [(np.nan, "power p is nan, not a finite"), (0.5, "below 1 (not a distance)")])
def test_a_minkowski_tree_metric_with_a_power_out_of_bounds_is_refused(fitted, p: float, words: str) -> None:
    metric = fitted["knn_p3"]._tree.__getstate__()[11]
    state = list(metric.__getstate__())
    state[0] = p
    crafted = type(metric).__new__(type(metric))
    crafted.__setstate__(tuple(state))
    _refused(lambda: checks_neighbors_svm._check_distance_metric(crafted, fitted["X"]), "distance metric", words)


def test_a_weighted_metric_narrower_than_the_data_is_refused(fitted) -> None:
    metric = DistanceMetric.get_metric("seuclidean", V=np.ones(2))
    _refused(
        lambda: checks_neighbors_svm._check_distance_metric(metric, fitted["X"]),
        "distance metric",
        "size of V does not match",
    )


# -- libsvm ---------------------------------------------------------------------------------------


def _svc_support_count(m) -> None:
    m._n_support = m._n_support.copy()
    m._n_support[0] += 1


SVC_CASES = [
    ("svc_pre", lambda m: setattr(m, "support_", m.support_ + 10_000), "fall outside the training kernel"),
    ("svr", lambda m: setattr(m, "_n_support", np.array([1, 2, 3], dtype=np.int32)), "do not fit a regression"),
    ("svc", lambda m: setattr(m, "support_", m.support_[:-1]), "its support arrays disagree"),
    ("svc", _svc_support_count, "support vectors counted"),
    ("svc", lambda m: setattr(m, "_dual_coef_", m._dual_coef_[:, :-1]), "coefficients do not match its support"),
    ("svc", lambda m: setattr(m, "_probA", np.ones(7)), "_probA has the wrong length"),
    ("svc", lambda m: setattr(m, "n_features_in_", 3), "its support vectors have the wrong width"),
    ("svc_pre", lambda m: setattr(m, "n_features_in_", 2), "a support index is past the precomputed kernel's"),
    ("svr", lambda m: setattr(m, "kernel", DotProduct()), "its kernel is not one of libsvm's kernel names"),
]


@pytest.mark.parametrize(("name", "edit", "words"), SVC_CASES, ids=[w[:30] for _n, _e, w in SVC_CASES])
def test_libsvm_counts_must_add_up(fitted, name: str, edit, words: str) -> None:
    model = _edited(fitted[name], edit)
    _refused(lambda: checks_neighbors_svm._check_libsvm(model), "support vector model", words)


# -- linear models ------------------------------------------------------------------------------

LINEAR_CASES = [
    (lambda m: setattr(m, "coef_", m.coef_.astype(object)), "its coef_ is not a 1-D or 2-D array of numbers"),
    (lambda m: setattr(m, "coef_", m.coef_[:3]), "its coef_ has 3 column(s), the model 4 features"),
    (lambda m: setattr(m, "intercept_", np.zeros(2)), "its intercept_ is not a number or 1 number(s)"),
]


@pytest.mark.parametrize(("edit", "words"), LINEAR_CASES, ids=[w[:30] for _e, w in LINEAR_CASES])
def test_linear_coefficients_must_fit_the_features_and_outputs(fitted, edit, words: str) -> None:
    model = _edited(fitted["ridge"], edit)
    _refused(lambda: checks_linear._check_linear_model(model), "linear model", words)


# -- sparse matrices ------------------------------------------------------------------------------


def test_a_csr_matrix_with_an_index_past_its_columns_is_refused() -> None:
    matrix = sparse.csr_matrix((np.ones(2), np.array([0, 9]), np.array([0, 1, 2])), shape=(2, 3))
    _refused(lambda: checks_neighbors_svm._check_sparse(matrix), "sparse matrix")


def _coo(rows: list[int], cols: list[int]) -> sparse.coo_matrix:
    """A real 2x2 COO matrix whose coordinates are then set as unpickling sets them (unchecked)."""
    matrix = sparse.coo_matrix((np.ones(2), (np.array([0, 1]), np.array([0, 1]))), shape=(2, 2))
    matrix.coords = (np.array(rows, dtype=np.int32), np.array(cols, dtype=np.int32))
    return matrix


@pytest.mark.parametrize(
    ("rows", "cols"), [([0, 5], [0, 1]), ([0, 1], [0, 7])], ids=["row-out-of-range", "column-out-of-range"]
)
def test_a_coo_matrix_with_coordinates_outside_its_shape_is_refused(rows, cols) -> None:
    assert not hasattr(_coo(rows, cols), "check_format")  # COO has no full check of its own: the check does it
    _refused(lambda: checks_neighbors_svm._check_sparse(_coo(rows, cols)), "sparse matrix", "coordinates out of range")
