"""Structures scikit-learn's compiled code trusts, loader hangs and memory bombs: refused, never run.

Every hostile file is built here, in the test. Files that crashed the interpreter before the
checks existed (a C stack overflow, an out-of-bounds write) are loaded in a child process that
calls the in-process loader (``core.safety.loader``) and, if the model loads, predicts on zero rows of the
model's width: the child must exit cleanly and print the refusal.
"""

from __future__ import annotations

import copy
import copyreg
import gzip
import io
import lzma
import pickle
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import (
    AdaBoostClassifier,
    BaggingClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    IsolationForest,
    RandomForestClassifier,
    RandomTreesEmbedding,
    StackingClassifier,
    VotingClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.tree._tree import Tree

from core.errors import FormatError, UnsafeModelError
from core.formats import dumps
from core.safety import LoadLimits
from core.safety.loader import _load_untrusted as load_untrusted

ROOT = Path(__file__).resolve().parent.parent
LIMITS = LoadLimits(max_bytes=100_000_000, max_decompressed_bytes=100_000_000, timeout_s=60)
HUGE_FEATURE = 2**30

#: Loads argv[1] with the safe loader; if it loads, predicts on zeros of the model's width.
CHILD = """
import sys
import numpy as np
from core.errors import ModelShelfError
from core.safety import LoadLimits
from core.safety.loader import _load_untrusted as load_untrusted
data = open(sys.argv[1], "rb").read()
try:
    loaded = load_untrusted(data, limits=LoadLimits(100_000_000, 100_000_000, 60))
except ModelShelfError as exc:
    print("REFUSED", type(exc).__name__, str(exc))
    sys.exit(0)
width = int(getattr(loaded.model, "n_features_in_", 4))
print("LOADED", flush=True)
loaded.model.predict(np.zeros((50, width), dtype=np.float32))
print("PREDICTED", flush=True)
"""


def _in_child(tmp_path: Path, data: bytes) -> str:
    """Load ``data`` in a child process: it must exit cleanly, whatever the file does."""
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=180, cwd=ROOT
    )
    assert proc.returncode == 0, f"child exited with {proc.returncode}: {proc.stdout[-500:]} {proc.stderr[-800:]}"
    return proc.stdout


def _refused_in_child(tmp_path: Path, data: bytes, *expected: str) -> None:
    out = _in_child(tmp_path, data)
    assert out.startswith("REFUSED UnsafeModelError"), out[-800:]
    assert "\n" not in out.strip(), out
    for text in expected:
        assert text in out, out


def _refused(data: bytes, *expected: str, error: type = UnsafeModelError, limits: LoadLimits = LIMITS) -> str:
    with pytest.raises(error) as caught:
        load_untrusted(data, limits=limits)
    message = str(caught.value)
    assert "\n" not in message
    for text in expected:
        assert text in message, message
    return message


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return X, y


def _retree(tree: Tree, n_features: int, edit=None) -> Tree:
    """A copy of ``tree`` declaring ``n_features`` features, its nodes edited by ``edit``."""
    state = tree.__getstate__()
    state["nodes"] = state["nodes"].copy()
    if edit is not None:
        edit(state["nodes"])
    new = Tree(n_features, np.asarray(tree.n_classes), tree.n_outputs)
    new.__setstate__(state)
    return new


def _split_on_huge_feature(nodes: np.ndarray) -> None:
    nodes["feature"][0] = HUGE_FEATURE


def _far_tree(estimator):
    """The estimator with a tree splitting on feature 2**30, its ``n_features_in_`` removed."""
    crafted = copy.deepcopy(estimator)
    crafted.tree_ = _retree(crafted.tree_, HUGE_FEATURE + 1, _split_on_huge_feature)
    del crafted.n_features_in_
    return crafted


# -- nesting: refused while unpickling, before anything hashes or prints it ---------------------

DEPTH = 5_000


