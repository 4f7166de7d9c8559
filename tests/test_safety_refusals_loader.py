"""Direct tests of the restricted unpickler's refusals: each allowlisted callable's argument
check, array/dtype state checks, archive and decompression limits, the error funnel.

Each test builds its hostile input here and calls the check itself (in this process, so that
``tests/test_safety_coverage.py`` sees the refusal run), asserting the error's type and the
words of its message.
"""

from __future__ import annotations

import gzip
import io
import pathlib
import pickle
import time
import zipfile
import zlib
from typing import Any

import numpy as np
import pytest
import skops.io
from joblib.numpy_pickle import NumpyArrayWrapper
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from core.errors import FormatError, InvalidParameterError, UnsafeModelError
from core.formats import Detected
from core.safety import LoadLimits, allowlist, archives, arrays, calls, limits, loader, skops_load, unpickler
from core.safety.loader import _load_untrusted as load_untrusted

LIMITS = LoadLimits(max_bytes=100_000_000, max_decompressed_bytes=100_000_000, timeout_s=60)


def _call_check(module: str, name: str) -> Any:
    """The argument check the unpickler runs before it calls the global ``module.name``."""
    return calls.call_checks()[id(allowlist.resolve(module, name))][1]


def _refused_call(module: str, name: str, args: tuple, *words: str) -> None:
    with pytest.raises(UnsafeModelError) as caught:
        _call_check(module, name)(args)
    for word in words:
        assert word in str(caught.value), str(caught.value)


# -- each allowlisted callable's argument checks --------------------------------------------------

SEED = ("numpy.random.bit_generator", "SeedSequence")
TREE = ("sklearn.tree._tree", "Tree")
CTOR = ("numpy.random._pickle", "__bit_generator_ctor")
CASES = [
    (("copyreg", "_reconstructor"), (object, object), "2 arguments"),
    (("copyreg", "_reconstructor"), (pathlib.Path, object, None), "a class outside the allowlist"),
    (("copyreg", "_reconstructor"), (LogisticRegression, int, None), "base 'int'"),
    (("numpy._core.multiarray", "scalar"), (), "arguments other than (dtype, bytes)"),
    (("numpy._core.multiarray", "scalar"), (np.dtype("f8"), b"abc"), "does not fit its dtype float64"),
    (("numpy._core.numeric", "_frombuffer"), (b"", "f8", (1,), "C"), "plain dtype"),
    (("numpy._core.numeric", "_frombuffer"), ("text", np.dtype("f8"), (1,), "C"), "a str instead of a buffer"),
    (("numpy", "dtype"), (1,), "arguments other than (type code, align, copy)"),
    (CTOR, (1, 2, 3), "3 arguments"),
    (CTOR, ("NoSuchGenerator",), "str 'NoSuchGenerator'"),
    (CTOR, ("MT19937", len), "a constructor other than numpy's own"),
    (SEED, (1, 2), "2 arguments"),
    (TREE, (4, np.array([2])), "2 arguments"),
    (TREE, (0, np.array([2]), 1), "n_features=0"),
    (TREE, (4, np.array([2]), 0), "n_outputs=0"),
    (TREE, (4, [2], 1), "n_classes that is not one positive count per output"),
    (("sklearn.neighbors._kd_tree", "newObj"), (int,), "something other than a scikit-learn class"),
    (("sklearn.neighbors._kd_tree", "newObj"), (NotFittedError,), "NotFittedError, which is not allowed"),
    (("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"), (pathlib.Path, 0, None), "outside the allowlist"),
    (("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"), (np.random.SeedSequence, 2**80, None), "checksum"),
    (("builtins", "set"), ([1], [2]), "arguments other than one list of items"),
    (("builtins", "slice"), ("a",), "arguments other than small integers"),
    (("numpy.ma.core", "_mareconstruct"), (np.ndarray, np.ndarray, (0,), "b"), "classes other than"),
    (("numpy.ma.core", "_mareconstruct"), (np.ma.MaskedArray, np.ndarray, (1,), "b"), "a shape or type other than"),
    (("_codecs", "encode"), ("text", "rot13"), "arguments other than (text, 'latin1')"),
    (("numpy._core.multiarray", "_reconstruct"), (np.ndarray, (1,), b"b"), "other than (numpy.ndarray, (0,), code)"),
    (("numpy", "dtype"), ("f8,f8",), "the type code 'f8,f8', which is not a plain one"),
    (SEED, (2**5000,), "an entropy over 4096 bits or not integers"),
    (TREE, (4, np.array([10**9]), 1), "n_classes up to 1,000,000,000 for 1 output(s)"),
    (("sklearn._loss._loss", "CyPinballLoss"), ("0.5",), "arguments other than a few small numbers"),
    (("builtins", "complex"), ("1j",), "arguments other than small numbers"),
    (("builtins", "bytes"), (1.5,), "arguments other than data"),
    (("builtins", "bytes"), ("text", "rot13"), "an encoding other than latin-1, utf-8 or ascii"),
    (("functools", "partial"), (), "functools.partial is not allowed without its function"),
    (("functools", "partial"), (print, 1), "functools.partial is not allowed with positional arguments"),
]


