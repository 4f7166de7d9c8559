"""The catalog by task: the regressors beside ``core.catalog``'s classifiers, and which key means what.

The keys both tasks share (``random_forest``, ``knn``...) name the classifier or the regressor by
the task being trained; ``linear_regression``, ``ridge``, ``lasso``, ``elastic_net`` and ``svr`` are
regression-only, ``logistic_regression``, ``svc`` and ``naive_bayes`` classification-only. A
regressor's hyperparameters follow the same schemas (``core.catalog.Param``) as a classifier's.
"""

from __future__ import annotations

from core.catalog import (
    BOOSTING_PARAMS,
    CATALOG,
    KNN_PARAMS,
    LEARNING_RATE,
    MIN_SAMPLES_LEAF,
    MIN_SAMPLES_SPLIT,
    REGULARISATION_C,
    TREE_DEPTH,
    EstimatorSpec,
    Param,
    forest_params,
)
from core.errors import InvalidParameterError

REGRESSION_CRITERION = Param(
    "criterion", "choice", "squared_error", choices=("squared_error", "absolute_error", "friedman_mse", "poisson")
)
FIT_INTERCEPT = Param("fit_intercept", "bool", True, help="Fit a constant term.")
ALPHA = Param("alpha", "float", 1.0, 1e-8, 1e6, log=True, help="Regularisation strength.")
MAX_ITER = Param("max_iter", "int", 1000, 1, 1000000, help="Iterations before the solver gives up.")


def _trees(bootstrap: bool) -> tuple[Param, ...]:
    features = Param("max_features", "choice", 1.0, choices=(1.0, "sqrt", "log2", None))
    return forest_params(bootstrap, features, REGRESSION_CRITERION)


