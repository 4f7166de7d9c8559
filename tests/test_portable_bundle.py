"""Bundles: out of one store and into a fresh one intact; tampering refused by file name; no doubles."""

from __future__ import annotations

import io
import json
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core import Store, load_dataset, train
from core.cli import main
from core.errors import FormatError, IntegrityError, UnsafeModelError
from core.formats import sha256_bytes
from core.portable.bundle import MAX_ENTRIES, import_bundle, is_bundle
from core.portable.exports import export_version, predict_with_onnx
from tests.portable_support import DATASETS, ESTIMATORS, mixed_csv, rezip, trained


@pytest.fixture
def other_store(tmp_path):
    s = Store(tmp_path / "other")
    yield s
    s.close()


def _bundle(store, source="builtin:iris", estimator="random_forest", name="iris") -> bytes:
    store.save_trained(trained(source, estimator), name, format="joblib")  # the tests below edit model.joblib
    return export_version(store, name, "bundle").data


@pytest.mark.parametrize(("source", "estimator"), [(s, e) for s in DATASETS for e in ESTIMATORS])
def test_bundle_round_trip_keeps_the_bytes_and_the_accuracy(store, other_store, source, estimator):
    original = store.save_trained(trained(source, estimator), "m")
    data = export_version(store, "m", "bundle").data
    result = import_bundle(other_store, data)
    assert result.created and result.record["name"] == "m" and result.record["version"] == 1
    imported = other_store.get("m:1")
    assert imported["sha256"] == original["sha256"] and imported["origin"] == "imported"
    assert other_store.read_artifact("m:1") == store.read_artifact("m:1")
    evaluation = other_store.evaluate("m:1")
    assert evaluation.accuracy == original["metrics"]["accuracy"]
    assert imported["imported"]["bundle"]["recorded_accuracy"] == original["metrics"]["accuracy"]
    assert imported["environment"] == original["environment"]


def test_importing_the_same_bundle_twice_is_a_no_op_that_says_so(store, other_store):
    data = _bundle(store)
    first = import_bundle(other_store, data)
    second = import_bundle(other_store, data)
    assert first.created and not second.created
    assert second.message == "Already in the store as iris:1 (same name and model sha256); nothing imported"
    assert other_store.count() == 1 and second.record["version"] == 1
    # Under another name it is a new model, so it is imported.
    assert import_bundle(other_store, data, name="iris-copy").created and other_store.count() == 2


@pytest.mark.parametrize("member", ["model.joblib", "evaluation.parquet", "metadata.json", "model.onnx", "README.md"])
def test_a_tampered_file_is_refused_by_name_and_nothing_is_stored(store, other_store, member):
    data = _bundle(store)
    original = zipfile.ZipFile(io.BytesIO(data)).read(member)
    tampered = rezip(data, {member: original[:-1] + bytes([original[-1] ^ 1])})
    with pytest.raises(IntegrityError, match=re.escape(f"The bundle's file '{member}' does not match its manifest")):
        import_bundle(other_store, tampered)
    assert other_store.count() == 0
    assert not (Path(other_store.location) / "iris").exists()


def test_an_unlisted_or_missing_file_is_refused_by_name(store, other_store):
    data = _bundle(store)
    with pytest.raises(IntegrityError, match=re.escape("'payload.py', which its manifest does not list")):
        import_bundle(other_store, rezip(data, {"payload.py": b"import os"}))
    with pytest.raises(IntegrityError, match=re.escape("lacks 'params.json', which its manifest lists")):
        import_bundle(other_store, rezip(data, {"params.json": None}))
    assert other_store.count() == 0


def test_a_changed_manifest_cannot_vouch_for_a_different_model(store, other_store):
    data = _bundle(store)
    archive = zipfile.ZipFile(io.BytesIO(data))
    manifest = json.loads(archive.read("manifest.json"))
    forged = archive.read("model.joblib") + b"\x00"
    manifest["files"]["model.joblib"]["sha256"] = sha256_bytes(forged)
    with pytest.raises(IntegrityError, match=re.escape("model file 'model.joblib' does not have the sha256")):
        import_bundle(
            other_store, rezip(data, {"model.joblib": forged, "manifest.json": json.dumps(manifest).encode()})
        )


class _Boom:
    def __reduce__(self):
        return (eval, ("__import__('os').system('echo pwned')",))