@pytest.mark.parametrize(("target", "args", "words"), CASES, ids=[f"{t[1]}-{w[:24]}" for t, _a, w in CASES])
def test_each_allowlisted_callable_refuses_arguments_outside_its_check(target, args, words) -> None:
    _refused_call(*target, args, words)


def test_a_cython_unpickle_helper_refuses_a_state_of_other_than_numbers() -> None:
    from sklearn._loss._loss import CyHalfSquaredError

    helper = calls._check_pyx_unpickle
    with pytest.raises(UnsafeModelError, match=r"CyHalfSquaredError was called with a state of other than"):
        helper((CyHalfSquaredError, 0, ("text",)))


@pytest.mark.parametrize(
    ("state", "words"),
    [
        ([1, 2, 3, 4, 5], "a malformed state"),
        ((None, -1, np.zeros(4, np.uint32), 4, ()), "a malformed n_children_spawned"),
        ((None, 0, np.zeros(4, np.uint32), 4, (1, -2)), "a spawn_key of other than small integers"),
        ((None, 0, np.zeros(2, np.uint32), 2, ()), "a pool size outside 4..1024"),
        ((None, 0, np.zeros(5, np.uint32), 4, ()), "a pool that does not match its pool size"),
        ((None, 0, np.zeros(4, np.uint32), 4, tuple(range(100))), "a spawn_key longer than 64"),
    ],
)
def test_a_seed_sequence_state_is_checked_field_by_field(state, words: str) -> None:
    with pytest.raises(UnsafeModelError, match=words):
        calls.check_seed_sequence_state(state)


def test_a_partial_state_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(UnsafeModelError, match=r"functools.partial is not allowed with a malformed state"):
        calls.check_partial_state((print,))


def test_a_reduce_with_arguments_that_are_not_a_tuple_is_refused() -> None:
    # GLOBAL builtins.set, EMPTY_LIST, REDUCE: the arguments are a list, not a tuple.
    data = b"\x80\x02cbuiltins\nset\n]R."
    with pytest.raises(UnsafeModelError, match=r"builtins.set was called with malformed arguments"):
        load_untrusted(data, limits=LIMITS)


def test_a_partial_is_allowed_only_around_check_array_with_its_keywords() -> None:
    from sklearn.utils.validation import check_array

    with pytest.raises(UnsafeModelError, match=r"functools.partial is not allowed around print"):
        calls.check_partial_parts(print, (), None, None)
    with pytest.raises(UnsafeModelError, match=r"not allowed with positional arguments"):
        calls.check_partial_parts(check_array, (1,), None, None)
    with pytest.raises(UnsafeModelError, match=r"not allowed with the keyword arguments \['copy'\]"):
        calls.check_partial_parts(check_array, (), {"copy": True}, None)
    with pytest.raises(UnsafeModelError, match=r"not allowed with attributes of its own"):
        calls.check_partial_parts(check_array, (), None, {"x": 1})


