"""``core.importing.import_file``: the one import behind ``python -m core import`` and the Upload page.

The kind of file comes from its bytes, never its name; the hostile parameter JSONs of
tests/test_bundle_attacks.py are refused on this path too, with nothing stored.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys

import joblib
import pytest

from core import Store, load_dataset
from core.errors import FormatError, InvalidParameterError, ModelShelfError
from core.importing import file_kind, import_file
from tests.conftest import ROOT
from tests.portable_support import trained
from tests.test_bundle_attacks import PARAMS_OUT_OF_BOUNDS, _params, cyclic_tree, huge_classes_dtype, member

HOSTILE_PARAMS = [
    (cyclic_tree, r"tree 1 .*(cycle|more than once)"),
    (huge_classes_dtype, r"classes_dtype 'S2000000000' is not one of"),
    *PARAMS_OUT_OF_BOUNDS,
]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """A real iris random-forest bundle (with its params.json), and the store it came from, as in the attack tests."""
    from core.portable.exports import export_version

    sender = Store(tmp_path_factory.mktemp("sender"))
    sender.save_trained(trained("builtin:iris", "random_forest"), "iris")
    yield sender, export_version(sender, "iris", "bundle").data
    sender.close()


def _joblib_bytes() -> bytes:
    buffer = io.BytesIO()
    joblib.dump(trained("builtin:iris", "naive_bayes").model, buffer)
    return buffer.getvalue()


def test_each_kind_is_told_from_its_bytes_whatever_its_name(real, store):
    _, bundle = real
    params = member(bundle, "params.json")
    model = _joblib_bytes()
    assert [file_kind(bundle), file_kind(params), file_kind(model)] == ["bundle", "params", "model"]

    from_bundle = import_file(store, bundle, filename="looks-like.json")
    assert from_bundle.kind == "bundle" and from_bundle.bundle is not None and from_bundle.bundle.created
    assert from_bundle.record["name"] == "iris" and from_bundle.to_dict()["record"] == from_bundle.record

    from_params = import_file(store, params, "rebuilt", filename="looks-like.pkl")
    assert from_params.kind == "params" and from_params.bundle is None
    assert from_params.record["imported"]["from"] == "json" and from_params.to_dict() == from_params.record

    from_model = import_file(store, model, "outside", filename="looks-like.zip", dataset=load_dataset("builtin:iris"))
    assert from_model.kind == "model" and from_model.record["format"] == "joblib"
    assert from_model.record["metrics"]["accuracy"] > 0.8  # scored in the worker on the held-out rows
    assert store.count() == 3


def test_a_data_set_is_refused_for_a_bundle_and_for_json_parameters(real, store):
    _, bundle = real
    iris = load_dataset("builtin:iris")
    for data in (bundle, member(bundle, "params.json")):
        with pytest.raises(InvalidParameterError, match="A data set scores a model file"):
            import_file(store, data, "x", dataset=iris)
    assert store.count() == 0


@pytest.mark.parametrize(("change", "match"), HOSTILE_PARAMS)
def test_a_hostile_parameter_json_is_refused_by_import_file_and_nothing_is_stored(real, store, change, match):
    params = _params(real[1])
    change(params)
    data = json.dumps(params).encode()
    assert file_kind(data) == "params"
    with pytest.raises(FormatError, match=match):
        import_file(store, data, "x", filename="params.json")
    assert store.count() == 0


def test_a_parameter_json_over_the_upload_limit_is_refused_by_import_file(real, store, monkeypatch):
    monkeypatch.setenv("MODELSHELF_MAX_UPLOAD_MB", "1")
    params = _params(real[1])
    params["note"] = "x" * 1_100_000  # valid JSON, a parameter document by its marker, over 1 MB
    with pytest.raises(FormatError, match="over the upload limit"):
        import_file(store, json.dumps(params).encode(), "x")
    assert store.count() == 0


def test_a_deeply_nested_json_gets_one_clear_error_and_nothing_is_stored(store):
    with pytest.raises(ModelShelfError):
        import_file(store, b'{"a": ' * 100_000, "x", filename="params.json")
    assert store.count() == 0


def test_a_parameter_json_asking_for_16_8_gib_is_refused_by_import_file_before_numpy_sees_it(real, tmp_path):
    params = _params(real[1])
    huge_classes_dtype(params)
    path = tmp_path / "params.json"
    path.write_text(json.dumps(params))
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))\n"
        "from core import Store\n"
        "from core.errors import FormatError\n"
        "from core.importing import import_file\n"
        "store = Store(sys.argv[2])\n"
        "try:\n"
        "    import_file(store, open(sys.argv[1], 'rb').read(), 'x', filename='params.json')\n"
        "except FormatError as exc:\n"
        "    print('refused', exc)\n"
        "peak = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        "print('peak_kb', peak, 'count', store.count())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), str(tmp_path / "store")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("refused The parameter file's classes_dtype 'S2000000000' is not one of"), done.stdout
    _, peak_kb, _, count = lines[1].split()
    assert int(peak_kb) // 1024 < 600 and count == "0"


def test_the_upload_store_records_what_the_cli_import_records(real, tmp_path):
    """The same bytes through import_file and through ``python -m core import`` give the same record fields."""
    from core.cli import main

    params = member(real[1], "params.json")
    (tmp_path / "p.json").write_bytes(params)
    assert main(["import", str(tmp_path / "p.json"), "--name", "p", "--store", str(tmp_path / "cli")]) == 0
    direct = Store(tmp_path / "direct")
    try:
        record = import_file(direct, params, "p", filename="p.json").record
        via_cli = Store(tmp_path / "cli").get("p:1")
        same = ("format", "estimator", "params", "imported", "origin", "dataset")
        assert {k: record[k] for k in same} == {k: via_cli[k] for k in same}
    finally:
        direct.close()
