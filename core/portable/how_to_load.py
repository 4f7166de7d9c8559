""" "How to load this": the few lines that load a downloaded file and predict, per format.

Each snippet starts with the exact ``pip install`` line (versions as recorded with the model),
reads the file under the name the download gives it (``download_filename``) and predicts on
``new_rows.csv`` (raw feature columns, as the model was trained on). The bundle's snippet uses
the evaluation set shipped inside it, so it runs as is. Tests execute every snippet.

Nothing from a record is pasted into code: strings enter as ``repr`` literals (a column name
holding a newline stays inside its string) and pins are ``name==version`` with both checked
(``core.portable.requirements``). A skops snippet names the exact types its file needs, listed
from the file when it is exported, and compares them before loading, instead of trusting
whatever the file asks for.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import re
from collections.abc import Mapping
from inspect import getsource
from typing import Any

from core.errors import InvalidParameterError
from core.formats import EXTENSIONS
from core.portable import params_predict
from core.portable.requirements import pip_install_line
from core.record import VersionRecord, dataset_of, export_of, recorded_features

#: Everything a version can be downloaded as.
DOWNLOAD_FORMATS = ("pickle", "joblib", "skops", "onnx", "json", "bundle")
#: How each download's file name ends: every one distinct, so no download overwrites another in the
#: user's Downloads folder (the metadata and the JSON parameters are both JSON).
FILE_ENDINGS = {
    **EXTENSIONS,
    "onnx": "onnx",
    "json": "params.json",
    "bundle": "zip",
    "metadata": "metadata.json",
    "predictions": "predictions.csv",
}


PREDICTOR_FILENAME = "predict_params.py"


def predictor_source() -> str:
    """The numpy-only predictor for the JSON form, to offer as a download beside it (``predict_params.py``).

    ``params_predict`` as one file that stands alone: each ``from core.portable.X import ...`` line
    in it is replaced by module X's code (its definitions, after its own imports, which must be
    ones ``params_predict`` makes too).
    """
    lines = []
    for line in getsource(params_predict).splitlines(keepends=True):
        if line.startswith("from core.portable."):
            module = importlib.import_module(line.split()[1])
            lines.append(_definitions(getsource(module)))
        else:
            lines.append(line)
    return "".join(lines)


def _definitions(source: str) -> str:
    """A module's source after its docstring and imports, starting at its first definition."""
    body = ast.parse(source).body
    last_import = max(node.end_lineno or 0 for node in body if isinstance(node, (ast.Import, ast.ImportFrom)))
    rest = source.splitlines(keepends=True)[last_import:]
    return "\n" + "".join(rest).strip("\n") + "\n\n"


def check_download_format(fmt: str) -> str:
    if fmt not in DOWNLOAD_FORMATS:
        raise InvalidParameterError(f"Unknown export format {fmt!r}; choose one of: " + ", ".join(DOWNLOAD_FORMATS))
    return fmt


def download_filename(record: Mapping[str, Any], kind: str) -> str:
    """``pima-v3.joblib``, ``pima-v3.params.json``, ``pima-v3.metadata.json``...: the name a download is given.

    ``kind``: a download format (``DOWNLOAD_FORMATS``), ``metadata`` or ``predictions``. The
    dashboard's buttons, the CLI's ``export`` and the how-to-load snippets all name files here.
    """
    if kind not in FILE_ENDINGS:
        check_download_format(kind)
    return f"{record['name']}-v{record['version']}.{FILE_ENDINGS[kind]}"


def _features(record: VersionRecord) -> list[str]:
    return [str(f) for f in recorded_features(record) or []]


def skops_types(data: bytes) -> list[str]:
    """The types a skops file needs beyond skops' defaults, sorted: for its snippet to name exactly."""
    import skops.io as sio  # heavy and optional: only a skops download needs it

    return sorted(str(t) for t in sio.get_untrusted_types(data=data))