def test_a_global_outside_the_allowlist_is_refused_by_name() -> None:
    with pytest.raises(UnsafeModelError, match=r"os.system is not allowed: the file asks to load a global outside"):
        allowlist.resolve("os", "system")


def test_a_global_this_release_no_longer_has_is_named_as_missing(monkeypatch) -> None:
    monkeypatch.setattr(allowlist, "_MISSING", {("sklearn.gone", "Thing")})
    with pytest.raises(FormatError, match=r"The file needs sklearn.gone.Thing, which scikit-learn .* no longer has"):
        allowlist.resolve("sklearn.gone", "Thing")


# -- the unpickler's guards, one opcode at a time -------------------------------------------------

LR = b"csklearn.linear_model._logistic\nLogisticRegression\n"
OPCODE_CASES = [
    (b"\x80\x02X\x01\x00\x00\x00aQ.", UnsafeModelError, "refers to external objects (pickle persistent ids)"),
    (b"\x80\x02cbuiltins\nint\nX\x01\x00\x00\x001\x85R.", UnsafeModelError, "builtins.int may not be called"),
    (b"\x80\x02cfunctools\npartial\n)\x81.", UnsafeModelError, "functools.partial is not a class the file may"),
    (b"\x80\x02" + LR + b"K\x01\x85\x81.", UnsafeModelError, "was created with constructor arguments"),
    (
        b"\x80\x02" + LR + b"}b.",
        UnsafeModelError,
        "tries to change sklearn.linear_model._logistic.LogisticRegression itself",
    ),
    (b"\x80\x02" + LR + b")\x81}X\x09\x00\x00\x00__class__K\x01sb.", UnsafeModelError, "special attributes"),
    (pickle.dumps(np.dtype("M8[D]"), protocol=2), FormatError, "The file holds a datetime dtype"),
    (b"\x80\x02garbage", FormatError, "its pickle data is malformed near byte"),
]


@pytest.mark.parametrize(("data", "error", "words"), OPCODE_CASES, ids=[w[:30] for _d, _e, w in OPCODE_CASES])
def test_each_unpickler_guard_refuses_its_opcode(data: bytes, error: type, words: str) -> None:
    with pytest.raises(error) as caught:
        load_untrusted(data, limits=LIMITS)
    assert words in str(caught.value), str(caught.value)


def test_containers_nested_past_the_bound_are_refused_while_built() -> None:
    nested: list = []
    for _ in range(300):
        nested = [nested]
    with pytest.raises(UnsafeModelError, match=r"nests objects too deeply to be a model \(more than 200 levels\)"):
        load_untrusted(pickle.dumps(nested, protocol=2), limits=LIMITS)


def test_the_guard_stops_a_load_past_its_deadline() -> None:
    guard = limits._Guard(LoadLimits(max_bytes=10, max_decompressed_bytes=10, timeout_s=0.001))
    time.sleep(0.01)
    with pytest.raises(UnsafeModelError, match=r"took longer than the 0.001 s limit"):
        guard.tick()


def test_a_file_over_the_size_limit_is_refused_unread() -> None:
    small = LoadLimits(max_bytes=10, max_decompressed_bytes=10, timeout_s=1)
    with pytest.raises(UnsafeModelError, match=r"The file is 100 bytes; the limit is 10 bytes"):
        load_untrusted(b"\x80" * 100, limits=small)


def test_bytes_that_are_no_model_format_are_refused() -> None:
    with pytest.raises(FormatError, match=r"Not a model file"):
        load_untrusted(b"hello, world", limits=LIMITS)


def test_a_zip_header_that_breaks_format_detection_is_refused(monkeypatch) -> None:
    def crafted(data: bytes):  # zipfile raises more than BadZipFile on a crafted header
        raise NotImplementedError("That compression method is not supported")

    monkeypatch.setattr(loader, "detect_format", crafted)
    with pytest.raises(FormatError, match=r"looks like a zip archive but is damaged or of an unsupported kind"):
        load_untrusted(b"PK\x03\x04", limits=LIMITS)


