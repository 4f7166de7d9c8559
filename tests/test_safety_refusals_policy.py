"""Direct tests of ``core.safety.policy*``'s refusals: each slot rule called on a hostile value,
and the walk's own bounds (attribute names, records, object count, depth, shared parts).

In-process calls, so ``tests/test_safety_coverage.py`` sees each refusal run.
"""

from __future__ import annotations

import functools
import io
from typing import Any

import numpy as np
import pytest
from sklearn.decomposition import NMF
from sklearn.gaussian_process.kernels import DotProduct
from sklearn.linear_model import LogisticRegression

from core.safety import policy, policy_owners, policy_rules
from core.safety.policy import check_model_policy
from core.safety.policy_code import PolicyError

WHERE = "Estimator.slot"

RULES = [
    (policy_rules.rule_dtype, "not-a-dtype", "(not a numpy dtype)"),
    (policy_rules.rule_dtype, ["f8", len], "(a dtype must be a numpy type)"),
    (policy_rules.rule_dtype, len, "the callable builtins.len (a dtype must be a numpy type)"),
    (policy_rules.rule_reduction, np.add, "(allowed: numpy.mean"),
    (policy_rules.rule_codec, "base64", "the string 'base64' (not a text encoding)"),
    (policy_rules.rule_codec, "no-such-codec", "(not a text encoding)"),
    (policy_rules.rule_token_pattern, r"(a+)+$", "any other expression can backtrack"),
    (policy_rules.rule_attribute_path, "coef_..x", '(allowed: "auto" or a dotted name'),
    (policy_rules.rule_pre_dispatch, "2**40", '(allowed: a count or "K*n_jobs")'),
    (policy_rules.rule_scoring, ["accuracy", "no_such_scorer"], "the string 'no_such_scorer' (allowed: scikit-learn"),
    (policy_rules.rule_score_function, len, "(allowed: scikit-learn's own univariate score functions)"),
    (policy_rules.rule_metric_function, len, "(allowed: the metric functions of scikit-learn's named scorers)"),
    (policy_rules.rule_cv, object(), "(allowed: an int, None or a scikit-learn splitter)"),
    (policy_rules.rule_names("brute", "kd_tree"), "os.system", "(allowed: brute, kd_tree)"),
    (policy_rules.rule_kmeans_single, len, "(allowed: scikit-learn's own k-means routines)"),
    (policy_rules.rule_bspline_asarray, np.asarray, "(allowed: scipy's own array constructor)"),
    (policy_rules.rule_name_format, 12, "(allowed: a bool or a name template of at most 200 characters)"),
    (policy_rules.rule_name_format, "{feature_name}" * 20, "at most 200 characters"),
    (policy_rules.rule_name_format, "{feature_name", "(not a name template)"),
    (policy_rules.rule_name_format, "{feature_name:>99}", "(allowed fields: {transformer_name} and {feature_name}"),
    (policy_rules.rule_dtype, "(2000,2000)f8", "(allowed: numeric, bool, object or short text scalars)"),
    (policy_rules.rule_pure_function, functools.partial(print), "a partial of the callable builtins.print ("),
    (policy_rules.rule_pure_function, print, "(allowed: None or numpy.abs"),
    (policy_rules.rule_no_arguments, {"out": 1}, "keyword arguments for its function"),
    (policy_rules.rule_none, print, "(only None is allowed here)"),
    (policy_rules.rule_content, "filename", '(only "content" is allowed'),
    (policy_rules.rule_data, np.memmap, "the class numpy.memmap"),
    (policy_rules.rule_column_pattern, "(a+)+", "no repetition"),
    (policy_rules.rule_metric, "os.system", "(a metric or kernel must be one of scikit-learn's names)"),
    (policy_rules.rule_n_jobs, 30_000, "the number 30000 (allowed: None or a count between -256 and 256)"),
    (policy_rules.rule_output_config, "xml", "(allowed: default, pandas, polars)"),
    (policy_owners.rule_libsvm_kernel, DotProduct(), "(allowed: linear, poly, precomputed, rbf, sigmoid; never a"),
    (policy_owners.rule_metric_name, DotProduct(), "(allowed: a metric name; never a callable metric)"),
    (policy_owners.rule_no_kernel_object, DotProduct(), "(kernel objects belong to Gaussian processes only)"),
]


@pytest.mark.parametrize(
    ("rule", "value", "words"), RULES, ids=[f"{getattr(r, '__name__', 'rule')}-{w[:20]}" for r, _v, w in RULES]
)
def test_each_slot_rule_refuses_a_hostile_value(rule, value: Any, words: str) -> None:
    with pytest.raises(PolicyError) as caught:
        rule(value, WHERE)
    message = str(caught.value)
    assert message.startswith(f"Refused: {WHERE} holds "), message
    assert words in message, message


def test_an_attribute_name_that_is_not_text_is_refused() -> None:
    model = LogisticRegression()
    model.__dict__[1] = "x"
    with pytest.raises(PolicyError, match=r"LogisticRegression \(an attribute name\) holds a builtins.int \(attri"):
        check_model_policy(model)


def test_a_model_with_more_objects_than_the_bound_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(policy, "_MAX_OBJECTS", 50)  # the bound (5,000,000), lowered to keep the test fast
    with pytest.raises(PolicyError, match="the model holds more than 50 objects"):
        check_model_policy([[i] for i in range(100)])


def test_a_model_nested_deeper_than_the_walk_allows_is_refused() -> None:
    nested: list = []
    for _ in range(250):
        nested = [nested]
    with pytest.raises(PolicyError, match="nests objects more than 200 levels deep"):
        check_model_policy(nested)


def test_parts_shared_into_an_exponential_graph_are_refused() -> None:
    shared: tuple = ()
    for _ in range(40):
        shared = (shared, shared)  # 80 objects; 2**40 when followed path by path
    with pytest.raises(PolicyError, match="followed path by path, number more than 10,000,000"):
        check_model_policy(shared)


def test_a_transform_that_loops_past_the_bound_is_refused() -> None:
    with pytest.raises(PolicyError, match=r"the number 100000000000 \(allowed: 1 to 100,000: transform loops"):
        policy_rules._check_predict_loop(NMF(), "max_iter", 10**11, WHERE)


def test_a_string_outside_a_parameters_declared_options_is_refused() -> None:
    with pytest.raises(PolicyError, match=r"the string 'nope' \(scikit-learn allows: .*lbfgs"):
        policy._check_declared_string(LogisticRegression(), "solver", "nope", WHERE)


def _with(**attributes: Any) -> LogisticRegression:
    model = LogisticRegression()
    model.__dict__.update(attributes)
    return model


WALK_CASES = [
    (_with(__reduce__=1), "LogisticRegression.__reduce__ holds", "special attributes are the class's own"),
    (_with(predict=1), "LogisticRegression.predict holds", "in place of what its class defines there"),
    ([io.BytesIO()], "a _io.BytesIO (file-backed arrays, files, sockets", "Python-function metrics never"),
    ([print], "list[0] holds the callable builtins.print", "which a model from elsewhere may not hold"),
    (_with(helper_=DotProduct()), "LogisticRegression.helper_ holds", "a callable object, allowed only where"),
]


@pytest.mark.parametrize(("model", "where", "words"), WALK_CASES, ids=[w[:30] for _m, _w, w in WALK_CASES])
def test_the_walk_refuses_code_files_and_hidden_methods_in_any_slot(model: Any, where: str, words: str) -> None:
    with pytest.raises(PolicyError) as caught:
        check_model_policy(model)
    assert where in str(caught.value) and words in str(caught.value), str(caught.value)
