"""Direct tests of ``core.model_policy``'s refusals: each slot rule called on a hostile value,
and the walk's own bounds (attribute names, records, object count, depth, shared parts).

In-process calls, so ``tests/test_safety_coverage.py`` sees each refusal run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from core import model_policy
from core.model_policy import PolicyError, check_model_policy

WHERE = "Estimator.slot"

RULES = [
    (model_policy.rule_dtype, "not-a-dtype", "(not a numpy dtype)"),
    (model_policy.rule_dtype, ["f8", len], "(a dtype must be a numpy type)"),
    (model_policy.rule_dtype, len, "the callable builtins.len (a dtype must be a numpy type)"),
    (model_policy.rule_reduction, np.add, "(allowed: numpy.mean"),
    (model_policy.rule_codec, "base64", "the string 'base64' (not a text encoding)"),
    (model_policy.rule_codec, "no-such-codec", "(not a text encoding)"),
    (model_policy.rule_token_pattern, r"(a+)+$", "any other expression can backtrack"),
    (model_policy.rule_attribute_path, "coef_..x", '(allowed: "auto" or a dotted name'),
    (model_policy.rule_pre_dispatch, "2**40", '(allowed: a count or "K*n_jobs")'),
    (model_policy.rule_scoring, ["accuracy", "no_such_scorer"], "the string 'no_such_scorer' (allowed: scikit-learn"),
    (model_policy.rule_score_function, len, "(allowed: scikit-learn's own univariate score functions)"),
    (model_policy.rule_metric_function, len, "(allowed: the metric functions of scikit-learn's named scorers)"),
    (model_policy.rule_cv, object(), "(allowed: an int, None or a scikit-learn splitter)"),
    (model_policy.rule_names("brute", "kd_tree"), "os.system", "(allowed: brute, kd_tree)"),
    (model_policy.rule_kmeans_single, len, "(allowed: scikit-learn's own k-means routines)"),
    (model_policy.rule_bspline_asarray, np.asarray, "(allowed: scipy's own array constructor)"),
    (model_policy.rule_name_format, 12, "(allowed: a bool or a name template of at most 200 characters)"),
    (model_policy.rule_name_format, "{feature_name}" * 20, "at most 200 characters"),
    (model_policy.rule_name_format, "{feature_name", "(not a name template)"),
    (model_policy.rule_name_format, "{feature_name:>99}", "(allowed fields: {transformer_name} and {feature_name}"),
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
    monkeypatch.setattr(model_policy, "_MAX_OBJECTS", 50)  # the bound (5,000,000), lowered to keep the test fast
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