def _deep_tuple_key(depth: int = 1_000_000) -> bytes:
    """``{((((...),),),): None}``: no globals at all; hashing the key overflowed the C stack
    (a segfault at 10**6 levels on an 8 MB stack; 10**5 fit in it here, but not everywhere)."""
    return b"\x80\x02}" + b")" + b"\x85" * depth + b"Ns."


@pytest.mark.parametrize("wrap", ["pickle", "joblib-zlib"])
def test_a_dict_keyed_by_a_deeply_nested_tuple_is_refused(tmp_path: Path, wrap: str) -> None:
    data = _deep_tuple_key()
    if wrap == "joblib-zlib":
        data = zlib.compress(data)
    _refused_in_child(tmp_path, data, "nests objects too deeply")


def _deep_list() -> bytes:
    return b"\x80\x02" + b"(" * DEPTH + b"]" + b"l" * DEPTH + b"."


def _deep_dict() -> bytes:
    return b"\x80\x02" + b"(K\x00" * DEPTH + b"}" + b"d" * DEPTH + b"."


def _deep_frozenset() -> bytes:
    return b"\x80\x04" + b"(" * DEPTH + b"\x91" * DEPTH + b"."


def _memo_get(index: int) -> bytes:
    return b"j" + struct.pack("<I", index)


def _memo_put(index: int) -> bytes:
    return b"r" + struct.pack("<I", index)


def _deep_objects() -> bytes:
    """LogisticRegression(coef_=LogisticRegression(coef_=...)): objects nested through their state."""
    cls = b"csklearn.linear_model._logistic\nLogisticRegression\n"
    out = [b"\x80\x02", cls, b")\x81", _memo_put(0), b"0"]
    for i in range(1, DEPTH):
        out += [cls, b")\x81}X\x05\x00\x00\x00coef_", _memo_get(i - 1), b"sb", _memo_put(i), b"0"]
    return b"".join([*out, _memo_get(DEPTH - 1), b"."])


def _deep_list_grown_downwards() -> bytes:
    """Each list is put in its parent first and only then given a child (through the memo)."""
    out = [b"\x80\x02]", _memo_put(0), b"0"]
    for i in range(DEPTH):
        out += [_memo_get(i), b"]", _memo_put(i + 1), b"a0"]
    return b"".join([*out, _memo_get(0), b"."])


@pytest.mark.parametrize("build", [_deep_list, _deep_dict, _deep_frozenset, _deep_objects, _deep_list_grown_downwards])
def test_deeply_nested_containers_and_objects_are_refused(build) -> None:
    _refused(build(), "nests objects too deeply")
    _refused(zlib.compress(build()), "nests objects too deeply")


# -- trees that split past the data: segfaults before ---------------------------------------------


def test_a_tree_on_feature_2_30_without_n_features_in_is_refused(tmp_path: Path, iris) -> None:
    X, y = iris
    crafted = _far_tree(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y))
    _refused_in_child(tmp_path, pickle.dumps(crafted), "n_features_in_")


def test_a_forest_and_its_trees_without_n_features_in_are_refused(tmp_path: Path, iris) -> None:
    X, y = iris
    forest = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
    forest.estimators_ = [_far_tree(member) for member in forest.estimators_]
    del forest.n_features_in_
    _refused_in_child(tmp_path, pickle.dumps(forest), "n_features_in_")


def test_a_forest_member_without_n_features_in_is_refused(tmp_path: Path, iris) -> None:
    X, y = iris
    forest = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
    forest.estimators_[1] = _far_tree(forest.estimators_[1])
    _refused_in_child(tmp_path, pickle.dumps(forest), "n_features_in_")


def _gb_with_columns(model, columns: int):
    crafted = copy.deepcopy(model)
    cells = np.empty((crafted.estimators_.shape[0], columns), dtype=object)
    cells[:, :] = crafted.estimators_[:, :1]  # the same trees, pickled once (memo references)
    crafted.estimators_ = cells
    return crafted


