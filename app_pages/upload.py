"""Upload: add a model file made elsewhere, optionally scored on a data set, through core's safe loader."""

from __future__ import annotations

import streamlit as st

from app_pages import common
from app_pages.feedback import toast_later
from app_pages.first_row import first_row_choice
from app_pages.state import UPLOAD_MESSAGE, UPLOADED
from core.datasets import BUILTIN_DATASETS, BUILTIN_PREFIX, Dataset, load_dataset
from core.importing import FileKind, file_kind, import_file
from core.record import VersionRecord, recorded_accuracy, recorded_score, ref_of
from core.refs import suggest_name
from core.text import human_bytes, parse_tags

DATA_CHOICES = ("No data set", "Built-in data set", "Upload a CSV")
#: What the page says it was doing when something unexpected fails, by kind of file (core.importing).
ACTIONS = {"bundle": "importing the bundle", "params": "importing the JSON parameters", "model": "importing the model"}

st.title("Upload a model")
st.caption(
    "A pickle, joblib or skops file made elsewhere, a ModelShelf bundle (.zip, which carries its own "
    "evaluation set) or JSON parameters (.json, rebuilt with this scikit-learn). It is read by ModelShelf's "
    "safe loader: a file that asks to run anything outside scikit-learn's own classes is refused before it runs."
)
with st.expander("What a bundle's checksums prove"):
    st.caption(
        "A bundle's sha256s are the sender's own: they prove its files were not changed on the way, not who "
        "made it or that what it says is true. Its metadata is checked against a strict schema, its ONNX and "
        "JSON files are never run (they are made again here from the model), and the accuracy it claims is "
        "kept as a claim: only a score on rows you trust measures the model."
    )

model_file = st.file_uploader(
    "Model file",
    type=["pkl", "pickle", "joblib", "skops", "zip", "json"],
    key="upload_model",
    max_upload_size=common.settings().max_upload_mb,  # the same limit core's loader applies
)
#: Why "Add to the store" failed, drawn right under the file it is about (not below the form, out of sight).
problems = st.container()
# The data set sits outside the form: an uploaded CSV is read as it arrives, so the page can say
# whether its first row looks like names or data and preselect the choice before anything is added.
st.markdown("**Score it on a data set (optional)**")
data_choice = st.radio("Data set", DATA_CHOICES, horizontal=True, key="upload_data")
c, d = st.columns(2)
builtin = c.selectbox("Built-in data set", BUILTIN_DATASETS, index=BUILTIN_DATASETS.index("iris"))
csv_file = d.file_uploader("CSV data", type=["csv", "txt", "data"], key="upload_csv")
first_row = None
if csv_file is not None and data_choice == DATA_CHOICES[2]:
    first_row = first_row_choice(csv_file.getvalue(), "upload_header", container=d)
with st.form("upload_form"):
    default = suggest_name(model_file.name) if model_file is not None else ""
    name = st.text_input("Name to store it under", value=default)
    a, b = st.columns(2)
    tags = a.text_input("Tags, comma-separated")
    note = b.text_input("Note")
    f, g, h = st.columns(3)
    target = f.text_input("Target column (CSV; default: the last)")
    test_size = g.slider("Test size", min_value=0.05, max_value=0.95, value=0.33, step=0.01)
    seed = h.number_input("Seed", min_value=0, max_value=2**32 - 1, value=7, step=1, placeholder="None")
    submitted = st.form_submit_button("Add to the store", type="primary")


def dataset_choice():
    """The data set to score on (None for none); raises core's DatasetError on a bad CSV."""
    if data_choice == DATA_CHOICES[1]:
        return load_dataset(BUILTIN_PREFIX + builtin)
    if data_choice == DATA_CHOICES[2]:
        if csv_file is None or first_row is None:  # no file, or one already reported as unreadable
            from core.errors import DatasetError

            raise DatasetError("Choose a readable CSV file to score on, or pick 'No data set'")
        header, names = first_row
        return load_dataset(
            csv_file.getvalue(), names=names, target=target.strip() or None, label=csv_file.name, header=header
        )
    return None