def _skops_check(types: list[str] | None, untrusted_call: str) -> list[str]:
    """Lines that compare what a skops file asks for with the types it was exported with."""
    if types is None:
        return [
            "# ModelShelf lists the exact types this file needs when it prepares the download;",
            "# until then: review every type printed here, and trust none you do not expect.",
            "expected = []",
            f"untrusted = {untrusted_call}",
            'print("types the file asks for:", untrusted)',
            "unexpected = sorted(set(untrusted) - set(expected))",
            "if unexpected:",
            '    raise SystemExit(f"review these types before trusting them: {unexpected}")',
        ]
    return [
        "# The types this file needs beyond skops' defaults, listed by ModelShelf when it was exported.",
        "# Compare before loading: a file that asks for anything else is not the file you were given.",
        f"expected = {sorted(types)!r}",
        f"untrusted = {untrusted_call}",
        "unexpected = sorted(set(untrusted) - set(expected))",
        "if unexpected:",
        '    raise SystemExit(f"the file asks for types it was not exported with: {unexpected}")',
    ]


def _all_numeric(record: VersionRecord) -> bool:
    types = dataset_of(record).get("feature_types") or {}
    layout = export_of(record, "onnx").get("layout")
    if layout:
        return layout == "tensor"
    return all(t == "number" for t in types.values())


def _columns_comment(record: VersionRecord) -> str:
    features = _features(record)
    if not features:
        return "# new_rows.csv: the raw feature columns the model was trained on"
    shown = repr(features[:8])[:-1] + (", ...]" if len(features) > 8 else "]")
    return f"# new_rows.csv: one row per case, columns {shown}"


_ESTIMATOR_PATH = re.compile(r"sklearn(\.[A-Za-z_][A-Za-z0-9_]*)+")


def task_of(record: VersionRecord) -> str | None:
    """``classification``/``regression``: the recorded ``task``, else read from the estimator's class.

    Records made before tasks were recorded name only the estimator (``sklearn.linear_model.Ridge``);
    its class says which it is. None when neither tells (an unknown or non-scikit-learn name).
    """
    task = record.get("task")
    if isinstance(task, str) and task:
        return task
    path = str(record.get("estimator") or "")
    if not _ESTIMATOR_PATH.fullmatch(path):
        return None
    module, _, name = path.rpartition(".")
    cls = None
    for candidate in dict.fromkeys((module, ".".join(module.split(".")[:2]))):  # describe drops private parts
        with contextlib.suppress(ImportError, AttributeError):
            cls = getattr(importlib.import_module(candidate), name)
            break
    from sklearn.base import ClassifierMixin, RegressorMixin  # deferred: only when a record has no task

    if isinstance(cls, type) and issubclass(cls, RegressorMixin):
        return "regression"
    return "classification" if isinstance(cls, type) and issubclass(cls, ClassifierMixin) else None