def test_gradient_boosting_with_200000_columns_is_refused(tmp_path: Path, iris) -> None:
    X, y = iris
    binary = GradientBoostingClassifier(n_estimators=2, max_depth=2, random_state=0).fit(X, y == 1)
    # Refused by the unpickler's expansion bound (one shared tree, 200,000 times) or the shape check.
    _refused_in_child(tmp_path, pickle.dumps(_gb_with_columns(binary, 200_000)))


def test_gradient_boosting_regressor_with_extra_columns_is_refused(tmp_path: Path, iris) -> None:
    X, y = iris
    regressor = GradientBoostingRegressor(n_estimators=2, max_depth=2, random_state=0).fit(X, y)
    _refused_in_child(tmp_path, pickle.dumps(_gb_with_columns(regressor, 200_000)))


def test_gradient_boosting_multiclass_with_too_few_columns_or_bad_cells_is_refused(iris) -> None:
    X, y = iris
    model = GradientBoostingClassifier(n_estimators=2, max_depth=2, random_state=0).fit(X, y)
    narrow = copy.deepcopy(model)
    narrow.estimators_ = narrow.estimators_[:, :2]
    _refused(pickle.dumps(narrow), "estimators_")
    wrong_cell = copy.deepcopy(model)
    wrong_cell.estimators_[1, 2] = DecisionTreeClassifier(max_depth=1).fit(X, y)
    _refused(pickle.dumps(wrong_cell), "DecisionTreeRegressor")
    far = copy.deepcopy(model)
    far.estimators_[0, 1] = _far_tree(far.estimators_[0, 1])
    _refused(pickle.dumps(far), "n_features_in_")
    wider = copy.deepcopy(model)
    wider.estimators_[1, 0].tree_ = _retree(wider.estimators_[1, 0].tree_, 40)
    wider.estimators_[1, 0].n_features_in_ = 40
    _refused(pickle.dumps(wider), "40 features")


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0),
        lambda: ExtraTreesRegressor(n_estimators=3, max_depth=3, random_state=0),
        lambda: BaggingClassifier(DecisionTreeClassifier(max_depth=3), n_estimators=3, random_state=0),
        lambda: AdaBoostClassifier(DecisionTreeClassifier(max_depth=2), n_estimators=3, random_state=0),
        lambda: IsolationForest(n_estimators=3, random_state=0),
        lambda: make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=3, random_state=0)),
        lambda: VotingClassifier(
            [("t", DecisionTreeClassifier(max_depth=2)), ("l", LogisticRegression(max_iter=1000))]
        ),
        lambda: StackingClassifier([("t", DecisionTreeClassifier(max_depth=2))], cv=2),
        lambda: GridSearchCV(DecisionTreeClassifier(), {"max_depth": [2]}, cv=2),
        lambda: make_pipeline(
            ColumnTransformer([("trees", RandomTreesEmbedding(n_estimators=3, random_state=0), [0, 1, 2, 3])]),
            LogisticRegression(max_iter=1000),
        ),
    ],
    ids=[
        "forest",
        "extra-trees",
        "bagging",
        "adaboost",
        "isolation",
        "pipeline",
        "voting",
        "stacking",
        "search",
        "column-transformer",
    ],
)
def test_every_tree_of_every_ensemble_is_checked(tmp_path: Path, iris, make) -> None:
    X, y = iris
    model = make().fit(X, y)
    if isinstance(model, GridSearchCV):  # splitter, scorer, masked arrays: another change allowlists them
        del model._checked_cv_orig, model.scorer_, model.cv_results_
    assert load_untrusted(pickle.dumps(model), limits=LIMITS).model.predict(X).tolist() == model.predict(X).tolist()
    trees = [obj for obj in _walk(model) if isinstance(obj, (DecisionTreeClassifier, DecisionTreeRegressor))]
    assert trees
    victim = trees[-1]
    victim.tree_ = _retree(victim.tree_, HUGE_FEATURE + 1, _split_on_huge_feature)
    del victim.n_features_in_
    _refused_in_child(tmp_path, pickle.dumps(model), "n_features_in_")


