"""Bundles: one ``.zip`` that carries a version out of the shelf and back in, intact.

Inside: the model file exactly as stored (same sha256), ``metadata.json`` (the version's
record), ``requirements.txt`` (the versions it was saved with), ``evaluation.parquet`` (the
held-out rows), ``model.onnx`` and ``params.json`` + ``predict_params.py`` when the model
converts faithfully, ``README.md`` (a model card made with skops' card support) and
``manifest.json``, which lists every other file with its sha256.

Import trusts nothing in the zip. The manifest's sha256s are the sender's own: they prove the
files were not changed on the way, not who made them. Every file must match the manifest (a
changed file is refused by name); ``manifest.json`` and ``metadata.json`` are bounded before
they are parsed, and the metadata is read against a strict schema
(``core.portable.bundle_metadata``); the model bytes go to a sandboxed
worker process (``core.safety``, which runs the restricted loader, the one load
path for bytes that did not come from this store), and the version is re-scored there on the
bundle's evaluation set. The bundle's
``model.onnx`` and ``params.json`` are never run or parsed: once the model is safely loaded,
its ONNX and JSON forms are made again here from it (or left out, with the reason). Metrics the
bundle claims are stored as claims (``claimed_metrics``), never as measured ones. Importing a
bundle whose model (same name, same sha256) is already in the store changes nothing and says so.
"""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core import formats
from core.datasets import to_jsonable
from core.describe import final_estimator
from core.environment import compare_environment
from core.errors import FormatError, IntegrityError, InvalidParameterError, ModelShelfError, UnsafeModelError
from core.frames import model_input, split_evaluation_frame
from core.portable.bundle_metadata import MAX_METADATA_BYTES, parse_metadata, too_large
from core.portable.derived import ensure_onnx, ensure_params
from core.portable.how_to_load import (
    DOWNLOAD_FORMATS,
    PREDICTOR_FILENAME,
    how_to_load,
    predictor_source,
    skops_types,
    task_of,
)
from core.portable.requirements import requirements_txt
from core.record import VersionRecord, dataset_of, environment_of, metrics_of, ref_of
from core.refs import MAX_VERSION, check_label, check_name, check_note
from core.safety import LoadLimits, WorkerModel, check_zip, load_in_worker, require_strong_sandbox
from core.store import LoadedModel, Store
from core.text import escape_markdown

BUNDLE_FORMAT = "modelshelf.bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
METADATA = "metadata.json"
#: Refuse bundles that would unpack to more than this, or hold more entries (zip bombs).
MAX_ENTRIES = 32
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # so the same version always zips to the same bytes


@dataclass
class BundleImport:
    """What importing a bundle did: the version it is now, and whether it was new."""

    record: VersionRecord
    created: bool
    message: str
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, "message": self.message, "warnings": self.warnings, "record": self.record}


# -- export -----------------------------------------------------------------------------------------