def test_a_malicious_model_inside_a_consistent_bundle_never_runs(store, other_store, tmp_path):
    data = _bundle(store)
    archive = zipfile.ZipFile(io.BytesIO(data))
    manifest = json.loads(archive.read("manifest.json"))
    evil = pickle.dumps(_Boom(), protocol=5)
    del manifest["files"]["model.joblib"]
    manifest["files"]["model.pkl"] = {"sha256": sha256_bytes(evil), "size_bytes": len(evil)}
    manifest["model"] = {"file": "model.pkl", "format": "pickle", "sha256": sha256_bytes(evil)}
    bundle = rezip(data, {"model.joblib": None, "model.pkl": evil, "manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(UnsafeModelError):
        import_bundle(other_store, bundle)
    assert other_store.count() == 0


def test_what_is_not_a_bundle(store, other_store):
    assert not is_bundle(b"")
    assert not is_bundle(export_version(_store_with_model(store), "iris", "skops").data)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(MAX_ENTRIES + 1):
            archive.writestr(f"f{i}", b"")
        archive.writestr("manifest.json", json.dumps({"format": "modelshelf.bundle", "bundle_version": 1}))
    with pytest.raises(UnsafeModelError, match=f"holds {MAX_ENTRIES + 2} files"):
        import_bundle(other_store, buffer.getvalue())
    with pytest.raises(FormatError, match="not a readable zip"):
        import_bundle(other_store, b"PK\x03\x04 truncated")
    assert other_store.count() == 0


def _store_with_model(store):
    if not store.count():
        store.save_trained(trained("builtin:iris", "random_forest"), "iris")
    return store


def test_text_columns_survive_the_trip_and_onnx_still_predicts(store, other_store):
    dataset = load_dataset(mixed_csv(), target="bought")
    store.save_trained(train(dataset, "logistic_regression", scale=True), "shop")
    result = import_bundle(other_store, export_version(store, "shop", "bundle").data)
    assert set(result.record["exports"]) == {"onnx", "json"}
    X, _ = other_store.evaluation_set("shop")
    got = predict_with_onnx(other_store, "shop", X)
    np.testing.assert_array_equal(got["prediction"].astype(str), store.predict("shop", X)["prediction"].astype(str))
    assert other_store.evaluate("shop").reproduced is True


def test_cli_import_detects_a_bundle_by_content_and_says_when_it_is_there(capsys, store, tmp_path):
    renamed = tmp_path / "download.bin"
    renamed.write_bytes(_bundle(store))
    argv = ["import", str(renamed), "--store", str(tmp_path / "fresh")]
    assert main(argv) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("Imported iris:1 from the bundle of iris:1; re-scored accuracy")
    assert main(argv) == 0
    out, _ = capsys.readouterr()
    assert "Already in the store as iris:1" in out and "nothing imported" in out


def test_cli_import_of_a_bundle_refuses_data_options(capsys, store, tmp_path):
    bundle = tmp_path / "b.zip"
    bundle.write_bytes(_bundle(store))
    fresh = tmp_path / "fresh"
    assert main(["import", str(bundle), "--data", "builtin:iris", "--store", str(fresh)]) == 1
    _, err = capsys.readouterr()
    assert err == "error: --data apply to model files only: a bundle carries its own evaluation set\n"
    assert Store(fresh).count() == 0


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.update(files=list(m["files"])),
        lambda m: m.update(model="model.joblib"),
        lambda m: m["files"].update({"model.joblib": "not a table"}),
    ],
)
def test_a_malformed_manifest_gets_one_clear_error(store, other_store, change):
    data = _bundle(store)
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("manifest.json"))
    change(manifest)
    with pytest.raises(FormatError, match="manifest"):
        import_bundle(other_store, rezip(data, {"manifest.json": json.dumps(manifest).encode()}))
    assert other_store.count() == 0


def _with_metadata(data: bytes, **changes) -> bytes:
    """The bundle with metadata.json edited and the manifest re-signed (what a forger can do)."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    metadata = json.loads(archive.read("metadata.json")) | changes
    encoded = json.dumps(metadata).encode()
    manifest = json.loads(archive.read("manifest.json"))
    manifest["files"]["metadata.json"]["sha256"] = sha256_bytes(encoded)
    return rezip(data, {"metadata.json": encoded, "manifest.json": json.dumps(manifest).encode()})


def test_the_record_describes_the_model_not_what_the_metadata_claims(store, other_store):
    forged = _with_metadata(_bundle(store), estimator="sklearn.svm.SVC", params={"C": 99})
    record = import_bundle(other_store, forged).record
    assert record["estimator"] == "sklearn.ensemble.RandomForestClassifier"
    assert "C" not in record["params"] and "n_estimators" in record["params"]


def test_a_malformed_environment_in_the_metadata_is_refused(store, other_store):
    with pytest.raises(FormatError, match=r"metadata\.json: environment is not a JSON object"):
        import_bundle(other_store, _with_metadata(_bundle(store), environment="x"))
    assert other_store.count() == 0


def test_a_broken_export_in_the_bundle_is_never_parsed_and_made_again_here(store, other_store):
    data = _bundle(store)
    archive = zipfile.ZipFile(io.BytesIO(data))
    manifest = json.loads(archive.read("manifest.json"))
    broken = b'{"format": "modelshelf.params", "schema_version": 1, "model": []}'
    manifest["files"]["params.json"]["sha256"] = sha256_bytes(broken)
    result = import_bundle(
        other_store, rezip(data, {"params.json": broken, "manifest.json": json.dumps(manifest).encode()})
    )
    assert result.created and other_store.count() == 1
    made_here = result.record["exports"]["json"]
    assert made_here["status"] == "ok" and made_here["sha256"] != sha256_bytes(broken)
    assert made_here["sha256"] == sha256_bytes(archive.read("params.json"))  # the same model: the same JSON


def test_a_bundle_obeys_the_configured_decompression_limit(store, other_store):
    from core.safety import LoadLimits

    data = _bundle(store)
    tight = LoadLimits(max_bytes=len(data) * 2, max_decompressed_bytes=1000, timeout_s=30)
    with pytest.raises(UnsafeModelError, match="decompressed"):
        import_bundle(other_store, data, limits=tight)
    assert other_store.count() == 0