def _walk(obj, seen=None):
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    yield obj
    children = obj if isinstance(obj, (list, tuple)) else getattr(obj, "__dict__", {}).values()
    if isinstance(obj, np.ndarray):
        children = obj.ravel() if obj.dtype.hasobject else ()
    if isinstance(obj, dict):
        children = obj.values()
    for child in children:
        yield from _walk(child, seen)


# -- histogram gradient boosting: the binner and the trees must agree -----------------------------


@pytest.fixture(scope="module")
def hgb(iris) -> HistGradientBoostingClassifier:
    X, y = iris
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0], random_state=0)
    model.fit(_with_categories(X), y)
    assert any(p.nodes["is_categorical"].any() for it in model._predictors for p in it)
    # scikit-learn's own preprocessor (an ordinal encoder; categories 0, 1, 2 stay 0, 1, 2 and
    # come first already) is checked on its own below; without it the file needs no functools.
    model._preprocessor = None
    return model


def _with_categories(X: np.ndarray) -> np.ndarray:
    X = X.copy()
    X[:, 0] = np.digitize(X[:, 3], [0.8, 1.7])  # a categorical column: 0, 1, 2
    X[::7, 1] = np.nan
    return X


def test_the_categorical_preprocessor_must_keep_the_binner_order(iris) -> None:
    from core.safety.checks_structures import validate_model

    X, y = iris
    model = HistGradientBoostingClassifier(max_iter=3, categorical_features=[3], random_state=0)
    model.fit(_with_categories(X), y)
    validate_model(model)  # scikit-learn's own: categorical columns first, as the binner has them
    model._preprocessor.transformers_[2] = ("remainder", "passthrough", np.ones(4, dtype=bool))
    with pytest.raises(UnsafeModelError, match="preprocessor"):
        validate_model(model)


def _hgb_edit(model, edit) -> bytes:
    crafted = copy.deepcopy(model)
    edit(crafted)
    return pickle.dumps(crafted)


def _no_categorical_features(m) -> None:
    # The binner itself stays consistent (one more bin edge): only the trees' splits disagree.
    mapper = m._bin_mapper
    mapper.is_categorical_ = np.zeros_like(mapper.is_categorical_)
    mapper.n_bins_non_missing_ = mapper.n_bins_non_missing_.copy()
    mapper.n_bins_non_missing_[0] += 1


def _short_categorical_mask(m) -> None:
    m._bin_mapper.is_categorical_ = m._bin_mapper.is_categorical_[:1].copy()


def _threshold_past_bins(m) -> None:
    for trees in m._predictors:
        for predictor in trees:
            nodes = predictor.nodes
            numeric = np.flatnonzero((nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 0))
            nodes["bin_threshold"][numeric] = 254


def _bins_disagree(m) -> None:
    m._bin_mapper.n_bins_non_missing_ = m._bin_mapper.n_bins_non_missing_ + 7


def _missing_bin_moved(m) -> None:
    m._bin_mapper.missing_values_bin_idx_ = 3


def _missing_flag_not_boolean(m) -> None:
    nodes = m._predictors[1][0].nodes
    nodes["missing_go_to_left"][0] = 7


def _bitsets_too_few(m) -> None:
    for iteration in m._predictors:
        for predictor in iteration:
            predictor.raw_left_cat_bitsets = predictor.raw_left_cat_bitsets[:0].copy()


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_no_categorical_features, "categorical"),
        (_short_categorical_mask, "categorical"),
        (_threshold_past_bins, "bin"),
        (_bins_disagree, "bin"),
        (_missing_bin_moved, "missing"),
        (_missing_flag_not_boolean, "missing"),
        (_bitsets_too_few, "bitset"),
    ],
)
def test_hist_gradient_boosting_binner_and_trees_must_agree(tmp_path: Path, hgb, edit, expected: str) -> None:
    _refused_in_child(tmp_path, _hgb_edit(hgb, edit), "boosted", expected)


