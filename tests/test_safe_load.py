"""core.safety.loader (the in-process loader): a hostile corpus made here is refused without running; real models load.

Every hostile file below would create ``marker`` (a file in tmp_path) if it were unpickled
with plain pickle; each test checks the refusal names the refused global AND that the marker
never appears.
"""

from __future__ import annotations

import builtins
import copy
import importlib
import io
import json
import os
import pickle
import subprocess
import zipfile
import zlib
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn.tree._tree import Tree

from core.catalog import CATALOG
from core.datasets import load_dataset
from core.errors import FormatError, UnsafeModelError
from core.formats import dumps
from core.safety import LoadLimits
from core.safety.loader import UntrustedModel
from core.safety.loader import _load_untrusted as load_untrusted
from core.training import train

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LIMITS = LoadLimits(max_bytes=100_000_000, max_decompressed_bytes=100_000_000, timeout_s=60)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "pwned"


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    return load_iris(return_X_y=True, as_frame=True)


@pytest.fixture(scope="module")
def logreg(iris) -> LogisticRegression:
    X, y = iris
    return LogisticRegression(max_iter=300).fit(X, y)


def _refused(data: bytes, *names: str, error: type = UnsafeModelError) -> str:
    with pytest.raises(error) as caught:
        load_untrusted(data, limits=LIMITS)
    message = str(caught.value)
    for name in names:
        assert name in message, message
    return message


