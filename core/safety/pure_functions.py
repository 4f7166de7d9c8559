"""The reviewed pure numpy functions a stranger's model may name and hold.

A leaf shared by the allowlist (a file may mention them) and the model policy (which slot may hold
which), so that neither imports the other.
"""

from __future__ import annotations

# -- reviewed pure functions -----------------------------------------------------------------------

#: numpy ufuncs a ``FunctionTransformer`` / ``TransformedTargetRegressor`` may hold: elementwise
#: arithmetic on the array they are given, no I/O, no object access.
PURE_UFUNCS = (
    "abs",
    "absolute",
    "arcsinh",
    "arctan",
    "cbrt",
    "ceil",
    "cos",
    "exp",
    "exp2",
    "expm1",
    "fabs",
    "floor",
    "log",
    "log10",
    "log1p",
    "log2",
    "negative",
    "positive",
    "reciprocal",
    "rint",
    "sign",
    "sin",
    "sinh",
    "sqrt",
    "square",
    "tanh",
    "trunc",
)

#: numpy reductions ``FeatureAgglomeration(pooling_func=...)`` may hold.
PURE_REDUCTIONS = ("mean", "median", "max", "min", "sum", "amax", "amin")
