"""run_onnx feeds a frame by column name, whatever the frame's column order (the fast path included)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from core.errors import DatasetError
from core.formats import sha256_bytes
from core.portable.onnx_export import convert
from core.portable.onnx_runtime import run_onnx


@pytest.fixture(scope="module")
def exported():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 4)), columns=["a", "b", "c", "d"])
    y = (X["a"] + 2 * X["c"] > 0).astype(int)
    model = RandomForestClassifier(10, random_state=0).fit(X, y)
    data, _layout = convert(model, X)
    return model, data, sha256_bytes(data), X


def test_same_answers_in_order_reordered_and_with_extra_columns(exported):
    model, data, sha, X = exported
    expected = model.predict(X)
    for frame in (X, X[["d", "c", "b", "a"]], X.assign(extra=1.0)[["extra", "b", "a", "d", "c"]]):
        labels, _proba = run_onnx(data, frame, sha)
        assert labels.tolist() == expected.tolist()
    one, _ = run_onnx(data, X.iloc[[3]], sha)  # and one row, twice (the session's plan is reused)
    again, _ = run_onnx(data, X.iloc[[3]][["c", "a", "d", "b"]], sha)
    assert one.tolist() == again.tolist() == expected[[3]].tolist()


def test_a_missing_column_is_named(exported):
    _model, data, sha, X = exported
    with pytest.raises(DatasetError, match=r"lacks 1 feature column.*: c"):
        run_onnx(data, X.drop(columns=["c"]), sha)
