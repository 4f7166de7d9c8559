"""The shipped predictor stands alone (numpy and the standard library); core's shape is in test_architecture."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from core.portable import params_export
from core.portable.how_to_load import predictor_source

PORTABLE = Path(__file__).resolve().parent.parent / "core" / "portable"
STDLIB_AND_NUMPY = {"__future__", "math", "collections", "typing", "numpy"}


def _imports(tree: ast.AST) -> list[tuple[ast.stmt, str]]:
    """Every import in a module, at any depth, with the module it names."""
    found: list[tuple[ast.stmt, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [(node, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def test_the_shipped_predictor_imports_only_numpy_and_the_standard_library():
    source = predictor_source()
    names = {name.split(".")[0] for _, name in _imports(ast.parse(source))}
    assert names <= STDLIB_AND_NUMPY, names - STDLIB_AND_NUMPY
    assert "def knn_scores(" in source and "def predict(" in source


def test_the_shipped_predictor_runs_where_modelshelf_is_not(tmp_path):
    """k-NN (its code comes from another module), SVC and a tree, predicted by predict_params.py
    alone in a fresh interpreter where importing ``core`` fails: the labels are scikit-learn's."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 3)).round(1)  # rounded: ties at the k-th distance, the KD-tree walk decides
    y = rng.integers(0, 3, 200)
    queries = np.vstack([X[:40], rng.normal(size=(60, 3)).round(1)])
    models = {
        "knn": KNeighborsClassifier(n_neighbors=4, weights="distance").fit(X, y),
        "svc": SVC(kernel="poly", degree=3).fit(X, y),
        "tree": DecisionTreeClassifier(max_depth=5, random_state=0).fit(X, y),
    }
    assert params_export.to_params(models["knn"])["model"]["algorithm"] == "kd_tree"
    for key, model in models.items():
        (tmp_path / f"{key}.json").write_text(json.dumps(params_export.to_params(model)))
    (tmp_path / "queries.json").write_text(json.dumps(queries.tolist()))
    (tmp_path / "predict_params.py").write_text(predictor_source())
    (tmp_path / "run.py").write_text(
        "import json, sys\n"
        "sys.modules['core'] = None  # any import of ModelShelf fails here\n"
        "from predict_params import predict\n"
        "rows = json.load(open('queries.json'))\n"
        "print(json.dumps({k: predict(json.load(open(k + '.json')), rows).tolist() for k in ('knn', 'svc', 'tree')}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-E", "-s", "run.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    predicted = json.loads(done.stdout)
    for key, model in models.items():
        assert predicted[key] == model.predict(queries).tolist(), key
