"""Train: pick data, an estimator and its hyperparameters, fit, judge the result, save it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from app_pages import common
from app_pages.feedback import toast_later
from app_pages.first_row import first_row_choice
from app_pages.state import TRAIN_DUPLICATE, TRAIN_ESTIMATOR, TRAIN_RESULT, TRAIN_SAVED
from app_pages.workbench import compare_section
from core.catalog import Param
from core.catalog_tasks import catalog_for, spec_for
from core.csvheader import HeaderMode
from core.datasets import BUILTIN_DATASETS, BUILTIN_PREFIX, PIMA_NAMES, PIMA_URL, from_frame, load_frame
from core.formats import DEFAULT_FORMAT
from core.metrics import TASK_METRICS
from core.record import ref_of
from core.refs import suggest_name
from core.tasks import TRAINABLE, infer_task
from core.text import parse_tags
from core.views import confusion_frame, feature_weights

if TYPE_CHECKING:
    from core.training import TrainResult

STALE_HELP = "Train again first: this result is out of date"
SOURCES = ("Built-in data set", "Upload a CSV", "CSV from a URL")
TASK_CHOICES = ("auto", *TRAINABLE)
#: How each metric is labelled above its figure.
METRIC_LABELS = {
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "roc_auc": "ROC AUC",
    "r2": "R²",
    "mae": "MAE",
    "rmse": "RMSE",
    "mape": "MAPE",
    "max_error": "Max error",
}


@st.cache_data(show_spinner="Reading the data...", max_entries=8)
def read_frame(source: str | bytes, names: tuple[str, ...] | None, header: HeaderMode = "auto") -> pd.DataFrame:
    return load_frame(source, list(names) if names else None, header=header)


def choose_data() -> tuple[pd.DataFrame, str, tuple[Any, ...]] | None:
    """The table, a label for it and what identifies the data read, from the chosen source (None until then).

    The identity (source, upload id, first-row choice, column names) is part of ``inputs_of``: a
    different file, URL or reading of it makes the shown result out of date.
    """
    kind = st.radio("Data source", SOURCES, horizontal=True, key="train_source")
    if kind == SOURCES[0]:
        name = st.selectbox("Data set", BUILTIN_DATASETS, index=BUILTIN_DATASETS.index("iris"), key="train_builtin")
        label = BUILTIN_PREFIX + name
        frame = common.attempt("reading the data", read_frame, label, None)
        return None if frame is None else (frame, label, (label,))
    if kind == SOURCES[1]:
        upload = st.file_uploader("CSV file", type=["csv", "txt", "data"], key="train_csv")
        if upload is None:
            st.info("Upload a CSV table: one row per example, one column per feature, plus the target column.")
            return None
        source: str | bytes = upload.getvalue()
        label, names_default = upload.name, ""
        identity = upload.file_id  # each upload its own, without hashing the bytes on every rerun
    else:
        source = st.text_input("CSV URL", value=PIMA_URL, key="train_url")
        st.caption(
            "The example is the tutorial's Pima Indians diabetes data (no header row, hence the names); "
            "it also ships as builtin:pima, which needs no network."
        )
        if common.demo_mode():
            st.caption("This public demo reads https:// URLs to public internet addresses only, size and time bounded.")
        label, names_default = str(source), ",".join(PIMA_NAMES)
        identity = str(source)
    chosen = first_row_choice(source, "train_csv_header" if kind == SOURCES[1] else "train_url_header", names_default)
    frame = None
    if chosen is not None:
        header, names = chosen
        frame = common.attempt("reading the data", read_frame, source, tuple(names) if names else None, header)
    if frame is None:
        if kind == SOURCES[2] and not common.demo_mode():
            st.caption("Reading a URL needs network access; without it, download the file and upload it instead.")
        return None
    return frame, label, (kind, identity, header, tuple(names or ()))


def param_widget(estimator: str, param: Param, column: Any, task: str = "classification") -> Any:
    """One input built from a hyperparameter's schema (type, range, choices, None allowed).

    A regressor's widgets have keys of their own: ``random_forest``'s criterion differs by task.
    """
    key = f"param_{estimator}_{param.name}" if task == "classification" else f"param_{task}_{estimator}_{param.name}"
    help_text = (param.help + " " if param.help else "") + f"Accepts {param.describe()}."
    if param.kind == "bool":
        return column.checkbox(param.name, value=bool(param.default), key=key, help=help_text)
    if param.kind == "choice":
        choices = list(param.choices)
        return column.selectbox(
            param.name,
            choices,
            index=choices.index(param.default),
            format_func=lambda c: "None" if c is None else str(c),
            key=key,
            help=help_text,
        )
    is_int = param.kind == "int"
    cast = int if is_int else float
    return column.number_input(
        param.name,
        min_value=cast(param.low) if param.low is not None else None,
        max_value=cast(param.high) if param.high is not None else None,
        value=None if param.default is None else cast(param.default),
        step=1 if is_int else None,
        format="%d" if is_int else "%g",  # 1.0, 0.0001, 1e-06: as Python writes them, never 1.00e+00
        placeholder="None" if param.nullable else None,
        key=key,
        help=help_text,
    )


def inputs_of(data: tuple[Any, ...], target: str, task: str, estimator: str, params: dict, options: dict) -> str:
    """Everything that made a result, as one comparable string (a change of any of them makes it out of date)."""
    return repr((data, target, task, estimator, sorted(params.items()), sorted(options.items())))


def fit(frame: pd.DataFrame, label: str, target: str, estimator: str, params: dict, options: dict, inputs: str) -> None:
    """Train inside a status box; keep the result in the session so it survives page changes."""
    # deferred: the page's first render (data, target, estimator widgets) needs no estimator or plot library
    from core.demo_training import train  # in demo mode: in a worker, under the demo's limits
    from core.plots import prediction_frame

    spec = spec_for(estimator, options["task"])
    with st.status(f"Training {spec.label} on {common.plain(label)}...", expanded=False) as status:
        dataset = common.attempt("preparing the data", from_frame, frame, target, label)
        result = None if dataset is None else common.attempt("training", train, dataset, estimator, params, **options)
        if result is None:
            status.update(label="Training failed", state="error", expanded=True)
            return
        status.update(label=f"Trained in {result.fit_seconds:.2f} s", state="complete")
    regression = result.task == "regression"
    st.session_state[TRAIN_RESULT] = {
        "id": uuid.uuid4().hex[:12],  # the Save form's widgets are keyed by it: each result starts fresh
        "inputs": inputs,
        "result": result,
        # Computed where the model was fitted (in demo mode a worker: a slow predict stays under its limits).
        "roc": None if regression else result.held_out()["roc"],
        "points": prediction_frame(result.y_test, result.held_out()["predicted"]) if regression else None,
        "weights": feature_weights(result.model),
        "label": label,
    }
    st.session_state.pop(TRAIN_SAVED, None)
    st.session_state.pop(TRAIN_DUPLICATE, None)


def show_result(kept: dict, stale: bool) -> None:
    # deferred: plotly loads when there is a result to draw, not on the page's first render
    import plotly.express as px

    from core.plots import predicted_vs_actual, residuals, weights_figure

    result: TrainResult = kept["result"]
    m = result.metrics
    st.subheader("Held-out results" + (" (out of date)" if stale else ""))
    if stale:
        st.warning(
            "Out of date: the data, target, task, estimator, parameters or split changed since this result "
            "was trained (or the data can no longer be read). Train again to see and save a result for them.",
            icon=":material/history:",
        )
    st.caption(
        f"{spec_for(result.estimator_key, result.task).label} ({result.task}) on {common.plain(kept['label'])}: "
        f"trained on {result.split.n_train} rows, scored on {result.split.n_test} held-out rows."
    )
    names = TASK_METRICS[result.task]
    for col, name in zip(st.columns(len(names)), names, strict=True):
        value = m.get(name)
        col.metric(METRIC_LABELS[name], "n/a" if value is None else f"{value:.4f}")
    for warning in result.warnings:
        st.warning(common.plain(warning), icon=":material/warning:")
    left, right = st.columns(2)
    if kept.get("points") is not None:
        left.plotly_chart(predicted_vs_actual(kept["points"]), width="stretch")
        right.plotly_chart(residuals(kept["points"]), width="stretch")
        left, right = st.columns(2)
    cm = confusion_frame(m)
    if cm is not None:
        left.vega_lite_chart(*common.confusion_chart_spec(cm), width="stretch")
    if kept["roc"] is not None:
        roc = pd.DataFrame(kept["roc"])
        fig = px.area(
            roc, x="fpr", y="tpr", title=f"ROC curve (AUC {m['roc_auc']:.3f})", range_x=[0, 1], range_y=[0, 1]
        )
        fig.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line={"dash": "dash", "color": "grey"})
        right.plotly_chart(fig, width="stretch")
    weights = kept["weights"]
    if weights is not None:
        # Beside the confusion matrix, or under the ROC curve; a regressor's start the row below its plots.
        slot = left if cm is None else (right if kept["roc"] is None else st)
        slot.plotly_chart(weights_figure(weights), width="stretch")


def save_form(kept: dict, stale: bool) -> None:
    """The Save form of this result: its fields keyed by the result, so a new result starts them afresh."""
    result: TrainResult = kept["result"]
    key = kept.get("id", "")
    st.subheader("Save this model")
    with st.form(f"save_form_{key}"):
        a, b, c = st.columns([2, 1, 1])
        suggested = suggest_name(kept["label"], result.estimator_key.replace("_", "-"))
        name = a.text_input("Name", value=suggested, key=f"save_name_{key}")
        offered = common.save_formats()
        fmt = b.selectbox(
            "Format",
            offered,
            index=offered.index(DEFAULT_FORMAT),
            key=f"save_format_{key}",
        )
        compress = c.number_input(
            "Compression (joblib only)", min_value=0, max_value=9, value=0, step=1, key=f"save_compress_{key}"
        )
        tags = st.text_input("Tags, comma-separated", placeholder="baseline, tutorial", key=f"save_tags_{key}")
        note = st.text_area("Note", placeholder="What this version is for", key=f"save_note_{key}")
        submitted = st.form_submit_button(
            "Save",
            type="primary",
            disabled=stale,
            help="Train again first: this result is out of date" if stale else None,
        )
    if submitted and not stale:
        record = common.attempt(
            "saving the model",
            common.get_store().save_trained,
            result,
            name.strip(),
            format=fmt,
            compress=int(compress) if fmt == "joblib" else 0,
            tags=parse_tags(tags),
            note=note,
            on_duplicate="refuse",  # the dashboard offers the identical version instead of a copy
            **common.owner_kwargs(),
        )
        if record is not None and record.get("stored") is False:
            st.session_state[TRAIN_DUPLICATE] = ref_of(record)
            st.session_state.pop(TRAIN_SAVED, None)
        elif record is not None:
            st.session_state[TRAIN_SAVED] = ref_of(record)
            st.session_state.pop(TRAIN_DUPLICATE, None)
            toast_later(f"Saved as {ref_of(record)}.")
            st.rerun()  # so the sidebar counts the new version
    same = st.session_state.get(TRAIN_DUPLICATE)
    if same:
        st.info(
            f"Not saved: this model is identical to {common.plain(same)} (same bytes, same sha256), "
            "so no copy was stored.",
            icon=":material/content_copy:",
        )
        if st.button(f"Open {same}", key="open_duplicate"):
            common.open_version(same)
    saved = st.session_state.get(TRAIN_SAVED)
    if saved:
        # The toast confirmed the save; this line stays, in other words, beside its Open button.
        st.success(f"This result is stored as {common.plain(saved)}.", icon=":material/check_circle:")
        if st.button(f"Open {saved}", key="open_saved"):
            common.open_version(saved)


st.title("Train a model")
chosen = choose_data()
current: str | None = None  # what the inputs on screen are (None: no data read)
if chosen is not None:
    frame, label, data_id = chosen
    with st.expander(f"Preview: {len(frame)} rows, {frame.shape[1]} columns", expanded=False):
        st.dataframe(frame.head(200), hide_index=True)
    columns = [str(c) for c in frame.columns]
    target = st.selectbox(
        "Target column (what to predict)",
        columns,
        index=columns.index("target") if "target" in columns else len(columns) - 1,
        key="train_target",
    )
    inferred, why = infer_task(frame[target])
    choice = st.radio(
        "Task",
        TASK_CHOICES,
        horizontal=True,
        key="train_task",
        format_func=lambda t: f"auto ({inferred})" if t == "auto" else t,
    )
    task = inferred if choice == "auto" else choice
    st.caption(f"Inferred task: {inferred}, because {common.plain(why)}.")
    catalog = catalog_for(task)
    if st.session_state.get(TRAIN_ESTIMATOR) not in (None, *catalog):
        del st.session_state[TRAIN_ESTIMATOR]  # a key of the other task: start from this task's first
    estimator = st.selectbox("Estimator", list(catalog), format_func=lambda k: catalog[k].label, key=TRAIN_ESTIMATOR)
    spec = catalog[estimator]
    st.caption(spec.description)
    # Not a form: a form keeps its widgets' changes from the server until it is submitted, so the shown
    # result could not be marked out of date when a hyperparameter or the split changes.
    with st.container(border=True):
        st.markdown("**Hyperparameters**")
        grid = st.columns(3)
        params = {p.name: param_widget(estimator, p, grid[i % 3], task) for i, p in enumerate(spec.params)}
        st.markdown("**Split and preprocessing**")
        a, b, c, d = st.columns(4)
        test_size = a.slider("Test size", min_value=0.05, max_value=0.95, value=0.33, step=0.01)
        seed = b.number_input("Seed", min_value=0, max_value=2**32 - 1, value=7, step=1, placeholder="None")
        stratify = c.checkbox("Stratify the split", value=False)
        scale = d.checkbox("Scale numeric features", value=False)
        go = st.button("Train", type="primary", key="train_go")
    options: dict[str, Any] = {
        "test_size": test_size,
        "seed": None if seed is None else int(seed),
        "stratify": stratify,
        "scale": scale,
        "task": task,
    }
    current = inputs_of(data_id, target, choice, estimator, params, options)
    if go:
        fit(frame, label, target, estimator, params, options, current)

kept = st.session_state.get(TRAIN_RESULT)
if kept is not None:
    out_of_date = kept.get("inputs") != current
    show_result(kept, out_of_date)
    save_form(kept, out_of_date)

if chosen is not None:
    compare_section(frame, label, data_id, target, task)