REGRESSORS: dict[str, EstimatorSpec] = {
    spec.key: spec
    for spec in (
        EstimatorSpec(
            "random_forest",
            "Random forest",
            "sklearn.ensemble.RandomForestRegressor",
            _trees(bootstrap=True),
            seeded=True,
            description="Many decorrelated trees averaged: strong defaults, little tuning.",
        ),
        EstimatorSpec(
            "extra_trees",
            "Extra trees",
            "sklearn.ensemble.ExtraTreesRegressor",
            _trees(bootstrap=False),
            seeded=True,
            description="Like a random forest with random split points: faster to fit, often as good.",
        ),
        EstimatorSpec(
            "gradient_boosting",
            "Gradient boosting",
            "sklearn.ensemble.GradientBoostingRegressor",
            (
                *BOOSTING_PARAMS,
                Param("loss", "choice", "squared_error", choices=("squared_error", "absolute_error", "huber")),
            ),
            seeded=True,
            description="Shallow trees fitted one after another on the previous errors.",
        ),
        EstimatorSpec(
            "hist_gradient_boosting",
            "Histogram gradient boosting",
            "sklearn.ensemble.HistGradientBoostingRegressor",
            (
                Param("max_iter", "int", 100, 1, 10000, help="Boosting rounds."),
                LEARNING_RATE,
                Param("max_leaf_nodes", "int", 31, 2, 100000, nullable=True),
                Param("max_depth", "int", None, 1, 1000, nullable=True),
                Param("min_samples_leaf", "int", 20, 1, 100000),
                Param("l2_regularization", "float", 0.0, 0.0, 1e6),
                Param("early_stopping", "choice", "auto", choices=("auto", True, False)),
                Param("loss", "choice", "squared_error", choices=("squared_error", "absolute_error", "poisson")),
            ),
            seeded=True,
            description="Boosting on binned features: the fastest choice on large tables.",
        ),
        EstimatorSpec(
            "decision_tree",
            "Decision tree",
            "sklearn.tree.DecisionTreeRegressor",
            (REGRESSION_CRITERION, TREE_DEPTH, MIN_SAMPLES_SPLIT, MIN_SAMPLES_LEAF),
            seeded=True,
            description="One tree of if/else rules: easy to read, easy to overfit.",
        ),
        EstimatorSpec(
            "knn",
            "k-nearest neighbours",
            "sklearn.neighbors.KNeighborsRegressor",
            KNN_PARAMS,
            description="The mean of the nearest training rows; the model stores the training set.",
        ),
        EstimatorSpec(
            "linear_regression",
            "Linear regression",
            "sklearn.linear_model.LinearRegression",
            (FIT_INTERCEPT, Param("positive", "bool", False, help="Force the coefficients to be >= 0.")),
            description="Ordinary least squares: the baseline, and its coefficients can be read.",
        ),
        EstimatorSpec(
            "ridge",
            "Ridge regression",
            "sklearn.linear_model.Ridge",
            (ALPHA, FIT_INTERCEPT),
            seeded=True,
            description="Least squares with an L2 penalty: steadier than plain least squares on correlated features.",
        ),
        EstimatorSpec(
            "lasso",
            "Lasso",
            "sklearn.linear_model.Lasso",
            (ALPHA, FIT_INTERCEPT, MAX_ITER, Param("tol", "float", 1e-4, 1e-12, 1.0, log=True)),
            seeded=True,
            description="Least squares with an L1 penalty: sets weak features' coefficients to zero.",
        ),
        EstimatorSpec(
            "elastic_net",
            "Elastic net",
            "sklearn.linear_model.ElasticNet",
            (ALPHA, Param("l1_ratio", "float", 0.5, 0.0, 1.0, help="0: ridge, 1: lasso."), FIT_INTERCEPT, MAX_ITER),
            seeded=True,
            description="A mix of the lasso's and ridge's penalties.",
        ),
        EstimatorSpec(
            "svr",
            "Support vector regression",
            "sklearn.svm.SVR",
            (
                REGULARISATION_C,
                Param("kernel", "choice", "rbf", choices=("rbf", "linear", "poly", "sigmoid")),
                Param("gamma", "choice", "scale", choices=("scale", "auto")),
                Param("degree", "int", 3, 1, 10, help="Degree of the poly kernel."),
                Param("epsilon", "float", 0.1, 0.0, 1e6, help="Errors smaller than this cost nothing."),
            ),
            description="A tube of width epsilon around the fit; scale the features for it.",
        ),
    )
}

#: Each task's catalog, by key.
BY_TASK: dict[str, dict[str, EstimatorSpec]] = {"classification": CATALOG, "regression": REGRESSORS}
#: Every key, in the order a list shows them (the classifiers' order, then the regression-only ones).
ALL_KEYS: tuple[str, ...] = tuple(dict.fromkeys([*CATALOG, *REGRESSORS]))


def tasks_of(key: str) -> list[str]:
    """The tasks a catalog key can be trained for."""
    return [task for task, catalog in BY_TASK.items() if key in catalog]


def catalog_for(task: str | None) -> dict[str, EstimatorSpec]:
    """The estimators of one task (``None``: every key, its classifier when it has one)."""
    if task is None:
        return {key: CATALOG.get(key) or REGRESSORS[key] for key in ALL_KEYS}
    if task not in BY_TASK:
        raise InvalidParameterError(f"Unknown task {task!r}; choose one of: " + ", ".join(BY_TASK))
    return BY_TASK[task]


def spec_for(key: str, task: str = "classification") -> EstimatorSpec:
    """The catalog entry ``key`` resolves to for ``task``, or one line naming the keys that task allows."""
    catalog = catalog_for(task)
    if key in catalog:
        return catalog[key]
    if key in ALL_KEYS:
        raise InvalidParameterError(
            f"{key} is a {tasks_of(key)[0]} estimator and this is a {task} target; choose one of: " + ", ".join(catalog)
        )
    raise InvalidParameterError(f"Unknown estimator {key!r}; choose one of: " + ", ".join(ALL_KEYS))
