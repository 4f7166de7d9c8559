"""Structural fuzzing: mutate fitted models (shapes, indices, node links, feature counts), not bytes.

A byte fuzzer (``fuzz_safe_load.py``) mostly breaks the pickle stream. This one keeps the file
well-formed and breaks what scikit-learn's compiled code trusts: tree node links and feature
indices, ``n_features_in_``, array shapes and dtypes, boosting ``estimators_`` grids, neighbour
index arrays, support-vector counts. Each mutated model is pickled and loaded the way a
stranger's upload is, in the sandboxed model worker (``core.safety.worker``), which also predicts with
whatever loads; a worker that dies is replaced and the mutation that killed it is recorded.

    python tests/fuzz_structure.py --seconds 600 --seed 1     # a longer run
    python tests/fuzz_structure.py --seconds 60 --json        # what tests/test_fuzz.py runs

Outcomes: ``refused`` (a ModelShelfError), ``loaded`` (then predict answered or was refused),
``contained`` (the worker died, a segfault or abort in compiled code the checks missed, and this
process carried on), ``bad`` (any other exception reached this process). Exit code 0 when
nothing was bad; ``contained`` cases are listed as findings for the structure checks.
The time bound comes from ``--seconds`` or ``MODELSHELF_FUZZ_SECONDS``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import pickle
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def seed_models() -> dict[str, tuple[Any, int]]:
    """Fitted models whose structures compiled code walks by index, with their feature count."""
    import numpy as np
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.datasets import load_iris
    from sklearn.ensemble import (
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import ElasticNet, LinearRegression, LogisticRegression, Ridge
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, SVR
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    X, y = load_iris(return_X_y=True)
    binary = (y > 0).astype(int)
    yr = X[:, 0] * 2.0 + np.arange(len(y)) % 3
    return {
        "tree": (DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y), 4),
        "forest": (RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(X, y), 4),
        "extra_reg": (ExtraTreesRegressor(n_estimators=3, max_depth=4, random_state=0).fit(X, yr), 4),
        "gb_multi": (GradientBoostingClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X, y), 4),
        "gb_binary": (GradientBoostingClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X, binary), 4),
        "gb_reg": (GradientBoostingRegressor(n_estimators=3, max_depth=2, random_state=0).fit(X, yr), 4),
        "hgb": (HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, y), 4),
        "hgb_reg": (HistGradientBoostingRegressor(max_iter=3, random_state=0).fit(X, yr), 4),
        "knn_kd": (KNeighborsClassifier(algorithm="kd_tree").fit(X, y), 4),
        "knn_ball": (KNeighborsRegressor(algorithm="ball_tree").fit(X, yr), 4),
        "knn_brute": (KNeighborsClassifier(algorithm="brute").fit(X, y), 4),
        "svc": (SVC(probability=False).fit(X, y), 4),
        "svr": (SVR().fit(X, yr), 4),
        "pipeline": (make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y), 4),
        # regressors (issue 14): linear shapes, trees, the target transform, a Minkowski KD-tree
        "linear_reg": (LinearRegression().fit(X, yr), 4),
        "elastic_net": (ElasticNet(alpha=0.01).fit(X, yr), 4),
        "tree_reg": (DecisionTreeRegressor(max_depth=4, random_state=0).fit(X, yr), 4),
        "forest_reg": (RandomForestRegressor(n_estimators=3, max_depth=4, random_state=0).fit(X, yr), 4),
        "ridge_pipeline": (make_pipeline(StandardScaler(), Ridge()).fit(X, yr), 4),
        "log_target": (
            TransformedTargetRegressor(regressor=Ridge(), func=np.log1p, inverse_func=np.expm1).fit(X, yr),
            4,
        ),
        "knn_minkowski": (KNeighborsRegressor(algorithm="kd_tree", p=3).fit(X, yr), 4),
    }


# -- finding and mutating the structures ------------------------------------------------------------


def _holders(model: Any) -> list[tuple[Any, str]]:
    """(object, attribute) pairs reachable from ``model`` whose value can be mutated."""
    from sklearn.tree._tree import Tree

    found: list[tuple[Any, str]] = []
    seen: set[int] = set()
    stack = [model]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, Tree):
            found.append((obj, "<tree>"))
            continue
        if isinstance(obj, (list, tuple)):
            stack.extend(obj)
            continue
        state = getattr(obj, "__dict__", None)
        if not isinstance(state, dict):
            continue
        for key, value in state.items():
            found.append((obj, key))
            if not isinstance(value, (str, bytes, int, float)):
                import numpy as np

                if isinstance(value, np.ndarray) and value.dtype.hasobject:
                    stack.extend(value.ravel().tolist())
                elif not isinstance(value, np.ndarray):
                    stack.append(value)
    return found


def _mutate_array(array: Any, rng: random.Random) -> Any:
    import numpy as np

    choice = rng.randrange(7)
    if choice == 0 and array.ndim >= 1 and array.shape[0] > 0:
        return array[: rng.randrange(array.shape[0])]
    if choice == 1:
        if array.ndim != 1:
            return array
        return np.concatenate([array, array[:1] * 0 + rng.choice([-1, 2**31 - 1, 7, 10**6])])
    if choice == 2 and array.size:
        mutated = array.copy()
        flat = mutated.reshape(-1)
        index = rng.randrange(flat.size)
        if mutated.dtype.kind in "iu":
            flat[index] = rng.choice([-2, -1, 0, 1, 2**30, np.iinfo(mutated.dtype).max, flat.size])
        elif mutated.dtype.kind == "f":
            flat[index] = rng.choice([np.nan, np.inf, -1e308, 2.0**40])
        elif mutated.dtype.names:
            field = rng.choice(mutated.dtype.names)
            if mutated.dtype[field].kind in "iu":
                flat[field][index] = rng.choice([-2, -1, 0, 2**30, flat.size, flat.size + 1])
            elif mutated.dtype[field].kind == "f":
                flat[field][index] = rng.choice([np.nan, np.inf, 2.0**40])
        return mutated
    if choice == 3 and array.dtype.kind in "iuf" and not array.dtype.names:
        return array.astype(rng.choice([np.int32, np.int64, np.float32, np.float64, np.uint8]))
    if choice == 4 and array.ndim == 2:
        return array.T.copy()
    if choice == 5 and array.ndim >= 1:
        return array.reshape(-1)
    return array[::-1].copy() if array.ndim >= 1 else array


def _mutate_tree(tree: Any, rng: random.Random) -> None:
    state = tree.__getstate__()
    key = rng.choice(["nodes", "values", "node_count", "max_depth"])
    if key in ("node_count", "max_depth"):
        state[key] = rng.choice([0, 1, state[key] + 1, state[key] * 2])
    else:
        state[key] = _mutate_array(state[key], rng)
    # scikit-learn's own state check may refuse it: then the tree is left as it was.
    with contextlib.suppress(ValueError, TypeError, KeyError):
        tree.__setstate__(state)


def mutate(model: Any, rng: random.Random) -> str:
    """Change one structural thing in ``model`` in place; returns what was changed."""
    import numpy as np

    holders = _holders(model)
    obj, key = rng.choice(holders)
    if key == "<tree>":
        _mutate_tree(obj, rng)
        return f"{type(obj).__name__} state"
    value = obj.__dict__[key]
    label = f"{type(obj).__name__}.{key}"
    if key.endswith("_") and rng.random() < 0.15:
        del obj.__dict__[key]
        return f"removed {label}"
    if isinstance(value, (bool, np.bool_)):
        obj.__dict__[key] = not value
    elif isinstance(value, (int, np.integer)):
        obj.__dict__[key] = rng.choice([0, -1, 1, int(value) + 1, 2**30, 2**63 - 1])
    elif isinstance(value, (float, np.floating)):  # alpha, p, tol...: the values compiled code divides by
        obj.__dict__[key] = rng.choice([float("nan"), float("inf"), -1.0, 0.0, 1e308])
    elif isinstance(value, np.ndarray):
        obj.__dict__[key] = _mutate_array(value, rng)
    elif isinstance(value, list) and value:
        mutated = list(value)
        action = rng.randrange(3)
        if action == 0:
            mutated.pop(rng.randrange(len(mutated)))
        elif action == 1:
            mutated.append(copy.deepcopy(rng.choice(mutated)))
        else:
            rng.shuffle(mutated)
        obj.__dict__[key] = mutated
    else:
        return f"left {label}"
    return f"mutated {label}"


# -- the run --------------------------------------------------------------------------------------


def load_through_worker(pool: Any, data: bytes, width: int) -> dict[str, str]:
    """Load one mutated file the way a stranger's upload is loaded, then predict with it there."""
    import numpy as np

    from core.errors import ModelShelfError
    from core.safety import LoadLimits, load_in_worker

    limits = LoadLimits(max_bytes=50_000_000, max_decompressed_bytes=200_000_000, timeout_s=20)
    try:
        model = load_in_worker(data, limits, pool=pool)
    except ModelShelfError as exc:
        outcome = "contained" if "crashed the loader" in str(exc) else "refused"
        return {"outcome": outcome, "why": str(exc)[:160]}
    try:
        model.predict(np.random.default_rng(0).random((5, width)))
    except ModelShelfError as exc:
        if "crashed the loader" in str(exc):
            return {"outcome": "contained", "why": "predict: " + str(exc)[:160]}
        return {"outcome": "loaded", "why": "predict refused"}
    return {"outcome": "loaded", "why": "predicted"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("MODELSHELF_FUZZ_SECONDS", "60")))
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", action="store_true", help="print one JSON summary line")
    args = parser.parse_args(argv)

    import warnings

    warnings.simplefilter("ignore")
    from core.safety import WorkerPool

    rng = random.Random(args.seed)
    seeds = seed_models()
    pool = WorkerPool(size=1)
    outcomes: Counter[str] = Counter()
    problems: list[dict[str, str]] = []
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        name = rng.choice(sorted(seeds))
        model, width = seeds[name]
        mutated = copy.deepcopy(model)
        try:
            changes = [mutate(mutated, rng) for _ in range(rng.randint(1, 3))]
            data = pickle.dumps(mutated, protocol=5)
        except (ValueError, TypeError, OverflowError, IndexError, KeyError, MemoryError, pickle.PicklingError):
            continue  # a mutation numpy or the pickler itself refuses to make: not a file
        try:
            result = load_through_worker(pool, data, width)
        except Exception as exc:  # noqa: BLE001 - anything but a ModelShelfError escaping is a finding
            result = {"outcome": "bad", "why": f"{type(exc).__name__}: {exc}"[:300]}
        outcomes[result["outcome"]] += 1
        if result["outcome"] != "refused" and result["outcome"] != "loaded":
            problems.append({"model": name, "changes": "; ".join(changes), **result})
    pool.close()
    summary = {"seconds": args.seconds, "seed": args.seed, "outcomes": dict(outcomes), "problems": problems[:20]}
    if args.json:
        print(json.dumps(summary))
    else:
        print(json.dumps(summary, indent=2))
    bad = [p for p in problems if p["outcome"] == "bad"]
    return 0 if not bad else 1


if __name__ == "__main__":
    raise SystemExit(main())