def add_file(data: bytes, kind: FileKind, dataset: Dataset | None) -> VersionRecord:
    """Any kind of file, through the import the command line uses too (core.importing.import_file)."""
    assert model_file is not None  # called only once a file is chosen
    imported = import_file(
        common.get_store(),
        data,
        name.strip(),
        kind=kind,
        filename=model_file.name,
        dataset=dataset,
        test_size=test_size,
        seed=None if seed is None else int(seed),
        tags=parse_tags(tags),
        note=note,
        on_duplicate="refuse",  # the page offers the identical version instead of a copy
        **common.owner_kwargs(),
    )
    if imported.bundle is not None and not imported.bundle.created:
        return imported.record | {"duplicate_of": ref_of(imported.record), "stored": False}
    if imported.bundle is not None:
        st.session_state[UPLOAD_MESSAGE] = imported.bundle.message
    elif kind == "params":
        st.session_state[UPLOAD_MESSAGE] = (
            "Rebuilt from its JSON parameters with this scikit-learn; a JSON file carries no evaluation set, "
            "so it is not scored yet."
        )
    return imported.record


def submit() -> VersionRecord | None:
    """Read, check and add the chosen file; each problem is shown where this is called."""
    if model_file is None:
        st.error("Choose a model file first.")
        return None
    data = model_file.getvalue()
    kind = common.attempt("reading the file", file_kind, data)
    # A bundle brings its own evaluation set and JSON parameters none: only a model file is scored here.
    scored = kind == "model" and data_choice != DATA_CHOICES[0]
    dataset = common.attempt("reading the data set", dataset_choice) if scored else None
    if kind is not None and (dataset is not None or not scored):
        return common.attempt(ACTIONS[kind], add_file, data, kind, dataset)
    return None


if submitted:
    st.session_state.pop(UPLOADED, None)
    st.session_state.pop(UPLOAD_MESSAGE, None)
    with problems:
        record = submit()
    if record is not None:
        st.session_state[UPLOADED] = record
        if record.get("stored") is not False:
            toast_later(f"Added as {ref_of(record)}.")
            st.rerun()  # so the sidebar counts the new version

record = st.session_state.get(UPLOADED)
if record is not None and record.get("stored") is False:
    ref = ref_of(record)
    problems.info(
        f"Not added: this file is identical to {common.plain(ref)} (same bytes, same sha256), so no copy was stored.",
        icon=":material/content_copy:",
    )
    if problems.button(f"Open {common.plain(ref)}", key="open_duplicate_upload"):
        common.open_version(ref)
elif record is not None:
    ref = ref_of(record)
    st.success(f"The file is stored as {common.plain(ref)}.", icon=":material/check_circle:")
    if st.session_state.get(UPLOAD_MESSAGE):
        st.caption(common.plain(st.session_state[UPLOAD_MESSAGE]))
    imported = record.get("imported") or {}
    accuracy = recorded_accuracy(record)
    claimed = recorded_accuracy(record, "claimed_metrics")
    compression = f" ({record['compression']})" if record.get("compression") else ""
    cols = st.columns(3)
    cols[0].metric("Format", common.plain(str(record.get("format")) + compression))
    cols[1].metric("Saved with scikit-learn", common.plain(imported.get("sklearn_version") or "unknown"))
    if accuracy is None and isinstance(claimed, float):
        cols[2].metric("Accuracy (claimed)", f"{claimed:.4f}")
        cols[2].caption("Claimed by the sender, not measured here.")
    elif record.get("task") == "regression":
        r2 = recorded_score(record)[1]
        cols[2].metric("R²", "not scored" if r2 is None else f"{r2:.4f}")
    else:
        cols[2].metric("Accuracy", "not scored" if accuracy is None else f"{accuracy:.4f}")
    if record.get("task") in ("clustering", "transformer"):
        cols[2].caption(f"A {record['task']} model: stored and listed, not scored.")
    st.text(f"Estimator: {record.get('estimator')}")
    st.text(f"sha256: {record.get('sha256')}   size: {human_bytes(record.get('size_bytes'))}")
    for warning in record.get("warnings") or []:
        st.warning(common.plain(warning), icon=":material/warning:")
    if st.button(f"Open {common.plain(ref)}", key="open_uploaded"):
        common.open_version(ref)
