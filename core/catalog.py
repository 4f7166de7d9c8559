"""The estimator catalog: which scikit-learn classifiers ModelShelf trains, and their typed knobs.

Each hyperparameter has a schema (type, default, range or choices) that the command line and the
dashboard both read, so a widget or a ``--param k=v`` is checked by the same rules, and a bad
value gets a message naming the parameter and what is allowed, the way scikit-learn's own
``InvalidParameterError`` does.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from core.errors import InvalidParameterError

Kind = Literal["int", "float", "bool", "choice"]


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its type, default and the values it accepts."""

    name: str
    kind: Kind
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    log: bool = False
    help: str = ""

    def describe(self) -> str:
        """What the parameter accepts, in words: used in error messages and help."""
        none = " or None" if self.nullable else ""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "bool":
            return "true or false"
        noun = "an integer" if self.kind == "int" else "a number"
        return f"{noun} in [{_fmt(self.low)}, {_fmt(self.high)}]{none}"

    def coerce(self, value: Any, estimator: str = "") -> Any:
        """Check a value (a Python value or the text of ``--param k=v``) and return it typed."""
        where = f" of {estimator}" if estimator else ""
        bad = InvalidParameterError(
            f"Invalid value {value!r} for parameter {self.name!r}{where}: expected {self.describe()}"
        )
        if isinstance(value, str):
            text = value.strip()
            if text.lower() in ("none", "null") and (self.nullable or None in self.choices):
                return None
            value = text
        elif value is None:
            if self.nullable or None in self.choices:
                return None
            raise bad
        if self.kind == "choice":
            for choice in self.choices:
                if value == choice or (isinstance(value, str) and value == str(choice)):
                    return choice
            raise bad
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            lowered = str(value).lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise bad
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise bad from exc
        if isinstance(value, bool) or not math.isfinite(number):
            raise bad
        if self.kind == "int":
            if number != int(number):
                raise bad
            number = int(number)
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            raise bad
        return number

    def to_dict(self) -> dict[str, Any]:
        """JSON-able schema, for ``python -m core estimators --json`` and any other front end."""
        return {
            "name": self.name,
            "kind": self.kind,
            "default": self.default,
            "low": self.low,
            "high": self.high,
            "choices": list(self.choices),
            "nullable": self.nullable,
            "log": self.log,
            "help": self.help,
        }


def _fmt(x: float | None) -> str:
    if x is None:
        return "..."
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e6 else f"{x:g}"


