"""Bounds on a plain-parameter document read from elsewhere, checked before anything is built from it.

A parameter JSON holds no code, but its numbers drive code that trusts them: a tree whose child
links form a cycle makes scikit-learn's compiled ``predict`` (and the numpy predictor) walk for
ever; a ``classes_dtype`` such as ``S2000000000`` makes numpy allocate gigabytes for a few class
labels; a few numbers multiplied (classes x features in a synthetic fit, categories x features
in a preprocessing rebuild) can ask for more memory than the file's size suggests. So, before
``to_sklearn`` touches numpy:

- ``classes_dtype`` is one of a short list, classes and features are bounded in count;
- every tree's child links must form a tree: children in range, each node reached exactly once
  from the root (no cycle, no shared node, no orphan), split features below the input width;
- products that size a rebuild's arrays are bounded.

The file itself is bounded by the upload limit (``core.settings``) before it is parsed:
``read_params`` is the one way a document from elsewhere is read (bounded, parsed, envelope and
schema version checked, then ``check_document``).
"""

from __future__ import annotations

import json
from typing import Any

from core.errors import FormatError
from core.portable.params_predict import FORMAT, MODEL_TYPES, READABLE, SCHEMA_VERSION
from core.settings import load_settings

CLASSES_DTYPES = ("int64", "float64", "bool", "object")
MAX_CLASSES = 10_000
MAX_FEATURES = 100_000
MAX_NODES = 10_000_000
#: The largest table a rebuild may make up from the document's counts (cells).
MAX_CELLS = 10_000_000


def _bad(text: str) -> FormatError:
    return FormatError(f"The parameter file's {text}")


def _ints(values: Any, where: str) -> list[int]:
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise _bad(f"{where} is not a list of whole numbers")
    return values


def check_links(left: Any, right: Any, where: str, is_leaf: Any = None) -> list[bool]:
    """Child links that form one tree rooted at node 0; returns which nodes are leaves.

    Without ``is_leaf`` a leaf is a node whose two children are -1 (scikit-learn's ``TREE_LEAF``).
    """
    left, right = _ints(left, f"{where} left children"), _ints(right, f"{where} right children")
    n = len(left)
    if not 0 < n <= MAX_NODES or len(right) != n or (is_leaf is not None and len(is_leaf) != n):
        raise _bad(f"{where} has node arrays that are empty, too long or not the same length")
    if is_leaf is not None:
        leaves = [bool(v) for v in is_leaf]
    else:
        leaves = [a == -1 and b == -1 for a, b in zip(left, right, strict=True)]
    seen = bytearray(n)
    stack = [0]
    reached = 0
    while stack:
        node = stack.pop()
        if seen[node]:
            raise _bad(f"{where} reaches node {node} more than once: its links hold a cycle or a shared node")
        seen[node] = 1
        reached += 1
        if leaves[node]:
            continue
        for child in (left[node], right[node]):
            if not 0 <= child < n:
                raise _bad(f"{where} has a child link out of range at node {node} ({child}; {n} nodes)")
            stack.append(child)
    if reached != n:
        raise _bad(f"{where} has {n - reached} node(s) not reached from the root")
    return leaves


def _check_features(features: Any, leaves: list[bool], width: int, where: str) -> None:
    features = _ints(features, f"{where} feature")
    if len(features) != len(leaves):
        raise _bad(f"{where} feature array is not the same length as its node arrays")
    for node, (feature, leaf) in enumerate(zip(features, leaves, strict=True)):
        if not leaf and not 0 <= feature < width:
            raise _bad(f"{where} splits node {node} on feature {feature}, outside the {width} inputs")


def _tree(tree: Any, width: int, where: str) -> None:
    if not isinstance(tree, dict):
        raise _bad(f"{where} is not a JSON object")
    leaves = check_links(tree.get("children_left"), tree.get("children_right"), where)
    _check_features(tree.get("feature"), leaves, width, where)


def _hist_tree(nodes: Any, width: int, where: str) -> None:
    if not isinstance(nodes, dict) or not isinstance(nodes.get("is_leaf"), list):
        raise _bad(f"{where} is not a node table with is_leaf")
    leaves = check_links(nodes.get("left"), nodes.get("right"), where, nodes["is_leaf"])
    _check_features(nodes.get("feature_idx"), leaves, width, where)