class Reduce:
    """An object whose unpickling calls ``func(*args)``: the classic pickle payload."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _touch(marker: Path) -> str:
    return f"touch {marker}"


# -- the hostile corpus --------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(6))
def test_os_system_refused_at_every_protocol(marker: Path, protocol: int) -> None:
    data = pickle.dumps(Reduce(os.system, _touch(marker)), protocol=protocol)
    with pytest.raises(UnsafeModelError) as caught:
        load_untrusted(data, limits=LIMITS)
    assert f"{os.system.__module__}.system is not allowed" in str(caught.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("func", "args", "name"),
    [
        (builtins.eval, ("open({m!r}, 'w')",), "builtins.eval"),
        (builtins.exec, ("open({m!r}, 'w')",), "builtins.exec"),
        (subprocess.Popen, (["touch", "{m}"],), "subprocess.Popen"),
        (subprocess.check_call, (["touch", "{m}"],), "subprocess.check_call"),
        (importlib.import_module, ("os",), "importlib.import_module"),
        (builtins.__import__, ("os",), "builtins.__import__"),
        (builtins.getattr, (os, "system"), "builtins.getattr"),
        (np.load, ("{m}",), "numpy.load"),
        (np.loadtxt, ("{m}",), "numpy.loadtxt"),
        (np.fromfile, ("{m}",), "numpy.fromfile"),
    ],
)
def test_code_running_globals_refused(marker: Path, func, args, name: str) -> None:
    def fill(a):
        if isinstance(a, str):
            return a.format(m=str(marker))
        return [x.format(m=str(marker)) for x in a] if isinstance(a, list) else a

    filled = tuple(fill(a) for a in args)
    try:
        data = pickle.dumps(Reduce(func, *filled), protocol=4)
    except (TypeError, pickle.PicklingError):  # a module argument: write the opcodes by hand below
        data = b"\x80\x04c" + func.__module__.encode() + b"\n" + func.__name__.encode() + b"\n)R."
    _refused(data, name)
    assert not marker.exists()


def test_getattr_chain_written_by_hand_is_refused(marker: Path) -> None:
    # getattr(__import__('os'), 'system')('touch marker'), as protocol 0 text.
    data = (
        b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(S'os'\ntRS'system'\ntR(S'touch "
        + str(marker).encode()
        + b"'\ntR."
    )
    _refused(data, "builtins.getattr is not allowed")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("module", "name"),
    [("operator", "attrgetter"), ("functools", "partial"), ("posix", "system"), ("nt", "system"), ("io", "open")],
)
def test_gadget_globals_refused(module: str, name: str) -> None:
    _refused(b"\x80\x04c" + module.encode() + b"\n" + name.encode() + b"\n)R.", f"{module}.{name} is not allowed")


def test_payload_hidden_in_a_valid_model_attribute(marker: Path, logreg) -> None:
    hidden = copy.deepcopy(logreg)
    hidden.notes_ = {"author": "friendly", "extra": [1, 2, Reduce(os.system, _touch(marker))]}
    for data in (pickle.dumps(hidden, protocol=5), pickle.dumps(hidden, protocol=2), dumps(hidden, "joblib")):
        _refused(data, "system is not allowed")
    assert not marker.exists()


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)])
def test_joblib_payload_refused_compressed_or_not(marker: Path, logreg, compress) -> None:
    hidden = copy.deepcopy(logreg)
    hidden.coef_extra_ = Reduce(os.system, _touch(marker))
    buffer = io.BytesIO()
    joblib.dump(hidden, buffer, compress=compress)
    _refused(buffer.getvalue(), "system is not allowed")
    assert not marker.exists()


def test_joblib_object_array_goes_through_the_same_restriction(marker: Path, logreg) -> None:
    hidden = copy.deepcopy(logreg)
    hidden.table_ = np.array([1, Reduce(os.system, _touch(marker))], dtype=object)
    _refused(dumps(hidden, "joblib"), "system is not allowed")
    assert not marker.exists()


def test_skops_untrusted_function_refused(iris) -> None:
    X, y = iris
    model = Pipeline([("f", FunctionTransformer(os.system)), ("m", LogisticRegression())])
    model.steps[1] = ("m", LogisticRegression(max_iter=300).fit(X, y))
    model.steps[0][1].fit(X)
    _refused(skops.io.dumps(model), f"{os.system.__module__}.system", "not allowed")


class Custom:
    """A class outside the allowlist, as skops and pickle record it."""

    def __init__(self) -> None:
        self.value = 1


def test_skops_untrusted_class_refused(logreg) -> None:
    model = copy.deepcopy(logreg)
    model.extra_ = Custom()
    _refused(skops.io.dumps(model), "tests.test_safe_load.Custom", "not allowed")
    _refused(pickle.dumps(model), "tests.test_safe_load.Custom is not allowed")


def test_a_file_may_not_patch_a_class() -> None:
    # BUILD on the Pipeline class itself would set Pipeline.predict for the whole process.
    data = b"\x80\x02csklearn.pipeline\nPipeline\nN}U\x07predictK\x01s\x86b."
    _refused(data, "sklearn.pipeline.Pipeline itself")
    assert callable(Pipeline.predict)


def test_allowlisted_types_may_not_be_called_with_arguments() -> None:
    # numpy.ndarray((10**12,)) would allocate a terabyte; it may be named, never called.
    data = b"\x80\x04cnumpy\nndarray\n\x8a\x06\x00\x10\xa5\xd4\xe8\x00\x85\x85R."
    _refused(data, "numpy.ndarray may not be called")
    newobj = b"\x80\x04cnumpy\nndarray\n\x8a\x06\x00\x10\xa5\xd4\xe8\x00\x85\x85\x81."
    _refused(newobj, "constructor arguments")


def test_allowed_helpers_check_their_arguments() -> None:
    encode = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x06\x00\x00\x00rot_13\x86R."
    _refused(encode, "_codecs.encode")
    ctor = b"\x80\x04cnumpy.random._pickle\n__randomstate_ctor\nX\x01\x00\x00\x00acbuiltins\neval\n\x86R."
    _refused(ctor, "builtins.eval is not allowed")
    reconstruct = b"\x80\x02cnumpy._core.multiarray\n_reconstruct\ncnumpy\nndarray\nJ\x00\xe1\xf5\x05\x85U\x01b\x87R."
    _refused(reconstruct, "_reconstruct")


def test_persistent_ids_refused() -> None:
    _refused(b"\x80\x04X\x01\x00\x00\x00xQ.", "persistent ids")


# -- crafted trees -------------------------------------------------------------------------------


def _crafted_tree(model: DecisionTreeClassifier, edit) -> DecisionTreeClassifier:
    """A copy of ``model`` whose tree nodes were edited, rebuilt the way pickle would."""
    crafted = copy.deepcopy(model)
    state = crafted.tree_.__getstate__()
    state["nodes"] = state["nodes"].copy()
    edit(state["nodes"])
    tree = Tree(crafted.tree_.n_features, np.asarray(crafted.tree_.n_classes), crafted.tree_.n_outputs)
    tree.__setstate__(state)
    crafted.tree_ = tree
    return crafted


@pytest.fixture(scope="module")
def tree_model(iris) -> DecisionTreeClassifier:
    X, y = iris
    return DecisionTreeClassifier(random_state=0, max_depth=4).fit(X, y)


def _inner(nodes: np.ndarray) -> list[int]:
    return [i for i in range(nodes.size) if nodes["left_child"][i] != -1]


def test_real_tree_passes_validation(tree_model) -> None:
    for fmt in ("pickle", "joblib", "skops"):
        loaded = load_untrusted(dumps(tree_model, fmt), limits=LIMITS)
        assert loaded.model.tree_.node_count == tree_model.tree_.node_count


def _out_of_range(nodes: np.ndarray) -> None:
    nodes["left_child"][0] = nodes.size + 1000


def _cycle(nodes: np.ndarray) -> None:
    inner = [i for i in range(nodes.size) if nodes["left_child"][i] != -1]
    child = next(i for i in inner if i != 0)  # an inner node below the root
    nodes["right_child"][child] = 0  # ... pointing back at the root: a loop


def _cycle_below_root(nodes: np.ndarray) -> None:
    inner = [i for i in range(nodes.size) if nodes["left_child"][i] != -1]
    a = next(i for i in inner if i != 0 and nodes["left_child"][i] in inner)
    b = int(nodes["left_child"][a])
    nodes["left_child"][b] = a  # a -> b -> a


def _bad_feature(nodes: np.ndarray) -> None:
    nodes["feature"][0] = 99


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_out_of_range, "outside"),
        (_cycle, "outside 1.."),
        (_cycle_below_root, "two parents"),
        (_bad_feature, "feature 99 of a 4-feature"),
    ],
)
@pytest.mark.parametrize("fmt", ["pickle", "joblib", "skops"])
def test_crafted_tree_refused_before_predict(tree_model, edit, expected: str, fmt: str) -> None:
    crafted = _crafted_tree(tree_model, edit)
    message = _refused(dumps(crafted, fmt), "decision tree", expected)
    assert "Refused a crafted or damaged" in message


def test_crafted_tree_inside_a_forest_refused(iris) -> None:
    X, y = iris
    forest = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
    forest.estimators_[2] = _crafted_tree(forest.estimators_[2], _out_of_range)
    _refused(dumps(forest, "joblib", 3), "decision tree", "outside")
    forest.estimators_[2] = copy.deepcopy(forest.estimators_[1])
    forest.estimators_[2].n_features_in_ = 40
    _refused(dumps(forest, "pickle"), "member expects 40 features")


def test_crafted_boosted_tree_refused(iris) -> None:
    X, y = iris
    model = HistGradientBoostingClassifier(max_iter=2, random_state=0).fit(X, y)
    crafted = copy.deepcopy(model)
    crafted._predictors[1][0].nodes["left"][0] = 10_000
    _refused(dumps(crafted, "pickle"), "boosted tree", "outside")
    crafted = copy.deepcopy(model)
    predictor = crafted._predictors[0][1]
    inner = np.flatnonzero(predictor.nodes["is_leaf"] == 0)
    predictor.nodes["feature_idx"][inner[0]] = 7
    _refused(dumps(crafted, "skops"), "boosted tree", "feature 7")


# -- not a model, limits -------------------------------------------------------------------------


def test_not_a_model_gives_one_clear_error(logreg, tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(200)
    real = pickle.dumps(logreg, protocol=5)
    cases = {
        "png": png,
        "empty": b"",
        "random": np.random.default_rng(0).bytes(4000),
        "truncated": real[: len(real) // 2],
        "text": b"hello, this is not a model\n",
        "zip": _zip({"notes.txt": b"hi"}),
        "a dict": pickle.dumps({"coef": [1, 2, 3]}),
        "unfitted": pickle.dumps(LogisticRegression()),
    }
    for label, data in cases.items():
        with pytest.raises((FormatError, UnsafeModelError)) as caught:
            load_untrusted(data, limits=LIMITS)
        assert "\n" not in str(caught.value), label
    assert "unfitted LogisticRegression" in _refused(cases["unfitted"], error=FormatError)
    assert "builtins.dict, not a scikit-learn model" in _refused(cases["a dict"], error=FormatError)


def _zip(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_decompression_bombs_refused() -> None:
    limits = LoadLimits(max_bytes=10_000_000, max_decompressed_bytes=5_000_000, timeout_s=60)
    zeros = b"\x80\x04" + b"\x00" * 20_000_000
    joblib_bomb = zlib.compress(zeros, 9)
    assert len(joblib_bomb) < 100_000
    with pytest.raises(UnsafeModelError, match="expands to more than 5,000,000 bytes"):
        load_untrusted(joblib_bomb, limits=limits)
    skops_bomb = _zip({"schema.json": b"{}", "a.npy": b"\x00" * 20_000_000})
    with pytest.raises(UnsafeModelError, match="expands to more than"):
        load_untrusted(skops_bomb, limits=limits)


def test_size_limit_and_time_limit(logreg) -> None:
    data = pickle.dumps(logreg)
    with pytest.raises(UnsafeModelError, match="the limit is 100 bytes"):
        load_untrusted(data, limits=LoadLimits(max_bytes=100, max_decompressed_bytes=10**9, timeout_s=60))
    slow = pickle.dumps([list(range(50)) for _ in range(40_000)], protocol=2)
    with pytest.raises(UnsafeModelError, match=r"longer than the 0\.001 s limit"):
        load_untrusted(slow, limits=LoadLimits(max_bytes=10**9, max_decompressed_bytes=10**9, timeout_s=0.001))


class FakeArray:
    """Pickles as numpy does an array, but with a state whose shape and data disagree."""

    def __init__(self, shape: tuple, dtype: str, data) -> None:
        self.state = (1, shape, np.dtype(dtype), False, data)

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return (_reconstruct, (np.ndarray, (0,), b"b"), self.state)


def test_array_state_must_match_its_shape() -> None:
    huge = pickle.dumps(FakeArray((10**9,), "float64", b"\x00" * 16), protocol=2)
    _refused(huge, "would need more than the 100,000,000-byte limit")
    objects = pickle.dumps(FakeArray((10**9,), "O", [1, 2]), protocol=4)
    _refused(objects, "more than the 100,000,000-byte limit")
    short = pickle.dumps(FakeArray((10,), "float64", b"\x00" * 16), protocol=5)
    _refused(short, "data does not match its shape", error=FormatError)


# -- real models load ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog_models() -> dict[str, object]:
    dataset = load_dataset("builtin:iris")
    fast = {"random_forest": {"n_estimators": 10}, "extra_trees": {"n_estimators": 10}}
    return {key: train(dataset, key, fast.get(key, {}), scale=True).model for key in CATALOG}


def _serialised(model, how: str) -> bytes:
    buffer = io.BytesIO()
    if how == "pickle":
        pickle.dump(model, buffer)
    elif how == "pickle-p0":
        pickle.dump(model, buffer, protocol=0)
    elif how.startswith("joblib"):
        joblib.dump(model, buffer, compress=int(how[-1]))
    else:
        skops.io.dump(model, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("how", ["pickle", "pickle-p0", "joblib-0", "joblib-3", "skops"])
@pytest.mark.parametrize("key", list(CATALOG))
def test_every_catalog_estimator_loads(catalog_models, key: str, how: str) -> None:
    model = catalog_models[key]
    X = load_dataset("builtin:iris").X
    loaded = load_untrusted(_serialised(model, how), limits=LIMITS)
    assert isinstance(loaded, UntrustedModel)
    assert loaded.estimator.rsplit(".", 1)[-1] == CATALOG[key].class_path.rsplit(".", 1)[-1]
    assert loaded.detected.format == how.split("-")[0]
    assert (loaded.model.predict(X) == model.predict(X)).all()
    if how != "skops":
        import sklearn

        assert loaded.sklearn_version == sklearn.__version__
    assert loaded.warnings == []


def test_a_resource_warning_during_a_load_is_not_the_models(catalog_models, monkeypatch) -> None:
    """Warnings are recorded process-wide while a file loads: a ResourceWarning (a connection or
    file of this process collected meanwhile, from any thread) is not reported as the model's;
    a warning raised by the load itself still is."""
    import warnings

    from core.safety import loader

    checked = loader.check_fitted_estimator

    def noisy(model) -> None:
        warnings.warn("<psycopg.Connection> was deleted while still open", ResourceWarning, stacklevel=1)
        warnings.warn("the model's own warning", UserWarning, stacklevel=1)
        checked(model)

    monkeypatch.setattr(loader, "check_fitted_estimator", noisy)
    loaded = load_untrusted(_serialised(catalog_models["logistic_regression"], "pickle"), limits=LIMITS)
    assert [w for w in loaded.warnings if "deleted while still open" in w] == []
    assert any("the model's own warning" in w for w in loaded.warnings)


def test_pipeline_with_scaler_and_one_hot_loads(iris) -> None:
    X, y = iris
    mixed = X.assign(size=np.where(X["petal length (cm)"] > 4, "large", "small"))
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), list(X.columns)),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["size"]),
                    ]
                ),
            ),
            ("model", LogisticRegression(max_iter=300)),
        ]
    ).fit(mixed, y)
    for how in ("pickle", "pickle-p0", "joblib-0", "joblib-3", "skops"):
        loaded = load_untrusted(_serialised(model, how), limits=LIMITS)
        assert (loaded.model.predict(mixed) == model.predict(mixed)).all(), how


# -- files saved by older scikit-learn releases ---------------------------------------------------

OLD_RELEASES = ("1.5.2", "1.7.2")
# What this scikit-learn cannot rebuild even with plain pickle (checked when the fixtures were
# made): 1.5's ColumnTransformer pickles a helper class that 1.9 removed, and skops records
# the Cython loss module of HistGradientBoosting under a bare "_loss" name it cannot import.
CANNOT_REBUILD = {
    ("1.5.2", "pipeline_scaler_onehot", "pkl"): "_RemainderColsList, which scikit-learn",
    ("1.5.2", "pipeline_scaler_onehot", "z3.joblib"): "_RemainderColsList, which scikit-learn",
    ("1.5.2", "pipeline_scaler_onehot", "skops"): "_RemainderColsList, which scikit-learn",
    ("1.5.2", "hist_gradient_boosting", "skops"): "No module named '_loss'",
    ("1.7.2", "hist_gradient_boosting", "skops"): "No module named '_loss'",
}


def _old_cases() -> list[tuple[str, str, str]]:
    cases = []
    for release in OLD_RELEASES:
        expected = json.loads((FIXTURES / f"sklearn-{release}" / "expected.json").read_text())
        assert expected["sklearn"] == release
        for name in expected["models"]:
            for suffix in ("pkl", "z3.joblib", "skops"):
                cases.append((release, name, suffix))
    return cases


@pytest.mark.parametrize(("release", "name", "suffix"), _old_cases())
def test_files_saved_by_older_scikit_learn(iris, release: str, name: str, suffix: str) -> None:
    """Made by tests/fixtures/make_old_models.py under scikit-learn ``release`` (see fixtures/README.md)."""
    folder = FIXTURES / f"sklearn-{release}"
    data = (folder / f"{name}.{suffix}").read_bytes()
    problem = CANNOT_REBUILD.get((release, name, suffix))
    if problem:
        _refused(data, problem, error=FormatError)
        return
    loaded = load_untrusted(data, limits=LIMITS)
    assert loaded.sklearn_version == release
    version_lines = [w for w in loaded.warnings if w.startswith("InconsistentVersionWarning")]
    assert len(version_lines) == 1  # folded: one line, not one per tree
    assert f"saved with scikit-learn {release}, loaded with" in version_lines[0]
    X, _ = iris
    frame = X.assign(size=np.where(X["petal length (cm)"] > 4, "large", "small")) if "pipeline" in name else X
    expected = json.loads((folder / "expected.json").read_text())["models"][name]["predictions"]
    assert loaded.model.predict(frame).tolist() == expected


class CraftedDtype:
    """Pickles as numpy pickles a structured dtype, with flags claiming it holds no objects."""

    def __reduce__(self):
        fields = {"a": (np.dtype("int64"), 0), "b": (np.dtype("O"), 8)}
        return (np.dtype, ("V16", False, True), (3, "|", None, ("a", "b"), fields, 16, 1, 0))


class DamagedDtype:
    """What the fuzzer found: an object dtype's state under a datetime type code (crashed numpy)."""

    def __reduce__(self):
        return (np.dtype, ("M8", False, True), (3, "|", None, None, None, -1, -1, 63))