@dataclass(frozen=True)
class EstimatorSpec:
    """A catalog entry: the class to build, a label for people, and its hyperparameter schema."""

    key: str
    label: str
    class_path: str
    params: tuple[Param, ...]
    seeded: bool = False
    description: str = ""
    fixed: dict[str, Any] = field(default_factory=dict)

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise InvalidParameterError(
            f"Unknown parameter {name!r} for {self.key}; allowed: " + ", ".join(self.param_names)
        )

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def resolve(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Defaults overlaid with ``params``, every value checked against the schema."""
        resolved = self.defaults()
        for name, value in (params or {}).items():
            resolved[name] = self.param(name).coerce(value, self.key)
        return resolved

    def build(self, params: dict[str, Any] | None = None, random_state: int | None = None) -> Any:
        """A fresh, unfitted estimator with checked parameters (seeded when it takes a random_state)."""
        module_name, _, class_name = self.class_path.rpartition(".")
        cls = getattr(importlib.import_module(module_name), class_name)
        kwargs = {**self.fixed, **self.resolve(params)}
        if self.seeded and random_state is not None:
            kwargs["random_state"] = random_state
        return cls(**kwargs)


# Knobs several estimators share, declared once.
CLASS_WEIGHT = Param(
    "class_weight", "choice", None, choices=(None, "balanced"), help="'balanced' reweights rare classes."
)
CRITERION = Param("criterion", "choice", "gini", choices=("gini", "entropy", "log_loss"))
TREE_DEPTH = Param("max_depth", "int", None, 1, 1000, nullable=True, help="Deepest a tree may grow (None: no limit).")
MIN_SAMPLES_SPLIT = Param("min_samples_split", "int", 2, 2, 10000)
MIN_SAMPLES_LEAF = Param("min_samples_leaf", "int", 1, 1, 10000)
LEARNING_RATE = Param("learning_rate", "float", 0.1, 1e-4, 10.0, log=True)
REGULARISATION_C = Param("C", "float", 1.0, 1e-6, 1e6, log=True, help="Inverse regularisation strength.")


BOOSTING_PARAMS = (
    Param("n_estimators", "int", 100, 1, 5000),
    LEARNING_RATE,
    Param("max_depth", "int", 3, 1, 100, nullable=True),
    Param("subsample", "float", 1.0, 0.01, 1.0),
    MIN_SAMPLES_LEAF,
)
KNN_PARAMS = (
    Param("n_neighbors", "int", 5, 1, 1000),
    Param("weights", "choice", "uniform", choices=("uniform", "distance")),
    Param("p", "int", 2, 1, 10, help="Minkowski power: 1 Manhattan, 2 Euclidean."),
)


def forest_params(bootstrap: bool, max_features: Param, *by_task: Param) -> tuple[Param, ...]:
    """A forest's knobs, the classifier's and the regressor's: ``by_task`` are the ones that differ."""
    return (
        Param("n_estimators", "int", 100, 1, 5000, help="Number of trees."),
        TREE_DEPTH,
        MIN_SAMPLES_SPLIT,
        MIN_SAMPLES_LEAF,
        max_features,
        *by_task,
        Param("bootstrap", "bool", bootstrap, help="Fit each tree on a bootstrap sample."),
    )


def _trees(bootstrap: bool) -> tuple[Param, ...]:
    features = Param("max_features", "choice", "sqrt", choices=("sqrt", "log2", None))
    return forest_params(bootstrap, features, CRITERION, CLASS_WEIGHT)


CATALOG: dict[str, EstimatorSpec] = {
    spec.key: spec
    for spec in (
        EstimatorSpec(
            "logistic_regression",
            "Logistic regression",
            "sklearn.linear_model.LogisticRegression",
            (
                REGULARISATION_C,
                Param(
                    "solver",
                    "choice",
                    "lbfgs",
                    choices=("lbfgs", "liblinear", "newton-cg", "newton-cholesky", "sag", "saga"),
                    help="The tutorial used liblinear (the default before scikit-learn 0.22).",
                ),
                Param("max_iter", "int", 100, 1, 100000, help="Iterations before the solver gives up."),
                Param("tol", "float", 1e-4, 1e-12, 1.0, log=True),
                CLASS_WEIGHT,
            ),
            seeded=True,
            description="A linear model of the log-odds: fast, and its coefficients can be read.",
        ),
        EstimatorSpec(
            "random_forest",
            "Random forest",
            "sklearn.ensemble.RandomForestClassifier",
            _trees(bootstrap=True),
            seeded=True,
            description="Many decorrelated trees voting: strong defaults, little tuning.",
        ),
        EstimatorSpec(
            "extra_trees",
            "Extra trees",
            "sklearn.ensemble.ExtraTreesClassifier",
            _trees(bootstrap=False),
            seeded=True,
            description="Like a random forest with random split points: faster to fit, often as good.",
        ),
        EstimatorSpec(
            "gradient_boosting",
            "Gradient boosting",
            "sklearn.ensemble.GradientBoostingClassifier",
            BOOSTING_PARAMS,
            seeded=True,
            description="Shallow trees fitted one after another on the previous errors.",
        ),
        EstimatorSpec(
            "hist_gradient_boosting",
            "Histogram gradient boosting",
            "sklearn.ensemble.HistGradientBoostingClassifier",
            (
                Param("max_iter", "int", 100, 1, 10000, help="Boosting rounds."),
                LEARNING_RATE,
                Param("max_leaf_nodes", "int", 31, 2, 100000, nullable=True),
                Param("max_depth", "int", None, 1, 1000, nullable=True),
                Param("min_samples_leaf", "int", 20, 1, 100000),
                Param("l2_regularization", "float", 0.0, 0.0, 1e6),
                Param("early_stopping", "choice", "auto", choices=("auto", True, False)),
            ),
            seeded=True,
            description="Boosting on binned features: the fastest choice on large tables.",
        ),
        EstimatorSpec(
            "decision_tree",
            "Decision tree",
            "sklearn.tree.DecisionTreeClassifier",
            (
                CRITERION,
                TREE_DEPTH,
                MIN_SAMPLES_SPLIT,
                MIN_SAMPLES_LEAF,
                CLASS_WEIGHT,
            ),
            seeded=True,
            description="One tree of if/else rules: easy to read, easy to overfit.",
        ),
        EstimatorSpec(
            "svc",
            "Support vector classifier",
            "sklearn.svm.SVC",
            (
                REGULARISATION_C,
                Param("kernel", "choice", "rbf", choices=("rbf", "linear", "poly", "sigmoid")),
                Param("gamma", "choice", "scale", choices=("scale", "auto")),
                Param("degree", "int", 3, 1, 10, help="Degree of the poly kernel."),
                Param("probability", "bool", True, help="Fit class probabilities (needed for ROC AUC)."),
                CLASS_WEIGHT,
            ),
            seeded=True,
            description="A maximum-margin boundary; scale the features for it.",
        ),
        EstimatorSpec(
            "knn",
            "k-nearest neighbours",
            "sklearn.neighbors.KNeighborsClassifier",
            KNN_PARAMS,
            description="Votes of the nearest training rows; the model stores the training set.",
        ),
        EstimatorSpec(
            "naive_bayes",
            "Gaussian naive Bayes",
            "sklearn.naive_bayes.GaussianNB",
            (Param("var_smoothing", "float", 1e-9, 1e-15, 1.0, log=True),),
            description="Independent Gaussian features per class: a fast baseline.",
        ),
    )
}


def get_spec(key: str) -> EstimatorSpec:
    """The catalog entry for ``key``, or an error that lists the keys there are."""
    try:
        return CATALOG[key]
    except KeyError as exc:
        raise InvalidParameterError(f"Unknown estimator {key!r}; choose one of: " + ", ".join(CATALOG)) from exc


def parse_param_args(pairs: list[str] | None) -> dict[str, str]:
    """``["C=0.5", "solver=liblinear"]`` -> ``{"C": "0.5", ...}``; typing happens in the schema."""
    parsed: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidParameterError(f"Invalid --param {pair!r}: expected NAME=VALUE")
        parsed[name.strip()] = value
    return parsed
