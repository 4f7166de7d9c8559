"""The shape of ``core/portable``: the shipped predictor stands alone, no import cycle, short modules."""

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


def _portable_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PORTABLE.glob("*.py"):
        module = f"core.portable.{path.stem}"
        targets = set()
        for _, name in _imports(ast.parse(path.read_text())):
            for candidate in (name, name.rpartition(".")[0]):
                if candidate.startswith("core.portable.") and (PORTABLE / f"{candidate.split('.')[2]}.py").exists():
                    targets.add("core.portable." + candidate.split(".")[2])
                    break
        graph[module] = targets - {module}
    return graph


def test_no_import_cycle_inside_portable():
    """Module-level and function-level imports both count: a cycle dodged inside a function is still one."""
    graph = _portable_graph()
    assert "core.portable.derived" in graph["core.portable.bundle"]  # the walk does see imports
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            assert state.get(target) != 1, "import cycle: " + " -> ".join([*path, target])
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_portable_modules_are_at_most_500_lines():
    lengths = {path.name: len(path.read_text().splitlines()) for path in PORTABLE.glob("*.py")}
    assert len(lengths) > 10
    assert {name: n for name, n in lengths.items() if n > 500} == {}