# -- dtype and array states -----------------------------------------------------------------------


def test_limits_must_be_positive_numbers() -> None:
    with pytest.raises(InvalidParameterError, match=r"Invalid value 0 for max_bytes"):
        LoadLimits(max_bytes=0, max_decompressed_bytes=1, timeout_s=1)
    with pytest.raises(InvalidParameterError, match=r"Invalid value True for timeout_s"):
        LoadLimits(max_bytes=1, max_decompressed_bytes=1, timeout_s=True)


def test_a_dtype_state_with_malformed_field_names_is_refused() -> None:
    base = np.dtype([("a", "f8")])
    state = (3, "|", None, ["a"], {"a": (np.dtype("f8"), 0)}, 8, 1, 16)  # names a list, not a tuple
    with pytest.raises(ValueError, match=r"malformed fields"):
        arrays._dtype_from_state(base, state)
    with pytest.raises(FormatError, match=r"a numpy dtype in it is inconsistent"):
        arrays._check_dtype_state(base, state)


def test_a_dtype_state_with_a_malformed_field_entry_is_refused() -> None:
    base = np.dtype([("a", "f8")])
    state = (3, "|", None, ("a",), {"a": 5}, 8, 1, 16)
    with pytest.raises(ValueError, match=r"malformed field"):
        arrays._dtype_from_state(base, state)
    with pytest.raises(FormatError, match=r"inconsistent"):
        arrays._check_dtype_state(base, state)


@pytest.mark.parametrize(
    ("state", "error", "words"),
    [
        ([1, (2,), np.dtype("f8"), False, b""], FormatError, "an array has a malformed state"),
        ((1, (2,), "f8", False, b"\0" * 16), FormatError, "no valid dtype or shape"),
        ((1, (-2,), np.dtype("f8"), False, b""), FormatError, "an array has the shape (-2,)"),
        ((1, (10**6,), np.dtype("f8"), False, b""), UnsafeModelError, "more than the 1,000-byte limit"),
        ((1, (3,), np.dtype("f8"), False, b"\0" * 16), FormatError, "data does not match its shape"),
    ],
)
def test_an_array_state_must_fit_its_shape_and_the_budget(state, error: type, words: str) -> None:
    with pytest.raises(error) as caught:
        arrays._check_array_state(state, 1_000)
    assert words in str(caught.value)


def _masked_state(**changes: Any) -> tuple:
    fields = {"shape": (2,), "dtype": np.dtype("f8"), "data": b"\0" * 16, "mask": b"\0\0", "fill": 1e20}
    fields |= changes
    return (1, fields["shape"], fields["dtype"], False, fields["data"], fields["mask"], fields["fill"])