def test_inconsistent_dtype_refused_before_use() -> None:
    real = np.dtype([("a", "<i8"), ("b", "O")])
    assert pickle.loads(pickle.dumps(real)) == real  # the honest form round-trips
    _refused(pickle.dumps(CraftedDtype(), protocol=4), "numpy dtype in it is inconsistent", error=FormatError)
    _refused(pickle.dumps(DamagedDtype(), protocol=2), "datetime dtype", error=FormatError)


def test_crafted_neighbours_index_refused(iris) -> None:
    from sklearn.metrics._dist_metrics import SEuclideanDistance64
    from sklearn.neighbors import KNeighborsClassifier

    X, y = iris
    model = KNeighborsClassifier(algorithm="ball_tree", metric="seuclidean", metric_params={"V": np.ones(4)})
    model.fit(X.to_numpy(), y)
    assert load_untrusted(pickle.dumps(model), limits=LIMITS).model.predict(X.to_numpy()).tolist() == (
        model.predict(X.to_numpy()).tolist()
    )
    state = list(model._tree.__getstate__())
    state[11] = SEuclideanDistance64(np.ones(1))  # weights for 1 feature, used on 4: reads past the end
    model._tree.__setstate__(tuple(state))
    _refused(pickle.dumps(model), "distance metric", "size of V does not match")
    state[11] = SEuclideanDistance64(np.ones(4))
    state[1] = state[1].copy()
    state[1][0] = 10_000  # an index past the data
    model._tree.__setstate__(tuple(state))
    _refused(pickle.dumps(model), "neighbours index", "index array does not fit")


def test_crafted_tree_inside_gradient_boosting_refused(iris) -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    X, y = iris
    model = GradientBoostingClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
    assert load_untrusted(dumps(model, "joblib"), limits=LIMITS).model.predict(X).tolist() == model.predict(X).tolist()
    model.estimators_[2, 1] = _crafted_tree(model.estimators_[2, 1], _cycle_below_root)
    for fmt in ("pickle", "joblib", "skops"):
        _refused(dumps(model, fmt), "decision tree", "two parents")


@pytest.mark.parametrize(("claimed", "kept"), [("1.5.2", "1.5.2"), ("[click](http://x) ![i](y)", None)])
def test_the_saved_version_is_kept_only_when_it_looks_like_a_version(monkeypatch, claimed, kept):
    import sklearn.base
    from sklearn.naive_bayes import GaussianNB

    model = GaussianNB().fit([[0.0], [1.0], [2.0], [3.0]], [0, 1, 0, 1])
    monkeypatch.setattr(sklearn.base, "__version__", claimed)  # what __getstate__ writes into the file
    data = pickle.dumps(model)
    monkeypatch.undo()
    assert load_untrusted(data).sklearn_version == kept