def how_to_load(record: VersionRecord, fmt: str, skops_types: list[str] | None = None) -> str:
    """Python code that loads the file downloaded in ``fmt`` and predicts, with its pip install line.

    ``skops_types``: for a skops file (or a bundle holding one), the types it needs, from
    ``skops_types(data)``; without them the snippet asks the reader to review each type.
    """
    check_download_format(fmt)
    filename = download_filename(record, fmt)
    name = repr(filename)
    install = f"# {pip_install_line(record, fmt)}"
    rows = ["import pandas as pd", "", _columns_comment(record), 'rows = pd.read_csv("new_rows.csv")']
    if fmt == "pickle":
        body = [
            "import pickle",
            *rows,
            "# Unpickling runs code from the file: only load a file you trust (this one came from your shelf).",
            f"with open({name}, 'rb') as handle:",
            "    model = pickle.load(handle)",
            "print(model.predict(rows))",
        ]
    elif fmt == "joblib":
        body = [
            "import joblib",
            *rows,
            "# joblib unpickles: only load a file you trust (this one came from your shelf).",
            f"model = joblib.load({name})",
            "print(model.predict(rows))",
        ]
    elif fmt == "skops":
        body = [
            "import skops.io as sio",
            *rows,
            "# skops loads no type it was not told to trust.",
            *_skops_check(skops_types, f"sio.get_untrusted_types(file={name})"),
            f"model = sio.load({name}, trusted=expected)",
            "print(model.predict(rows))",
        ]
    elif fmt == "onnx":
        body = ["import numpy as np", "import onnxruntime as ort", *rows]
        body.append(f'session = ort.InferenceSession({name}, providers=["CPUExecutionProvider"])')
        if _all_numeric(record):
            features = _features(record)
            if features:
                body.append(f"features = {features!r}")
                body.append('feeds = {"input": rows[features].to_numpy(np.float32)}')
            else:
                body.append('feeds = {"input": rows.to_numpy(np.float32)}')
        else:
            body += [
                "# One input per column: float for numbers, string for categories ('' when missing).",
                "feeds = {}",
                "for node in session.get_inputs():",
                "    column = rows[node.name]",
                '    if node.type == "tensor(string)":',
                '        feeds[node.name] = column.fillna("").astype(str).to_numpy(object).reshape(-1, 1)',
                "    else:",
                "        feeds[node.name] = column.to_numpy(np.float32).reshape(-1, 1)",
            ]
        if task_of(record) == "regression":  # one output: the predicted values, shape (rows, 1)
            body += ["predictions = session.run(None, feeds)[0].ravel()", "print(predictions)"]
        else:
            body += ["labels, probabilities = session.run(None, feeds)", "print(labels)"]
    elif fmt == "json":
        body = [
            "import json",
            *rows,
            f"with open({name}) as handle:",
            "    params = json.load(handle)",
            "# Without scikit-learn: predict_params.py (numpy only; inside every ModelShelf bundle,",
            "# and core/portable/params_predict.py in ModelShelf) reproduces its predictions exactly.",
            "from predict_params import predict",
            "print(predict(params, rows))",
            "# Or rebuild a real scikit-learn model (any recent version) with ModelShelf:",
            "# from core.portable.params_rebuild import to_sklearn; model = to_sklearn(params)",
        ]
    else:  # bundle
        model_file = f"model.{EXTENSIONS.get(record.get('format', 'joblib'), 'joblib')}"
        load = {
            "pickle": ["import pickle", "model = pickle.loads(data)"],
            "joblib": ["import joblib", "model = joblib.load(io.BytesIO(data))"],
            "skops": [
                "import skops.io as sio",
                *_skops_check(skops_types, "sio.get_untrusted_types(data=data)"),
                "model = sio.loads(data, trusted=expected)",
            ],
        }[record.get("format", "joblib")]
        imports = sorted({"import hashlib", "import io", "import json", "import zipfile", load[0]} - {""})
        body = [
            *imports,
            "",
            "import pandas as pd",
            "",
            f"bundle = zipfile.ZipFile({name})",
            'manifest = json.loads(bundle.read("manifest.json"))',
            f"data = bundle.read({model_file!r})",
            "# The manifest's sha256s are the sender's own: they prove the file was not damaged on the",
            "# way, not who made it.",
            f'assert hashlib.sha256(data).hexdigest() == manifest["files"][{model_file!r}]["sha256"]',
            "# The model file unpickles: only load a bundle you trust (ModelShelf's import checks it first).",
            *load[1:],
        ]
        if record.get("evaluation_set"):
            body += [
                "# The held-out rows kept with the model (their labels in __target__):",
                'rows = pd.read_parquet(io.BytesIO(bundle.read("evaluation.parquet")))',
                'print(model.predict(rows.drop(columns=["__target__"])))',
            ]
        else:
            body += [_columns_comment(record), 'rows = pd.read_csv("new_rows.csv")', "print(model.predict(rows))"]
    return "\n".join([install, *body]) + "\n"