@pytest.mark.parametrize(
    ("state", "error", "words"),
    [
        (_masked_state()[:5], FormatError, "a masked array has a malformed state"),
        (
            _masked_state(dtype=np.dtype([("a", "f8")]), data=b"\0" * 16),
            UnsafeModelError,
            "a masked array of a structured dtype",
        ),
        (_masked_state(mask=b"\0"), FormatError, "mask does not match its shape"),
        (_masked_state(fill=[1]), UnsafeModelError, "fill value that is not a plain value"),
    ],
    ids=["short", "structured", "mask", "fill-list"],
)
def test_a_masked_array_state_is_checked(state, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        arrays._check_masked_array_state(state, 1_000)


def test_a_masked_array_fill_value_of_an_object_scalar_is_refused() -> None:
    records = np.zeros(1, dtype=[("o", "O")])
    records[0] = (object(),)
    fill = records[0]  # an np.void record holding a Python object
    assert isinstance(fill, np.generic) and fill.dtype.hasobject
    with pytest.raises(UnsafeModelError, match=r"fill value that is not a plain value"):
        arrays._check_masked_array_state(_masked_state(fill=fill), 1_000)


def _struct_dtype_set_to(state: tuple) -> np.dtype:
    """A fresh structured dtype given ``state`` the way ``dtype.__setstate__`` takes it (unchecked)."""
    dtype = np.dtype([("a", "f8")])
    dtype.__setstate__(state)
    return dtype


def test_a_built_dtype_whose_alignment_is_not_numpys_is_refused() -> None:
    dtype = _struct_dtype_set_to((3, "|", None, ("a",), {"a": (np.dtype("f8"), 0)}, 8, 8, 16))
    with pytest.raises(FormatError, match=r"a numpy dtype in it is inconsistent"):
        arrays.check_dtype(dtype)


def test_a_built_dtype_whose_field_is_not_a_dtype_is_refused() -> None:
    dtype = _struct_dtype_set_to((3, "|", None, ("a",), {"a": ("f8", 0)}, 8, 1, 16))
    assert dtype.fields == {"a": ("f8", 0)}
    with pytest.raises(FormatError, match=r"a numpy dtype in it is inconsistent"):
        arrays.check_dtype(dtype)


# -- object graphs that share parts ---------------------------------------------------------------


def _shared_tuples(levels: int) -> bytes:
    """``t = (t, t)`` ``levels`` times over, memo slot 0 holding the latest (protocol 2 opcodes)."""
    return b"\x80\x02)q\x00" + b"h\x00h\x00\x86q\x00" * levels


def test_a_tuple_that_shares_its_parts_past_the_bound_is_refused_before_it_is_built() -> None:
    with pytest.raises(UnsafeModelError, match=r"following them reaches more than 10,000,000"):
        load_untrusted(_shared_tuples(24) + b".", limits=LIMITS)


def test_a_list_grown_past_the_sharing_bound_is_refused_after_the_append() -> None:
    # t of about 8.4 million paths, appended twice to one list: each append alone is under the bound.
    data = _shared_tuples(22) + b"]q\x01h\x01h\x00ah\x00a."
    with pytest.raises(UnsafeModelError, match=r"following them reaches more than 10,000,000"):
        load_untrusted(data, limits=LIMITS)


# -- joblib's array wrapper -----------------------------------------------------------------------


def _joblib_file(payload: bytes = b"", **state: Any) -> bytes:
    wrapper = NumpyArrayWrapper.__new__(NumpyArrayWrapper)
    fields = {"subclass": np.ndarray, "shape": (2,), "order": "C", "dtype": np.dtype("f8"), "allow_mmap": False}
    wrapper.__dict__.update(fields | state)
    return pickle.dumps(wrapper, protocol=4) + payload


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_joblib_file(subclass=list), "a joblib array has an invalid type or order"),
        (_joblib_file(order="X"), "a joblib array has an invalid type or order"),
        (_joblib_file(dtype="f8"), "a joblib array has no valid dtype or shape"),
        (_joblib_file(shape=(-1,)), "a joblib array has the shape (-1,)"),
        (_joblib_file(b"\0" * 8), "a joblib array is longer than the file"),
        (
            _joblib_file(pickle.dumps(np.array([1, 2, 3], dtype=object), protocol=4), dtype=np.dtype("O")),
            "a joblib object array does not match its shape",
        ),
    ],
    ids=["subclass", "order", "dtype", "shape", "truncated", "object-count"],
)
def test_a_joblib_array_wrapper_is_read_only_within_its_file(data: bytes, words: str) -> None:
    with pytest.raises(FormatError) as caught:
        load_untrusted(data, limits=LIMITS)
    assert words in str(caught.value)


def test_a_joblib_array_that_joblib_cannot_read_is_refused(monkeypatch) -> None:
    # joblib's reader failing on bytes that passed the length check (stood in for here: the
    # funnel turns what numpy raises into one FormatError naming it).
    def failing(self, unpickler, ensure_native_byte_order):
        raise ValueError("cannot reshape")

    monkeypatch.setattr(NumpyArrayWrapper, "read", failing)
    with pytest.raises(FormatError, match=r"a joblib array could not be read \(cannot reshape\)"):
        load_untrusted(_joblib_file(b"\0" * 64), limits=LIMITS)


