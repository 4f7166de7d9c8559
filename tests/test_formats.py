import io
import os
import pickle
import threading

import joblib
import numpy as np
import pytest
import skops.io

from core.datasets import load_dataset
from core.errors import FormatError, InvalidParameterError
from core.formats import HashingWriter, detect_format, dumps, sha256_bytes
from core.training import train


@pytest.fixture(scope="module")
def model():
    return train(load_dataset("builtin:iris"), "random_forest", {"n_estimators": 5}).model


@pytest.mark.parametrize(
    ("fmt", "compress", "expected"),
    [
        ("pickle", 0, ("pickle", None)),
        ("joblib", 0, ("joblib", None)),
        ("joblib", 3, ("joblib", "zlib")),
        ("skops", 0, ("skops", "zip")),
    ],
)
def test_detects_format_from_bytes(model, fmt, compress, expected):
    detected = detect_format(dumps(model, fmt, compress))
    assert (detected.format, detected.compression) == expected


@pytest.mark.parametrize("method", ["gzip", "bz2", "xz", "lzma"])
def test_detects_joblib_compression_methods(model, method):
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=(method, 3))
    assert detect_format(buffer.getvalue()).format == "joblib"
    assert detect_format(buffer.getvalue()).compression == method


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_detects_every_pickle_protocol(protocol):
    data = pickle.dumps({"weights": [1.0, 2.0], "name": "m"}, protocol=protocol)
    assert detect_format(data).format == "pickle"


def test_plain_pickle_dump_is_pickle_and_skops_dump_is_skops(model):
    assert detect_format(pickle.dumps(model)).format == "pickle"
    assert detect_format(skops.io.dumps(model)).format == "skops"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "Not a model file"),
        (b"hello world, not a model", "Not a model file"),
        (b"PK\x03\x04garbage", "damaged or truncated"),
    ],
)
def test_non_models_are_refused(data, message):
    with pytest.raises(FormatError, match=message):
        detect_format(data)


def test_hashing_writer_hashes_what_it_writes():
    target = io.BytesIO()
    writer = HashingWriter(target)
    writer.write(b"abc")
    writer.write(memoryview(b"def"))
    assert writer.size == 6 and writer.tell() == 6
    assert writer.sha256 == sha256_bytes(b"abcdef") and target.getvalue() == b"abcdef"


def test_compression_is_joblib_only(model):
    with pytest.raises(InvalidParameterError, match="joblib format only"):
        dumps(model, "pickle", 3)
    with pytest.raises(InvalidParameterError, match=r"\[0, 9\]"):
        dumps(model, "joblib", 12)
    with pytest.raises(InvalidParameterError, match="Unknown format"):
        dumps(model, "onnx")


def test_hashing_writer_hashes_what_was_written_even_if_the_caller_reuses_its_buffer():
    target = io.BytesIO()
    writer = HashingWriter(target)
    buffer = bytearray(b"x" * 3_000_000)
    expected = bytearray()
    for i in range(6):
        buffer[:1] = bytes([i])  # the caller changes its buffer after each write
        writer.write(buffer)
        expected += buffer
        writer.write(b"small %d" % i)
        expected += b"small %d" % i
    writer.write(bytes(9_000_000))
    expected += bytes(9_000_000)
    assert writer.sha256 == sha256_bytes(bytes(expected)) and target.getvalue() == bytes(expected)


def test_hashing_writer_hashes_a_large_pickle_in_its_thread_like_one_pass():
    """Past a megabyte the hash runs in a thread: the pickler's buffers of the model's own arrays,
    its frames and copies of other buffers, in order, give the sha256 of the bytes written."""
    model = {"weights": np.arange(600_000, dtype=np.float64), "names": [f"f{i}" for i in range(50_000)]}
    target = io.BytesIO()
    writer = HashingWriter(target)
    pickle.dump(model, writer, protocol=5)
    writer.write(bytearray(b"tail"))
    expected = pickle.dumps(model, protocol=5) + b"tail"
    assert target.getvalue() == expected
    assert writer.size == len(expected) and writer.sha256 == sha256_bytes(expected)


def test_hashing_writer_reads_a_local_file_back_behind_the_writer(tmp_path):
    """A file the store writes (readable, unbuffered): the thread hashes the file's own bytes,
    whatever the caller does with its buffers after each write, small files included."""
    before = {t.ident for t in threading.enumerate()}
    for size in (10, 300_000, 11_000_000):
        path = tmp_path / f"model-{size}"
        expected = bytearray()
        with open(path, "x+b", buffering=0) as raw, HashingWriter(raw) as writer:
            buffer = bytearray(b"y" * min(size, 700_000))
            while len(expected) < size:
                buffer[:1] = bytes([len(expected) % 251])  # reused after each write
                writer.write(buffer)
                expected += buffer
            writer.flush()
            assert writer.sha256 == sha256_bytes(bytes(expected)) and writer.size == len(expected)
        assert path.read_bytes() == bytes(expected)
    assert not [t for t in threading.enumerate() if t.ident not in before]


def test_a_model_size_is_counted_with_no_thread_left_behind():
    """The workbench sizes every model it compares (``model_size``): counted, not hashed, so no
    hashing thread is started, and none waits forever on a writer nobody closes."""
    from core.workbench import model_size

    model = {"weights": np.arange(400_000, dtype=np.float64)}  # past the point a hashing thread starts
    before = {t.ident for t in threading.enumerate()}
    assert model_size(model) == len(pickle.dumps(model, protocol=5))
    assert not [t for t in threading.enumerate() if t.ident not in before]


def test_a_file_cut_short_under_the_writer_fails_its_hash(tmp_path):
    """The hash is of what the file holds, not of what the writer was handed: a file truncated
    by someone else before the hash reads it back does not get the sha256 of the bytes written."""
    path = tmp_path / "model.pkl"
    with open(path, "x+b", buffering=0) as raw, HashingWriter(raw) as writer:
        writer.write(bytes(600_000))  # past the point where a thread takes over
        writer.write(bytes(200_000))  # less than wakes a waiting thread: not read back yet
        os.truncate(path, 1000)
        with pytest.raises(OSError, match="shorter than the 800000 bytes written"):
            writer.sha256  # noqa: B018  # the property is the call under test


def test_hashing_writer_leaves_no_thread_behind_when_closed_unread():
    before = {t.ident for t in threading.enumerate()}
    with HashingWriter(io.BytesIO()) as writer:
        writer.write(bytes(3_000_000))  # starts the hashing thread
        assert any(t.name == "modelshelf-sha256" for t in threading.enumerate())
    assert not [t for t in threading.enumerate() if t.ident not in before]