def test_real_hist_gradient_boosting_with_categories_and_missing_values_loads(iris, hgb) -> None:
    X = _with_categories(iris[0])
    for fmt in ("pickle", "joblib", "skops"):
        loaded = load_untrusted(dumps(hgb, fmt), limits=LIMITS)
        assert loaded.model.predict(X).tolist() == hgb.predict(X).tolist()


# -- nearest neighbours: the fitted data must be as wide as the model ----------------------------


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree", "ball_tree"])
@pytest.mark.parametrize("kind", [KNeighborsClassifier, KNeighborsRegressor])
def test_neighbours_with_one_column_for_four_features_are_refused(tmp_path: Path, iris, kind, algorithm) -> None:
    X, y = iris
    model = kind(n_neighbors=3, algorithm=algorithm).fit(X, y)
    assert load_untrusted(pickle.dumps(model), limits=LIMITS).model.predict(X).tolist() == model.predict(X).tolist()
    model._fit_X = np.ascontiguousarray(model._fit_X[:, :1])
    _refused_in_child(tmp_path, pickle.dumps(model), "neighbours", "1 column")


def test_neighbours_labels_outside_the_classes_are_refused(iris) -> None:
    X, y = iris
    model = KNeighborsClassifier(n_neighbors=3, algorithm="brute").fit(X, y)
    model._y = model._y.copy()
    model._y[0] = 1_000_000
    _refused(pickle.dumps(model), "neighbours", "label")


# -- hangs: compiled calls whose cost grows with an argument -------------------------------------

BIG_INT = b"\x8b" + struct.pack("<i", 300_000) + b"\x7f" * 300_000  # LONG4: a 300 KB integer


def _timed_refusal(data: bytes, *expected: str) -> float:
    limits = LoadLimits(max_bytes=10_000_000, max_decompressed_bytes=10_000_000, timeout_s=5)
    started = time.monotonic()
    _refused(data, *expected, limits=limits)
    return time.monotonic() - started


def test_seed_sequence_with_a_300_kb_entropy_is_refused_at_once() -> None:
    data = b"\x80\x04cnumpy.random.bit_generator\nSeedSequence\n" + BIG_INT + b"\x85R."
    assert _timed_refusal(data, "SeedSequence", "entropy") < 2


def test_seed_sequence_state_with_a_300_kb_entropy_or_a_wrong_pool_is_refused() -> None:
    def state(entropy: object, pool: object, pool_size: object, spawn_key: object = ()) -> bytes:
        seq = np.random.SeedSequence(1)
        helper, args, _ = seq.__reduce__()
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=4)
        pickler.dispatch_table = {
            np.random.SeedSequence: lambda s: (helper, args, (entropy, 0, pool, pool_size, spawn_key))
        }
        pickler.dump(seq)
        return buffer.getvalue()

    pool = np.zeros(4, dtype=np.uint32)
    assert _timed_refusal(state(10**30_000, pool, 4), "SeedSequence", "entropy") < 2
    _refused(state(1, pool, 4_000_000), "SeedSequence", "pool")
    _refused(state(1, np.zeros(2, dtype=np.uint32), 4), "SeedSequence", "pool")
    _refused(state(1, pool, 4, tuple(range(100_000))), "SeedSequence", "spawn_key")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x80\x04cnumpy\ndtype\nX" + struct.pack("<I", 300_000) + b"f8," * 100_000 + b"\x85R.", "numpy.dtype"),
        (b"\x80\x04cbuiltins\nbytes\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R.", "builtins.bytes"),
        (b"\x80\x04csklearn._loss._loss\nCyHalfTweedieLoss\n" + BIG_INT + b"\x85R.", "CyHalfTweedieLoss"),
        (b"\x80\x04cbuiltins\ncomplex\n" + BIG_INT + b"\x85R.", "builtins.complex"),
    ],
    ids=["dtype-code", "bytes-codec", "loss-big-int", "complex-big-int"],
)
def test_other_compiled_calls_take_only_small_arguments(data: bytes, expected: str) -> None:
    _refused(data, expected)