# -- decompression --------------------------------------------------------------------------------


def _guard(limit: int = 10_000) -> limits._Guard:
    return limits._Guard(LoadLimits(max_bytes=limit, max_decompressed_bytes=limit, timeout_s=30))


def test_an_xz_varint_longer_than_nine_bytes_is_malformed() -> None:
    with pytest.raises(ValueError, match=r"varint too long"):
        archives._read_varint(b"\xff" * 12, 0)


def test_a_stream_that_declares_a_size_over_the_limit_is_refused_before_inflating() -> None:
    with pytest.raises(UnsafeModelError, match=r"expands to more than 10,000 bytes"):
        archives._inflate(gzip.compress(b"\0" * 100_000), "gzip", _guard())


def test_a_stream_without_a_declared_size_is_stopped_at_the_limit() -> None:
    with pytest.raises(UnsafeModelError, match=r"expands to more than 10,000 bytes"):
        archives._inflate(zlib.compress(b"\0" * 100_000), "zlib", _guard())


def test_an_unknown_compression_is_refused() -> None:
    with pytest.raises(FormatError, match=r"joblib files compressed with lz4 are not supported"):
        archives._inflate(b"data", "lz4", _guard())


def test_a_truncated_compressed_stream_is_refused() -> None:
    packed = zlib.compress(bytes(range(256)) * 20)
    with pytest.raises(FormatError, match=r"The zlib-compressed file is truncated"):
        archives._inflate(packed[: len(packed) // 2], "zlib", _guard())


def test_a_corrupt_compressed_stream_is_refused() -> None:
    with pytest.raises(FormatError, match=r"not a valid zlib-compressed joblib file"):
        archives._inflate(b"this is not zlib at all", "zlib", _guard())


def test_a_compressed_joblib_file_must_hold_a_pickle() -> None:
    detected = Detected("joblib", compression="zlib")
    with pytest.raises(FormatError, match=r"The decompressed file is not a joblib pickle"):
        loader._unpickle(zlib.compress(b"plain text"), detected, _guard())


def test_a_recursion_error_while_unpickling_is_reported_as_too_deep(monkeypatch) -> None:
    def deep(self):  # the unpickler's own guard stops depth earlier; this is the funnel behind it
        raise RecursionError

    monkeypatch.setattr(unpickler.RestrictedUnpickler, "load", deep)
    with pytest.raises(UnsafeModelError, match=r"nests objects too deeply"):
        loader._unpickle(pickle.dumps([1]), Detected("pickle"), _guard())


# -- zip archives and skops -----------------------------------------------------------------------


def _zip(entries: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(entries):
            archive.writestr(f"f{i}", b"x")
    return buffer.getvalue()


def test_a_damaged_zip_is_refused_before_reading() -> None:
    with pytest.raises(FormatError, match=r"looks like a zip archive but is damaged"):
        archives.check_zip(b"PK\x03\x04" + b"\0" * 40, LIMITS)


def test_a_zip_with_too_many_entries_is_refused() -> None:
    with pytest.raises(UnsafeModelError, match=r"The archive holds 3 files"):
        archives.check_zip(_zip(3), LIMITS, max_entries=2)


@pytest.fixture(scope="module")
def skops_bytes() -> bytes:
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    return skops.io.dumps(model)


def test_a_skops_file_whose_contents_cannot_be_read_is_refused(skops_bytes: bytes) -> None:
    source = zipfile.ZipFile(io.BytesIO(skops_bytes))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # the schema intact, its arrays garbage
        for info in source.infolist():
            archive.writestr(info, b"garbage" if info.filename.endswith(".npy") else source.read(info))
    with pytest.raises(FormatError, match=r"its contents could not be read as a model"):
        load_untrusted(buffer.getvalue(), limits=LIMITS)


def test_a_zip_whose_entries_add_up_past_the_limit_is_refused() -> None:
    small = LoadLimits(max_bytes=10_000, max_decompressed_bytes=2, timeout_s=5)
    with pytest.raises(UnsafeModelError, match=r"expands to more than 2 bytes"):
        archives.check_zip(_zip(3), small)


def test_a_skops_file_with_a_damaged_schema_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", b"{not json")
    with pytest.raises(FormatError, match=r"The skops file is damaged \("):
        skops_load._load_skops(buffer.getvalue(), _guard(10**8))


def _skops_needs(monkeypatch, names: list[str]) -> None:
    monkeypatch.setattr(skops.io, "get_untrusted_types", lambda data: names)


def test_a_skops_file_needing_types_outside_the_allowlist_is_refused(monkeypatch, skops_bytes: bytes) -> None:
    _skops_needs(monkeypatch, ["os.system", "builtins.eval"])
    with pytest.raises(UnsafeModelError, match=r"os.system, builtins.eval are not allowed: the skops file"):
        skops_load._load_skops(skops_bytes, _guard(10**8))


def test_a_skops_file_needing_a_type_this_release_lacks_is_named(monkeypatch, skops_bytes: bytes) -> None:
    _skops_needs(monkeypatch, ["sklearn.gone.Thing"])
    monkeypatch.setattr(allowlist, "_MISSING", {("sklearn.gone", "Thing")})
    with pytest.raises(FormatError, match=r"needs sklearn.gone.Thing, which scikit-learn"):
        skops_load._load_skops(skops_bytes, _guard(10**8))


def test_a_skops_file_needing_a_missing_module_keeps_its_import_error(monkeypatch, skops_bytes: bytes) -> None:
    def missing(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'sklearn.gone'")

    monkeypatch.setattr(skops.io, "loads", missing)
    with pytest.raises(ImportError, match=r"sklearn.gone"):
        skops_load._load_skops(skops_bytes, _guard(10**8))  # load_untrusted names it (see _as_error)


def test_a_recursion_error_in_skops_is_reported_as_too_deep(monkeypatch, skops_bytes: bytes) -> None:
    def deep(*args, **kwargs):
        raise RecursionError

    monkeypatch.setattr(skops.io, "loads", deep)
    with pytest.raises(UnsafeModelError, match=r"nests objects too deeply"):
        skops_load._load_skops(skops_bytes, _guard(10**8))


# -- the entry point ------------------------------------------------------------------------------


def test_a_load_past_its_deadline_is_abandoned() -> None:
    guard = limits._Guard(LoadLimits(max_bytes=10, max_decompressed_bytes=10, timeout_s=0.05))
    started = time.monotonic()
    with pytest.raises(UnsafeModelError, match=r"took longer than the 0.05 s limit"):
        loader._run_with_deadline(guard, lambda: time.sleep(3))
    assert time.monotonic() - started < 2.5
    assert guard.cancelled.is_set()


def test_load_untrusted_takes_bytes_only() -> None:
    with pytest.raises(InvalidParameterError, match=r"takes the file's bytes, not a str"):
        load_untrusted("model.pkl", limits=LIMITS)  # type: ignore[arg-type]


def test_a_pickle_that_ends_before_its_stop_opcode_is_refused_with_its_cause() -> None:
    """The opcode loop meets the end of the bytes (no STOP): one FormatError, the EOFError behind it."""
    with pytest.raises(FormatError, match="damaged or cut short") as caught:
        load_untrusted(b"\x80\x04K\x01")  # protocol 4, the int 1, then nothing
    assert isinstance(caught.value.__cause__, EOFError)


def test_a_load_that_runs_out_of_memory_is_refused_with_its_cause(monkeypatch) -> None:
    """Past the unpickler (the checks, the build): an error that is not ModelShelf's own is turned
    into one message, its cause kept for --debug."""

    def exhausted(*args: Any) -> Any:
        raise MemoryError

    monkeypatch.setattr(loader, "_load", exhausted)
    with pytest.raises(UnsafeModelError, match="more memory than a model should") as caught:
        load_untrusted(pickle.dumps(LogisticRegression()))
    assert isinstance(caught.value.__cause__, MemoryError)