def _lists(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(f"{where} is not a list")
    return value


def input_width(params: dict[str, Any]) -> int:
    """How many columns the estimator sees: the features, or what the preprocessing makes of them."""
    preprocess = params.get("preprocess")
    if not preprocess:
        return len(params["features"])
    width = 0
    for block in preprocess["blocks"]:
        if block["kind"] == "numeric":
            width += len(block["columns"])
        else:
            width += sum(len(c) for c in block["steps"][-1]["categories"])
    return width


def check_document(params: dict[str, Any]) -> None:
    """Every bound above on an already-parsed document whose envelope ``read_params`` has checked."""
    dtype = params.get("classes_dtype")
    if dtype not in CLASSES_DTYPES:
        raise _bad(f"classes_dtype {str(dtype)[:40]!r} is not one of: {', '.join(CLASSES_DTYPES)}")
    classes = _lists(params.get("classes"), "classes")
    if not 1 <= len(classes) <= MAX_CLASSES:
        raise _bad(f"classes has {len(classes)} entries (1 to {MAX_CLASSES} are read)")
    if not all(v is None or isinstance(v, (str, int, float, bool)) for v in classes):
        raise _bad("classes holds something other than plain labels")
    features = _lists(params.get("features"), "features")
    if len(features) > MAX_FEATURES:
        raise _bad(f"features has more than {MAX_FEATURES} entries")
    try:
        width = input_width(params)
        categories = [
            len(c)
            for block in (params.get("preprocess") or {}).get("blocks", [])
            for step in block["steps"]
            if step.get("type") == "one_hot_encoder"
            for c in step["categories"]
        ]
    except (KeyError, TypeError, AttributeError) as exc:
        raise _bad(f"preprocessing is malformed ({type(exc).__name__}: {exc})") from exc
    if width > MAX_FEATURES:
        raise _bad(f"model has {width} inputs (at most {MAX_FEATURES} are read)")
    if len(classes) * 4 * max(width, 1) > MAX_CELLS or max(categories, default=2) * len(features) > MAX_CELLS:
        raise _bad(f"classes, categories and features would make a table over {MAX_CELLS:,} cells to rebuild")
    model = params["model"]
    kind = model["type"]
    if kind == "tree":
        _tree(model.get("tree"), width, "tree")
    elif kind == "forest":
        for i, tree in enumerate(_lists(model.get("trees"), "forest trees")):
            _tree(tree, width, f"tree {i}")
    elif kind == "gradient_boosting":
        for i, stage in enumerate(_lists(model.get("trees"), "gradient boosting trees")):
            for k, tree in enumerate(_lists(stage, f"stage {i}")):
                _tree(tree, width, f"tree {i}.{k}")
    elif kind == "hist_gradient_boosting":
        for i, iteration in enumerate(_lists(model.get("predictors"), "predictors")):
            for k, nodes in enumerate(_lists(iteration, f"iteration {i}")):
                _hist_tree(nodes, width, f"tree {i}.{k}")


def read_params(data: bytes | str | dict[str, Any], max_bytes: int | None = None) -> dict[str, Any]:
    """Parse and check a plain-parameter document (no code is ever run).

    The text is bounded (``max_bytes``, the upload limit by default) before it is parsed, and the
    document is checked by ``check_document`` (class dtypes from a short list,
    bounded counts, child links that form trees) before anything is built from it.
    """
    if isinstance(data, dict):
        params = data
    else:
        if max_bytes is None:
            max_bytes = load_settings().max_upload_bytes
        if len(data) > max_bytes:
            raise FormatError(f"The parameter file is {len(data):,} bytes, over the upload limit of {max_bytes:,}")
        try:
            params = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise FormatError(f"Not a JSON parameter file: {type(exc).__name__}: {exc}") from exc
    if not isinstance(params, dict) or params.get("format") != FORMAT:
        raise FormatError(f'Not a ModelShelf parameter file (expected "format": "{FORMAT}")')
    if params.get("schema_version") not in READABLE:
        raise FormatError(
            f"Unsupported schema_version {params.get('schema_version')!r}: "
            f"this ModelShelf reads versions {', '.join(map(str, READABLE))} (up to {SCHEMA_VERSION})"
        )
    for key in ("features", "classes", "classes_dtype", "model", "estimator"):
        if key not in params:
            raise FormatError(f"The parameter file lacks the field {key!r}")
    kind = params["model"].get("type") if isinstance(params["model"], dict) else None
    if kind not in MODEL_TYPES:
        raise FormatError(f"Unknown model type {kind!r} in the parameter file; known: {', '.join(MODEL_TYPES)}")
    if MODEL_TYPES[kind] > params["schema_version"]:
        raise FormatError(f"The model type {kind!r} needs schema_version {MODEL_TYPES[kind]} or later")
    check_document(params)
    return params