def _metrics_table(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Every score the record holds (accuracy, r2, mae...), not a fixed list; bookkeeping left out."""
    skip = ("fit_seconds", "n_samples")
    return {
        str(k): round(float(v), 6)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in skip
    }


def _fence(code: str) -> list[str]:
    """A Markdown code block that no run of backticks inside ``code`` can close early."""
    longest = run = 0
    for ch in code:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return [fence + "python", code.rstrip("\n"), fence]


def model_card(
    record: VersionRecord,
    model: Any,
    formats_available: list[str],
    omitted: dict[str, str],
    skops_needed: list[str] | None = None,
) -> str:
    """The bundle's README.md: a skops model card with description, hyperparameters, metrics, loading.

    Every value from the record is escaped for Markdown (a record may come from someone else's
    bundle); the loading code sits in fences longer than any backtick run inside it.
    """
    from skops import card as skops_card  # heavy and optional: only a bundle's model card needs it

    e = escape_markdown
    estimator = final_estimator(model)
    dataset = dataset_of(record)
    split = record.get("split") or {}
    features = [str(f) for f in dataset.get("feature_names") or []]
    shown = ", ".join(features[:12]) + (f" and {len(features) - 12} more" if len(features) > 12 else "")
    environment = environment_of(record)
    packages = environment.get("packages") or {}
    card = skops_card.Card(estimator, model_diagram=False)
    task = task_of(record)
    classes = "" if task == "regression" else f", classes {e(dataset.get('classes', '?'))}"
    description = [
        f"{e(record['name'])}:{record['version']} from a ModelShelf store: a {e(_class_name(estimator, record))} "
        f"({e(record.get('estimator'))}) saved on {e(str(record.get('created_at', '?'))[:19])} UTC as "
        f"{e(record.get('format'))} (sha256 {e(record.get('sha256'))}).",
        "",
        f"- Data: {e(dataset.get('source', 'unknown'))} ({e(dataset.get('n_rows', '?'))} rows, "
        f"{e(dataset.get('n_features', len(features)))} features: {e(shown or 'unnamed')}); target "
        f"{e(dataset.get('target', '?'))}{classes}.",
        "- Input: raw rows with those columns; the pipeline imputes missing values, one-hot encodes "
        "text columns and scales numbers when it was trained to.",
        f"- Saved with: {e(', '.join(f'{k} {v}' for k, v in sorted(packages.items())))} on Python "
        f"{e(environment.get('python_version', '?'))} (see requirements.txt).",
    ]
    metrics = metrics_of(record)
    if task or metrics.get("primary"):
        description.append(f"- Task: {e(task or '?')}; primary score: {e(metrics.get('primary') or '?')}.")
    intended = [
        f"{'Predicting values for' if task == 'regression' else 'Classifying'} new rows drawn from the "
        "same population and measured the same way as the "
        "training data. The metrics below come from the held-out rows kept in `evaluation.parquet`; "
        "they say nothing about other populations, and the model was not reviewed for fairness.",
    ]
    for warning in record.get("warnings") or []:
        intended.append(f"\nTraining warning: {e(warning)}")
    training = (
        f"Trained by ModelShelf on {e(split.get('n_train', '?'))} rows; {e(split.get('n_test', '?'))} rows "
        f"(test_size={e(split.get('test_size', '?'))}, random_state={e(split.get('random_state', '?'))}, "
        f"stratify={e(split.get('stratify', '?'))}) held out for evaluation."
        if split
        else "Saved into ModelShelf from Python; the training procedure was not recorded."
    )
    loading = [f"Files in this bundle, checked by `manifest.json` (sha256 of each): {', '.join(formats_available)}."]
    for fmt in formats_available:
        types = skops_needed if fmt in ("skops", "bundle") else None
        loading += ["", f"**{fmt}**", "", *_fence(how_to_load(record, fmt, skops_types=types))]
    for fmt, reason in omitted.items():
        loading += ["", f"No {fmt} form: {e(reason)}"]
    card.add(
        **{
            "Model description": "\n".join(description),
            "Model description/Intended uses & limitations": "\n".join(intended),
            "Model description/Training Procedure": training,
            "How to Get Started with the Model": "\n".join(loading),
        }
    )
    card.add_metrics(**_metrics_table(metrics))
    for section in (
        "Model description/Training Procedure/Model Plot",
        "Model Card Authors",
        "Model Card Contact",
        "Citation",
    ):
        with contextlib.suppress(KeyError):
            card.delete(section)
    return card.render()


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name])
    return buffer.getvalue()


def build_bundle(store: Store, ref: str) -> tuple[bytes, dict[str, Any]]:
    """The bundle of a version, and a summary (files, sha256s, what was left out and why)."""
    record = store.get(ref)
    ref = ref_of(record)
    model_file = f"model.{formats.EXTENSIONS[record['format']]}"
    files: dict[str, bytes] = {model_file: store.read_artifact(ref)}
    loaded = store.load(ref)  # a stranger's model stays in the worker: conversions happen there
    omitted: dict[str, str] = {}
    available = [record["format"]]
    try:
        files["model.onnx"], _ = ensure_onnx(store, ref, loaded=loaded)
        available.append("onnx")
    except FormatError as exc:
        omitted["onnx"] = str(exc)
    try:
        files["params.json"], _ = ensure_params(store, ref, loaded=loaded)
        files[PREDICTOR_FILENAME] = predictor_source().encode("utf-8")
        available.append("json")
    except FormatError as exc:
        omitted["json"] = str(exc)
    record = store.get(ref)  # now with its exports recorded
    kept = record.get("evaluation_set")
    if kept:
        files["evaluation.parquet"] = store.read_attached(ref, kept["path"], kept["sha256"], "evaluation set")
    public = {k: v for k, v in record.items() if k != "uri"}
    files["metadata.json"] = json.dumps(public, indent=2, default=to_jsonable, allow_nan=True).encode("utf-8")
    files["requirements.txt"] = requirements_txt(record).encode("utf-8")
    needed = skops_types(files[model_file]) if record["format"] == "skops" else None
    files["README.md"] = model_card(record, loaded.model, [*available, "bundle"], omitted, needed).encode("utf-8")
    manifest = {
        "format": BUNDLE_FORMAT,
        "bundle_version": BUNDLE_VERSION,
        "name": record["name"],
        "version": record["version"],
        "model": {"file": model_file, "format": record["format"], "sha256": record["sha256"]},
        "omitted": omitted,
        "files": {
            name: {"sha256": formats.sha256_bytes(data), "size_bytes": len(data)}
            for name, data in sorted(files.items())
        },
    }
    files[MANIFEST] = json.dumps(manifest, indent=2).encode("utf-8")
    data = _zip(files)
    info = {"sha256": formats.sha256_bytes(data), "files": manifest["files"], "omitted": omitted}
    return data, info


# -- import -----------------------------------------------------------------------------------------


def is_bundle(data: bytes) -> bool:
    """True when the bytes are a zip with a ModelShelf bundle manifest (by content, not by name)."""
    if not data.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if MANIFEST not in archive.namelist():
                return False
            if archive.getinfo(MANIFEST).file_size > 1024 * 1024:
                return False
            manifest = json.loads(archive.read(MANIFEST))
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, KeyError, OSError, RecursionError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == BUNDLE_FORMAT


def read_bundle(data: bytes, limits: Any = None) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and every file, each checked against its sha256 (a mismatch names the file).

    ``limits`` (a ``core.safety.LoadLimits``; the configured ones by default) bound what the
    archive may unpack to, as for any other zip-based upload.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise FormatError("Not a bundle: the file is not a readable zip archive") from exc
    with archive:
        check_zip(data, limits or LoadLimits.from_settings(), max_entries=MAX_ENTRIES)
        names = archive.namelist()
        if MANIFEST not in names:
            raise FormatError("Not a ModelShelf bundle: it has no manifest.json")
        for small in (MANIFEST, METADATA):  # bounded before they are read, let alone parsed
            if small in names and archive.getinfo(small).file_size > MAX_METADATA_BYTES:
                raise FormatError(too_large(small, archive.getinfo(small).file_size))
        try:
            manifest = json.loads(archive.read(MANIFEST))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise FormatError("The bundle's manifest.json is not valid JSON") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
            raise FormatError(f'Not a ModelShelf bundle: manifest.json lacks "format": "{BUNDLE_FORMAT}"')
        if manifest.get("bundle_version") != BUNDLE_VERSION:
            raise FormatError(
                f"Unsupported bundle_version {manifest.get('bundle_version')!r}; this ModelShelf reads {BUNDLE_VERSION}"
            )
        _check_manifest_ref(manifest)
        listed = manifest.get("files") or {}
        if not isinstance(listed, dict) or not all(isinstance(v, dict) for v in listed.values()):
            raise FormatError('The bundle\'s manifest.json has no valid "files" table; nothing imported')
        extra = [n for n in names if n != MANIFEST and n not in listed]
        if extra:
            raise IntegrityError(f"The bundle holds {extra[0]!r}, which its manifest does not list; nothing imported")
        files: dict[str, bytes] = {}
        for name, expected in listed.items():
            if name not in names:
                raise IntegrityError(f"The bundle lacks {name!r}, which its manifest lists; nothing imported")
            content = archive.read(name)
            actual = formats.sha256_bytes(content)
            if actual != expected.get("sha256"):
                raise IntegrityError(
                    f"The bundle's file {name!r} does not match its manifest (sha256 {actual[:16]}..., "
                    f"listed {str(expected.get('sha256'))[:16]}...): it was changed or damaged; "
                    "nothing imported"
                )
            files[name] = content
    model = manifest.get("model")
    if not isinstance(model, dict) or model.get("file") not in files:
        raise FormatError("The bundle's manifest names no model file it holds")
    if listed[model["file"]]["sha256"] != model.get("sha256"):  # the file itself was checked above
        raise IntegrityError(f"The bundle's model file {model['file']!r} does not have the sha256 the manifest records")
    return manifest, files


def _check_manifest_ref(manifest: dict[str, Any]) -> None:
    """The manifest's ``name`` and ``version`` (shown in messages and kept in the record) must be valid."""
    try:
        check_name(manifest.get("name"))
    except InvalidParameterError as exc:
        raise FormatError(f"The bundle's manifest.json: {exc}; nothing imported") from exc
    version = manifest.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise FormatError(
            f"The bundle's manifest.json: version {str(version)[:40]!r} is not a whole number from 1 to "
            f"{MAX_VERSION}; nothing imported"
        )


def _existing(store: Store, name: str, sha256: str) -> VersionRecord | None:
    for record in store.list(name=name):
        if record["name"] == name and record["sha256"] == sha256:
            return record
    return None


def _rebuild_exports(store: Store, ref: str, loaded: LoadedModel) -> list[str]:
    """Make the version's ONNX and JSON forms here, from the safely loaded model; say what was left out.

    The bundle's own ``model.onnx`` and ``params.json`` are never run or parsed (an ONNX graph can
    loop for ever or allocate gigabytes, a JSON tree can hold a cycle, a backdoored file can agree
    with the model on the sender's own rows): they only had to match the manifest.
    """
    notes: list[str] = []
    for key, ensure in (("onnx", ensure_onnx), ("json", ensure_params)):
        try:
            ensure(store, ref, loaded=loaded)
        except ModelShelfError as exc:
            notes.append(f"no {key} form: {exc}")
        except Exception as exc:  # noqa: BLE001 - the version is stored; an export is optional and made again later
            notes.append(f"no {key} form: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
    return notes


def _class_name(estimator: Any, record: VersionRecord) -> str:
    """The estimator's class name; a model held by a worker is named by its record, not as a proxy."""
    if isinstance(estimator, WorkerModel):
        return str(record.get("estimator") or estimator.estimator).rsplit(".", 1)[-1]
    return type(estimator).__name__


def _check_parquet_size(blob: bytes, limits: Any) -> None:
    """What the evaluation set decodes to (``frames.parquet_decoded_bytes``), before any page is
    decompressed: the zip bound only sees the compressed file, and a few kB of zstd can hold
    millions of repeated rows. It must fit the configured decompression limit."""
    # pyarrow is heavy: loaded when a bundle with an evaluation set is imported, not with this module.
    import pyarrow as pa

    from core.frames import parquet_decoded_bytes  # deferred: pyarrow, as above

    limit = (limits or LoadLimits.from_settings()).max_decompressed_bytes
    try:
        decoded = parquet_decoded_bytes(blob, limit)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise FormatError(f"The bundle's evaluation.parquet cannot be read: {exc}") from exc
    if decoded > limit:
        raise UnsafeModelError(
            f"The bundle's evaluation.parquet decodes to about {decoded:,} bytes, over the {limit:,}-byte "
            "limit; nothing imported"
        )


def _saved_environment(metadata: dict[str, Any], sklearn_version: str | None) -> dict[str, Any]:
    """The environment the bundle says it was saved in (checked by the schema), else only what the file says."""
    environment = metadata.get("environment")
    if environment and environment.get("packages"):
        return environment
    return {"packages": {"scikit-learn": sklearn_version} if sklearn_version else {}}


def import_bundle(
    store: Store,
    data: bytes,
    name: str | None = None,
    *,
    filename: str | None = None,
    tags: Any = (),
    note: str = "",
    owner: str | None = None,
    limits: Any = None,
) -> BundleImport:
    """Verify, safely load, re-score and store a bundle's model as a new version (or say it is there)."""
    tag_list = [check_label(t, "tag") for t in tags]
    check_note(note)
    manifest, files = read_bundle(data, limits)
    model_entry = manifest["model"]
    metadata = parse_metadata(files.get(METADATA, b"{}"))
    name = check_name(name or manifest["name"])
    model_bytes = files[model_entry["file"]]
    sha256 = model_entry["sha256"]
    found = _existing(store, name, sha256)
    if found is not None:
        ref = ref_of(found)
        return BundleImport(
            found, False, f"Already in the store as {ref} (same name and model sha256); nothing imported"
        )
    # As core.importing.load_upload does for any upload (importing is the front door that hands bundles
    # here, so it is not imported here): in a sandboxed worker, never unpickled here, and in demo mode
    # only behind a real sandbox.
    require_strong_sandbox()
    model = load_in_worker(model_bytes, limits or LoadLimits.from_settings())
    facts = model.facts
    if facts["format"] != model_entry.get("format"):
        raise FormatError(
            f"The bundle says its model is {str(model_entry.get('format'))[:20]!r}, but the bytes are {facts['format']}"
        )
    eval_frame = None
    X = y = None
    if "evaluation.parquet" in files:
        _check_parquet_size(files["evaluation.parquet"], limits)
        try:
            eval_frame = pd.read_parquet(io.BytesIO(files["evaluation.parquet"]))
            X, y = split_evaluation_frame(eval_frame)
        except (KeyError, ValueError, OSError) as exc:
            raise FormatError(f"The bundle's evaluation.parquet cannot be read: {exc}") from exc
    # What the sender says the model scored: kept as a claim, apart from anything measured here.
    claimed = metadata.get("metrics") or {}
    metrics: dict[str, Any] = {}
    if X is not None:
        try:
            metrics = model.score_metrics(model_input(model, X), y)
        except (ValueError, TypeError, KeyError) as exc:
            raise FormatError(f"The bundle's model cannot score its own evaluation set: {exc}") from exc
    recorded = claimed.get("accuracy")
    described = facts  # describe_model's fields, computed by the worker
    sklearn_version = facts.get("sklearn_version")
    fields = {
        "format": model_entry["format"],
        "compression": metadata.get("compression"),
        "estimator": described["estimator"],
        "params": described["params"],
        "metrics": metrics,  # measured here, on the bundle's rows; empty when it has none
        "claimed_metrics": claimed,
        "split": metadata.get("split"),
        "dataset": metadata.get("dataset"),
        "warnings": list(metadata.get("warnings") or []) + list(facts["warnings"]),
        "estimator_key": metadata.get("estimator_key"),
        # The environment the model was saved in (what a reload must be compared with).
        "environment": _saved_environment(metadata, sklearn_version),
        "scale": metadata.get("scale"),
        # The same shape as a plain model-file import (core.importing), plus where the bundle came from.
        "imported": {
            "filename": filename,  # the model bytes are kept as they came: the record's sha256 is theirs
            "sklearn_version": sklearn_version,
            "classes": described["classes"],
            "n_features_in": described["n_features_in"],
            "bundle": {
                "sha256": formats.sha256_bytes(data),
                "ref": ref_of(manifest),
                "created_at": metadata.get("created_at"),
                "recorded_accuracy": recorded,
            },
        },
    }
    record = store.add_imported(name, model_bytes, fields, eval_frame=eval_frame, tags=tag_list, note=note, owner=owner)
    ref = ref_of(record)
    loaded = LoadedModel(model=model, record=record, compatibility=compare_environment(dict(environment_of(record))))
    notes = _rebuild_exports(store, ref, loaded)
    accuracy = metrics.get("accuracy")
    if accuracy is not None:
        scored = f"; re-scored accuracy {accuracy!r} (recorded {recorded!r})"
    elif recorded is not None:
        scored = f"; no evaluation set: the bundle claims accuracy {recorded!r}, not measured here"
    else:
        scored = ""
    message = f"Imported {ref} from the bundle of {ref_of(manifest)}{scored}"
    return BundleImport(store.get(ref), True, message, [*facts["warnings"], *notes])


__all__ = ["DOWNLOAD_FORMATS", "BundleImport", "build_bundle", "import_bundle", "is_bundle", "read_bundle"]
