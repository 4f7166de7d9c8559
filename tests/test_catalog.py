import json

import pytest

from core.catalog import CATALOG, get_spec, parse_param_args
from core.errors import InvalidParameterError

REQUIRED = {
    "logistic_regression",
    "random_forest",
    "extra_trees",
    "gradient_boosting",
    "hist_gradient_boosting",
    "decision_tree",
    "svc",
    "knn",
    "naive_bayes",
}


def test_catalog_has_every_required_estimator():
    assert set(CATALOG) >= REQUIRED


@pytest.mark.parametrize("key", sorted(CATALOG))
def test_every_estimator_builds_with_its_defaults_and_schema_is_json(key):
    spec = get_spec(key)
    estimator = spec.build(random_state=3)
    params = estimator.get_params()
    for p in spec.params:
        assert params[p.name] == p.default, p.name
        assert p.coerce(p.default, key) == p.default
    if spec.seeded:
        assert params["random_state"] == 3
    json.dumps([p.to_dict() for p in spec.params])


def test_unknown_estimator_names_it_and_lists_choices():
    with pytest.raises(InvalidParameterError, match=r"Unknown estimator 'nope'.*logistic_regression"):
        get_spec("nope")


def test_unknown_parameter_lists_allowed():
    with pytest.raises(InvalidParameterError, match=r"Unknown parameter 'foo' for svc; allowed: C, kernel"):
        get_spec("svc").resolve({"foo": 1})


@pytest.mark.parametrize(
    ("key", "name", "value", "expected"),
    [
        ("logistic_regression", "C", "0.5", 0.5),
        ("logistic_regression", "solver", "liblinear", "liblinear"),
        ("random_forest", "n_estimators", "50", 50),
        ("random_forest", "max_depth", "None", None),
        ("random_forest", "max_features", "none", None),
        ("random_forest", "bootstrap", "false", False),
        ("hist_gradient_boosting", "early_stopping", "True", True),
        ("hist_gradient_boosting", "early_stopping", "auto", "auto"),
        ("knn", "n_neighbors", 7.0, 7),
    ],
)
def test_text_values_are_typed_by_the_schema(key, name, value, expected):
    assert get_spec(key).param(name).coerce(value, key) == expected


@pytest.mark.parametrize(
    ("key", "name", "value", "allowed"),
    [
        ("logistic_regression", "C", "abc", "a number in"),
        ("logistic_regression", "C", "-1", "a number in"),
        ("logistic_regression", "solver", "adam", "one of 'lbfgs'"),
        ("random_forest", "n_estimators", "2.5", "an integer in"),
        ("random_forest", "n_estimators", "0", "an integer in"),
        ("random_forest", "bootstrap", "maybe", "true or false"),
        ("knn", "n_neighbors", "nan", "an integer in"),
        ("knn", "n_neighbors", None, "an integer in"),
    ],
)
def test_bad_values_name_the_parameter_and_the_allowed_values(key, name, value, allowed):
    with pytest.raises(InvalidParameterError) as info:
        get_spec(key).param(name).coerce(value, key)
    message = str(info.value)
    assert repr(name) in message and allowed in message and key in message


def test_parse_param_args():
    assert parse_param_args(["C=0.5", "solver=liblinear", "x=a=b"]) == {"C": "0.5", "solver": "liblinear", "x": "a=b"}
    with pytest.raises(InvalidParameterError, match="NAME=VALUE"):
        parse_param_args(["oops"])
