"""Checks on linear models: coefficients and intercepts that fit the model's features and outputs.

A linear model predicts ``X @ coef_.T + intercept_`` with numpy, which checks what it can and
broadcasts the rest: an ``intercept_`` of three entries gave each of three rows its own offset
(and failed on any other number of rows), a ``coef_`` of three rows turned one prediction per
row into three. Nothing compiled reads past an array here, so these are about a model that
cannot predict what it claims, refused at load rather than at the first predict.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from core.safety.checks import _bad, _features_of


def _check_linear_model(model: Any) -> None:
    """``coef_``: numbers, 1-D or 2-D, ``n_features_in_`` wide; ``intercept_``: a number or one
    per row of ``coef_``."""
    state = vars(model)
    coef = state.get("coef_")
    if coef is None:
        return
    what = "linear model"
    n_features = _features_of(model, what)
    dense = isinstance(coef, np.ndarray) and coef.dtype.kind in "iuf"
    if not (dense or sparse.issparse(coef)) or coef.ndim not in (1, 2):
        raise _bad(what, "its coef_ is not a 1-D or 2-D array of numbers")
    if coef.shape[-1] != n_features:
        raise _bad(what, f"its coef_ has {coef.shape[-1]} column(s), the model {n_features} features")
    outputs = 1 if coef.ndim == 1 else coef.shape[0]
    intercept = state.get("intercept_", 0.0)
    if isinstance(intercept, (int, float, np.integer, np.floating)) and not isinstance(intercept, (bool, np.bool_)):
        return
    if (
        not isinstance(intercept, np.ndarray)
        or intercept.dtype.kind not in "iuf"
        or intercept.ndim > 1
        or intercept.size not in (1, outputs)
    ):
        raise _bad(what, f"its intercept_ is not a number or {outputs} number(s), one per output")