def test_a_tree_with_a_huge_class_count_is_refused() -> None:
    class Crafted:
        def __reduce__(self):
            return (Tree, (4, np.array([2**40], dtype=np.intp), 1))

    _refused(pickle.dumps(Crafted(), protocol=4), "sklearn.tree._tree.Tree", "n_classes")


# -- memory: a small compressed file that inflates ----------------------------------------------

PEAK = """
import sys, tracemalloc
from core.safety import allowlist
from core.errors import ModelShelfError
from core.safety import LoadLimits
from core.safety.loader import _load_untrusted as load_untrusted
allowlist.allowed_globals()
data = open(sys.argv[1], "rb").read()
tracemalloc.start()  # counts every Python and numpy allocation: the peak of this load alone
try:
    load_untrusted(data, limits=LoadLimits(10_000_000, int(sys.argv[2]), 60))
    print("LOADED")
except ModelShelfError as exc:
    print("REFUSED", type(exc).__name__, str(exc))
print(tracemalloc.get_traced_memory()[1])
"""


def _peak(tmp_path: Path, data: bytes, limit: int) -> tuple[str, int]:
    path = tmp_path / "bomb.bin"
    path.write_bytes(data)
    proc = subprocess.run(
        [sys.executable, "-c", PEAK, str(path), str(limit)], capture_output=True, text=True, timeout=180, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-800:]
    message, peak = proc.stdout.strip().splitlines()
    return message, int(peak)


INFLATED = 60_000_000


@pytest.mark.parametrize("method", ["zlib", "gzip", "bz2", "xz"])
def test_a_file_inflating_under_the_limit_is_held_once(tmp_path: Path, method: str) -> None:
    payload = b"\x80\x04" + b"\x00" * (INFLATED - 2)
    compress = {"zlib": zlib.compress, "gzip": gzip.compress, "bz2": None, "xz": lzma.compress}[method]
    if compress is None:
        import bz2

        compress = bz2.compress
    message, peak = _peak(tmp_path, compress(payload), INFLATED + 1_000_000)
    assert message.startswith("REFUSED FormatError"), message
    assert peak < 1.3 * INFLATED, f"peak {peak:,} bytes for {INFLATED:,} inflated"


def test_a_declared_size_over_the_limit_is_refused_before_inflating(tmp_path: Path) -> None:
    payload = b"\x80\x04" + b"\x00" * 60_000_000
    alone = bytearray(lzma.compress(payload, format=lzma.FORMAT_ALONE))
    alone[5:13] = len(payload).to_bytes(8, "little")  # the header's size field (Python writes "unknown")
    for data in (gzip.compress(payload), lzma.compress(payload), bytes(alone)):
        started = time.monotonic()
        message, peak = _peak(tmp_path, data, 50_000_000)
        assert "expands to more than 50,000,000 bytes" in message
        assert peak < 10_000_000, f"peak {peak:,}"
        assert time.monotonic() - started < 20


# -- fitted-ness: both BUILD forms, and no special attributes on instances ------------------------


def _estimator_with_builds(*states) -> bytes:
    """An unfitted LogisticRegression whose pickle applies ``states`` one BUILD after another."""
    model = LogisticRegression()
    first, *rest = states
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=4)
    pickler.dispatch_table = {LogisticRegression: lambda m: (copyreg.__newobj__, (LogisticRegression,), first)}
    pickler.dump(model)
    data = buffer.getvalue()[:-1]  # drop STOP: BUILD the same object again
    for state in rest:
        data += pickle.dumps(state, protocol=2)[2:-1]
        data += b"b"
    return data + b"."


def test_special_attributes_cannot_make_an_unfitted_model_fitted() -> None:
    unfitted = LogisticRegression().__getstate__()
    _refused(_estimator_with_builds({**unfitted, "__sklearn_is_fitted__": object}), "special attributes")


def test_a_second_build_cannot_reach_the_slot_state_form() -> None:
    unfitted = LogisticRegression().__getstate__()
    data = _estimator_with_builds({**unfitted, "__setstate__": None}, ({}, {"classes_": np.arange(3)}))
    _refused(data, "special attributes")


# -- every input ends in one clear error -------------------------------------------------------


def _zip_needing_version(version: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", b"{}")
    data = bytearray(buffer.getvalue())
    data[4:6] = struct.pack("<H", version)  # local header: version needed to extract
    central = data.find(b"PK\x01\x02")
    data[central + 6 : central + 8] = struct.pack("<H", version)
    return bytes(data)


@pytest.mark.parametrize(
    "data",
    [
        _zip_needing_version(109),
        b"\x80\x040.",
        b"\x80\x04R.",
        b"\x80\x04b.",
        b"\x80\x04h\x05.",
        b"\x80\x04a.",
        b"\x80\x04\x87.",
        b"\x80\x04\x81.",
        b"\x80\x04.",
        pickle.dumps(LogisticRegression(), protocol=4)[:60],
    ],
    ids=["zip-version", "pop", "reduce", "build", "memo", "append", "tuple3", "newobj", "stop", "truncated"],
)
def test_malformed_input_ends_in_one_clear_error(data: bytes) -> None:
    with pytest.raises((FormatError, UnsafeModelError)) as caught:
        load_untrusted(data, limits=LIMITS)
    message = str(caught.value)
    assert "\n" not in message
    assert "Error:" not in message and "Error(" not in message, message  # no bare Python exception


# -- real models still load -------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: GradientBoostingClassifier(n_estimators=3, random_state=0),
        lambda: GradientBoostingRegressor(n_estimators=3, random_state=0),
        lambda: GradientBoostingClassifier(n_estimators=3, init="zero", random_state=0),
        lambda: HistGradientBoostingClassifier(max_iter=3, random_state=0),
        lambda: make_pipeline(StandardScaler(), KNeighborsClassifier(algorithm="kd_tree")),
        lambda: Pipeline([("s", StandardScaler()), ("f", RandomForestClassifier(n_estimators=3, random_state=0))]),
    ],
    ids=["gb-multiclass", "gb-regressor", "gb-zero-init", "hgb", "knn-pipeline", "forest-pipeline"],
)
@pytest.mark.parametrize("fmt", ["pickle", "joblib", "skops"])
def test_ordinary_models_still_load(iris, make, fmt: str) -> None:
    X, y = iris
    model = make().fit(X, y)
    loaded = load_untrusted(dumps(model, fmt), limits=LIMITS)
    assert loaded.model.predict(X).tolist() == model.predict(X).tolist()


def test_a_tree_whose_max_depth_understates_its_depth_is_refused(tmp_path: Path, iris) -> None:
    X, y = iris
    model = DecisionTreeClassifier(random_state=0).fit(X, y)  # depth 5 or more
    state = model.tree_.__getstate__()
    state["max_depth"] = 0  # decision_path() sizes its buffer by this: one slot a sample
    model.tree_.__setstate__(state)
    out = _in_child(tmp_path, pickle.dumps(model))
    assert out.startswith("REFUSED UnsafeModelError"), out
    assert "max_depth 0 is not its depth" in out


@pytest.mark.parametrize(
    ("metric", "params", "key", "short"),
    [
        ("seuclidean", {"V": np.ones(4)}, "V", np.ones(1)),
        ("mahalanobis", {"VI": np.eye(4)}, "VI", np.eye(1)),
    ],
)
def test_neighbours_metric_weights_must_match_the_features(tmp_path: Path, iris, metric, params, key, short) -> None:
    X, y = iris
    model = KNeighborsClassifier(n_neighbors=3, algorithm="brute", metric=metric, metric_params=params).fit(X, y)
    model.effective_metric_params_[key] = short  # read for every feature by the compiled distance
    _refused_in_child(tmp_path, pickle.dumps(model), "neighbours", f"metric parameter '{key}'")


@pytest.mark.parametrize("kind", [KMeans, MiniBatchKMeans])
def test_k_means_centres_narrower_than_the_data_are_refused(tmp_path: Path, iris, kind) -> None:
    X, _ = iris
    model = kind(n_clusters=3, n_init=1, random_state=0).fit(X)
    assert load_untrusted(pickle.dumps(model), limits=LIMITS).model.predict(X).tolist() == model.predict(X).tolist()
    model.cluster_centers_ = np.ascontiguousarray(model.cluster_centers_[:, :1])  # read 4 wide in C
    _refused_in_child(tmp_path, pickle.dumps(model), "k-means", "1 column")


def test_a_damaged_skops_file_is_refused_in_plain_words() -> None:
    import skops.io

    data = bytearray(skops.io.dumps(LogisticRegression().fit([[0.0], [1.0]], [0, 1])))
    start = data.find(b"schema.json") + len(b"schema.json")
    data[start + 5] ^= 0xFF  # a byte of the compressed schema: its CRC no longer matches
    message = _refused(bytes(data), "The skops file is damaged", error=FormatError)
    assert "Error:" not in message, message


@pytest.mark.parametrize("n_support", [[5, 5, 5], [1], [10**6, 0]])
def test_regression_svm_support_counts_that_crashed_libsvm_are_refused(n_support) -> None:
    """Found by tests/fuzz_structure.py: an SVR whose ``_n_support`` is longer than the two
    entries scikit-learn writes segfaulted predict (libsvm reads one intercept per class pair)."""
    from sklearn.svm import SVR

    rng = np.random.default_rng(0)
    X, y = rng.random((40, 3)), rng.random(40)
    model = SVR().fit(X, y)
    model._n_support = np.asarray(n_support, dtype=np.int32)
    with pytest.raises(UnsafeModelError, match="support"):
        load_untrusted(pickle.dumps(model), limits=LIMITS)


def test_a_small_file_whose_shared_tuples_expand_to_2_to_the_40_is_refused_before_hashing() -> None:
    """~1 kB: ``t = (t, t)`` forty times, used as a dict key. Hashing it visits 2**40 tuples in C,
    under the GIL, inside one opcode (the load deadline cannot interrupt it). Refused while reading,
    before the dict is built (in a child process, with a timeout, so a regression cannot hang the suite)."""
    code = """
import pickle, sys, time
sys.path.insert(0, ROOT)
from core.safety import LoadLimits
from core.safety.loader import _load_untrusted as load_untrusted
from core.errors import UnsafeModelError
P = pickle
ops = [P.PROTO + bytes([2]), P.EMPTY_TUPLE, P.BINPUT + bytes([0])]
for i in range(40):  # t(i+1) = (t(i), t(i)), each memoized: written by hand, never hashed here
    ops += [P.BINGET + bytes([i]), P.BINGET + bytes([i]), P.TUPLE2, P.BINPUT + bytes([i + 1])]
ops += [P.POP, P.EMPTY_DICT, P.BINGET + bytes([40]), P.BININT1 + bytes([1]), P.SETITEM, P.STOP]
data = b"".join(ops)
assert len(data) < 1000, len(data)
started = time.monotonic()
try:
    load_untrusted(data, limits=LoadLimits(10**8, 10**8, 60))
except UnsafeModelError as exc:
    print("refused", round(time.monotonic() - started, 2), exc)
""".replace("ROOT", repr(str(Path(__file__).resolve().parent.parent)))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-1500:]
    assert result.stdout.startswith("refused"), result.stdout
    assert "more than 10,000,000" in result.stdout
