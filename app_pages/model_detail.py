"""Model detail (``?model=NAME:VERSION``): metadata, re-score, predict, downloads, manage."""

from __future__ import annotations

import base64
from typing import Any, NoReturn

import pandas as pd
import pyarrow as pa
import streamlit as st

from app_pages import common
from app_pages.feedback import toast_later
from app_pages.state import DELETE_PENDING, DELETED, DETAIL_PICKER, EXPORTS, PREDICTIONS, RESCORES
from core import views
from core.datasets import load_frame
from core.environment import compare_environment
from core.errors import ModelShelfError, NotFoundError
from core.frames import predict_table
from core.portable.how_to_load import (
    DOWNLOAD_FORMATS,
    PREDICTOR_FILENAME,
    download_filename,
    how_to_load,
    predictor_source,
    skops_types,
)
from core.record import (
    MetricsRecord,
    VersionRecord,
    cv_text,
    dataset_of,
    environment_of,
    metrics_of,
    recorded_accuracy,
    recorded_score,
    ref_of,
)
from core.tasks import PRIMARY_METRIC, task_of_record
from core.text import human_bytes, parse_tags, utc_minutes
from core.views import (
    confusion_frame,
    feature_row,
    record_json,
)

#: Short labels: all five fit a 390-pixel phone screen without scrolling the tab bar.
TABS = ("Overview", "Re-score", "Predict", "Download", "Manage")


def html_data_url(html: str) -> str:
    return "data:text/html;charset=utf-8;base64," + base64.b64encode(html.encode("utf-8")).decode("ascii")


@st.cache_resource(max_entries=64, show_spinner=False)
def overview_tables(location: str, ref: str, sha256: str, _record: VersionRecord) -> dict[str, Any]:
    """A version's Overview tables as Arrow tables, built once for every visitor, with the
    environment's status: a table given as Arrow is sent as it is, where a pandas frame is
    converted on every run of every session. Keyed like ``confusion_chart``; these parts of a
    record never change after the save."""
    compatibility = compare_environment(dict(environment_of(_record)))
    frames = views.overview_tables(_record, compatibility)
    return {"status": compatibility.status} | {
        key: pa.Table.from_pandas(frame, preserve_index=False) for key, frame in frames.items()
    }


@st.cache_resource(max_entries=64, show_spinner=False)
def confusion_chart(location: str, ref: str, sha256: str, _metrics: MetricsRecord) -> Any:
    """A version's confusion matrix chart (counts and spec), built once for every visitor.

    Keyed by the store, the version and its file's sha256: a version deleted and saved again under
    the same number gets its own chart. ``vega_lite_chart`` reads both and never changes them.
    """
    cm = confusion_frame(_metrics)
    return None if cm is None else common.confusion_chart_spec(cm)


def overview(record: VersionRecord, ref: str) -> None:
    m = metrics_of(record)
    claimed = recorded_accuracy(record, "claimed_metrics")
    task = task_of_record(record)
    primary, score = recorded_score(record)
    # One row that wraps on a phone (a block, where four columns are five: each a message per visit).
    row = st.container(horizontal=True, gap="large")
    first = row.container(width="content") if task not in PRIMARY_METRIC or claimed is not None else row
    if m.get("accuracy") is None and isinstance(claimed, float):
        first.metric("Accuracy (claimed)", f"{claimed:.4f}")
        first.caption("Claimed by the sender, not measured here.")
    elif task == "regression":
        first.metric("R²", "n/a" if score is None or primary != "r2" else f"{score:.4f}")
    else:
        first.metric("Accuracy", "n/a" if m.get("accuracy") is None else f"{m['accuracy']:.4f}")
    if task not in PRIMARY_METRIC:
        first.caption(f"A {task or 'unknown'} model: stored and listed, not scored.")
    compression = f" ({record['compression']})" if record.get("compression") else ""
    row.metric("Format", common.plain(str(record["format"]) + compression))
    row.metric("Size", human_bytes(record.get("size_bytes")))
    row.metric("Origin", common.plain(record.get("origin") or "trained"))
    st.text(f"Estimator: {record.get('estimator') or 'unknown'} ({task or 'unknown task'})")
    st.caption("Created " + common.plain(utc_minutes(record.get("created_at"))))
    if record.get("aliases"):
        st.text("Aliases: " + ", ".join("@" + a for a in record["aliases"]))
    if record.get("tags"):
        st.text("Tags: " + ", ".join(record["tags"]))
    if record.get("note"):
        st.text("Note: " + record["note"])
    st.text("sha256: " + record["sha256"])

    tables = overview_tables(common.get_store().location, ref, record["sha256"], record)
    left, right = st.columns(2)
    left.markdown(f"**Environment: saved vs now** (status: {tables['status']})")
    environment = tables["environment"]
    left.dataframe(environment, hide_index=True, height=common.table_height(environment.num_rows))
    right.markdown("**Hyperparameters**")
    right.dataframe(tables["params"], hide_index=True, height=common.table_height(tables["params"].num_rows))
    # One pair of columns for the four tables and the chart: every block is a message per visit.
    left.markdown("**Held-out metrics**")
    left.dataframe(tables["metrics"], hide_index=True)
    if cv := record.get("cv"):
        left.markdown(f"**Cross-validation on the training rows:** {cv_text(cv)}")
        left.caption("Per fold: " + ", ".join(f"{v:.4f}" for v in cv["scores"]))
    if tables["claimed"].num_rows:
        left.markdown("**Metrics claimed by the sender, not measured here**")
        left.dataframe(tables["claimed"], hide_index=True)
    store = common.get_store()
    chart = confusion_chart(store.location, ref, record["sha256"], m)
    if chart is not None:
        right.vega_lite_chart(*chart, width="stretch")
    if task == "regression" and record.get("evaluation_set"):
        regression_plots(ref, record["sha256"])

    st.markdown("**Data set**")
    st.dataframe(tables["dataset"], hide_index=True)
    if st.toggle("Show the pipeline diagram (loads the model)", key=f"diagram_{ref}"):
        loaded = common.attempt("loading the model", common.load_model, ref)
        html = None if loaded is None else common.attempt("drawing the diagram", views.diagram_html, loaded.model)
        if html is not None:
            # A data: URL gives the iframe an opaque origin: the diagram cannot reach the app.
            st.iframe(html_data_url(html), height=420)


@st.cache_data(show_spinner="Predicting the kept rows...", max_entries=8)
def kept_predictions(ref: str, sha256: str) -> pd.DataFrame:
    """``actual, predicted, residual`` on the version's kept held-out rows (cached by its hash)."""
    from core.plots import prediction_frame  # deferred: plotly loads only when a plot is asked for

    X, y = common.get_store().evaluation_set(ref)
    loaded = common.load_model(ref)
    return prediction_frame(y, common.get_store().predict(ref, X, loaded=loaded)["prediction"])


def regression_plots(ref: str, sha256: str) -> None:
    """Predicted vs actual and the residuals on the kept rows, drawn on demand (they load the model)."""
    if not st.toggle("Plot predictions on the kept held-out rows (loads the model)", key=f"plots_{ref}"):
        return
    points = common.attempt("predicting the kept rows", kept_predictions, ref, sha256)
    if points is not None:
        from core.plots import predicted_vs_actual, residuals  # deferred: see kept_predictions

        left, right = st.columns(2)
        left.plotly_chart(predicted_vs_actual(points), width="stretch")
        right.plotly_chart(residuals(points), width="stretch")


def rescore_tab(record: VersionRecord, ref: str) -> None:
    rescore(ref)


def rescore(ref: str) -> None:
    st.caption("Load the file back (sha256 checked first) and score it again on the held-out rows kept with it.")
    if st.button("Reload and re-score", type="primary", key="rescore"):
        loaded = common.attempt("loading the model", common.load_model, ref)
        evaluation = None
        if loaded is not None:
            evaluation = common.attempt("re-scoring", common.get_store().evaluate, ref, loaded=loaded)
        if evaluation is not None:
            st.session_state.setdefault(RESCORES, {})[ref] = evaluation.to_dict()
    done = st.session_state.get(RESCORES, {}).get(ref)
    if not done:
        return
    cols = st.columns(4)
    primary, recorded, score = done.get("primary") or "accuracy", done.get("recorded_score"), done.get("score")
    cols[0].metric(f"Recorded {primary}", "n/a" if recorded is None else f"{recorded:.4f}")
    cols[1].metric(f"Reproduced {primary}", "n/a" if score is None else f"{score:.4f}")
    cols[2].metric("Reproduced", {True: "yes", False: "NO", None: "n/a"}[done["reproduced"]])
    cols[3].metric("Environment", done["compatibility"]["status"])
    if done["reproduced"] is False:
        st.error("The reloaded model does not reproduce its recorded scores; the differences (now - recorded):")
        st.dataframe(
            pd.DataFrame(
                [{"metric": k, "difference": v} for k, v in (done.get("differences") or {}).items()],
                columns=["metric", "difference"],
            ),
            hide_index=True,
        )
    elif done["reproduced"]:
        st.success(
            f"Reloaded and re-scored: the recorded {primary} is reproduced to 12 significant digits, "
            "and every other score too."
        )
    for warning in done["warnings"]:
        st.warning(common.plain(warning), icon=":material/warning:")


@st.cache_data(show_spinner=False, max_entries=32)
def example_row(ref: str, sha256: str) -> dict[str, Any]:
    """The first kept held-out row: sensible defaults for the one-row form."""
    X, _ = common.get_store().evaluation_set(ref)
    return {str(k): v for k, v in X.iloc[0].items()} if len(X) else {}


@st.cache_data(show_spinner="Predicting...", max_entries=4)
def batch_predictions(ref: str, sha256: str, csv: bytes) -> pd.DataFrame:
    """Predictions for an uploaded CSV, kept so other clicks on the page do not redo them."""
    loaded = common.load_model(ref)
    return predict_table(loaded.model, load_frame(csv), loaded.record)


def predict(record: VersionRecord, ref: str) -> None:
    from core.portable.exports import predict_rows  # deferred: scikit-learn and ONNX load on the Predict tab

    dataset = dataset_of(record)
    names = dataset.get("feature_names") or []
    types = dataset.get("feature_types") or {}
    if not names:
        st.info("This version does not record its feature names, so only a CSV batch can be predicted.")
    else:
        example = {}
        if record.get("evaluation_set"):
            example = common.attempt("reading an example row", example_row, ref, record["sha256"]) or {}
        with st.form(f"predict_one_{ref}"):
            st.markdown("**One row**")
            values: dict[str, Any] = {}
            for i, feature in enumerate(names):
                if i % 4 == 0:  # a row of four at a time: on a phone they stack in the features' own order
                    grid = st.columns(4)
                column = grid[i % 4]
                default = example.get(feature)
                if types.get(feature, "number") == "number":
                    number = float(default) if default is not None and pd.notna(default) else 0.0
                    values[feature] = column.number_input(
                        common.plain(feature), value=number, format="%g", key=f"f_{ref}_{feature}"
                    )
                else:
                    values[feature] = column.text_input(
                        common.plain(feature), value="" if default is None else str(default), key=f"f_{ref}_{feature}"
                    )
            submitted = st.form_submit_button("Predict", type="primary")
        if submitted:
            out = common.attempt(
                "predicting",
                lambda: predict_rows(common.get_store(), ref, feature_row(values, record), engine="auto"),
            )
            if out is not None:
                st.session_state.setdefault(PREDICTIONS, {})[ref] = out
        single = st.session_state.get(PREDICTIONS, {}).get(ref)
        if single is not None:
            table, engine = single
            st.metric("Prediction", common.plain(table["prediction"].iloc[0]))
            st.caption(f"Computed with {engine} (ONNX when the version converts faithfully, else scikit-learn).")
            proba = table[[c for c in table.columns if c.startswith("proba_")]]
            if not proba.empty:
                st.dataframe(proba, hide_index=True)

    st.markdown("**A CSV batch** (a header row naming the feature columns)")
    upload = st.file_uploader("Rows to predict", type=["csv", "txt"], key=f"batch_{ref}")
    if upload is not None:
        out = common.attempt("predicting the CSV rows", batch_predictions, ref, record["sha256"], upload.getvalue())
        if out is not None:
            st.dataframe(out.head(1000), hide_index=True)
            download_button(
                download_filename(record, "predictions"),
                f"the {len(out)} predictions, CSV",
                lambda: out.to_csv(index=False).encode(),  # encoded on click, not on every rerun
                "text/csv",
                f"dl_pred_{ref}",
            )


@st.cache_data(show_spinner=False, max_entries=16)
def stored_skops_types(ref: str, sha256: str) -> list[str]:
    """The types the stored skops file needs (for its snippet to name), read once per file."""
    return skops_types(common.get_store().read_artifact(ref))


def download_button(filename: str, what: str, data: Any, mime: str, key: str, **options: Any) -> None:
    """A download whose label names the file it saves (``download_filename``: distinct per kind)."""
    st.download_button(
        f"Download {filename} ({what})", data, file_name=filename, mime=mime, on_click="ignore", key=key, **options
    )


def downloads(record: VersionRecord, ref: str) -> None:
    """The format picker (on the version's own format), its file, and the snippet that loads that very file."""
    from core.portable.exports import export_status, export_version  # deferred: see predict

    status = export_status(record)

    def describe(fmt: str) -> str:
        if fmt == record["format"]:
            return f"{fmt} (the stored file)"
        return f"{fmt} (refused)" if status[fmt]["status"] == "refused" else fmt

    own = DOWNLOAD_FORMATS.index(record["format"]) if record["format"] in DOWNLOAD_FORMATS else 0
    fmt = st.selectbox("Format", DOWNLOAD_FORMATS, index=own, format_func=describe, key=f"export_fmt_{ref}")
    if status[fmt]["reason"]:
        st.warning(common.plain(status[fmt]["reason"]), icon=":material/block:")
    if fmt == record["format"]:
        download_button(
            download_filename(record, fmt),
            f"the model file, {common.plain(record['format'])}, {human_bytes(record['size_bytes'])}",
            lambda: common.get_store().read_artifact(ref),
            "application/octet-stream",
            f"dl_model_{ref}",
            type="primary",
            icon=":material/download:",
        )
        st.caption("The file's sha256 is checked against the index before it is sent.")
    else:
        if st.button(f"Prepare {download_filename(record, fmt)}", key=f"export_{ref}_{fmt}"):
            exported = common.attempt(f"exporting as {fmt}", export_version, common.get_store(), ref, fmt)
            if exported is not None:  # the last one only: a session that prepared every export kept them all
                st.session_state[EXPORTS] = {(ref, fmt): exported}
        exported = st.session_state.get(EXPORTS, {}).get((ref, fmt))
        if exported is not None:
            download_button(
                exported.filename,  # download_filename's: NAME-vN.ext, safe characters
                f"{fmt}, {human_bytes(len(exported.data))}",
                exported.data,
                exported.media_type,
                f"dl_export_{ref}_{fmt}",
                icon=":material/download:",
            )
            if fmt == "json":
                download_button(
                    PREDICTOR_FILENAME,
                    "the numpy-only predictor for it",
                    predictor_source(),
                    "text/x-python",
                    f"dl_predictor_{ref}",
                )
    needed = None  # a skops snippet names the exact types of its file, once the file is known
    if record["format"] == "skops" and fmt in ("skops", "bundle"):  # the stored file, as is or bundled
        needed = common.attempt("listing the file's types", stored_skops_types, ref, record["sha256"])
    elif fmt == "skops" and (converted := st.session_state.get(EXPORTS, {}).get((ref, fmt))) is not None:
        needed = skops_types(converted.data)
    st.markdown(f"**How to load {download_filename(record, fmt)}**")
    st.code(how_to_load(record, fmt, skops_types=needed), language="python")
    drop = ("uri",) if common.demo_mode() else ()
    download_button(
        download_filename(record, "metadata"),
        "the metadata, JSON",
        record_json(record, drop=drop),
        "application/json",
        f"dl_meta_{ref}",
        icon=":material/data_object:",
    )


def _cancel_delete() -> None:
    st.session_state.pop(DELETE_PENDING, None)


@st.dialog("Delete this version?", on_dismiss=_cancel_delete)
def confirm_delete(ref: str, aliased: bool) -> None:
    st.text(f"{ref} and its files will be removed for good.")
    force = True
    if aliased:
        force = st.checkbox("It has aliases: remove them too", value=False)
    left, right = st.columns(2)
    if left.button("Delete", type="primary", disabled=not force, key="confirm_delete"):
        freed = common.attempt("deleting", common.get_store().delete, ref, force=force, **common.owner_kwargs())
        if freed is not None:
            _cancel_delete()
            st.session_state[DELETED] = (ref, freed)
            st.query_params.pop("model", None)
            st.rerun()
    if right.button("Cancel", key="cancel_delete"):
        _cancel_delete()
        st.rerun()


def changed(message: str) -> NoReturn:
    """Confirm a change with a toast and draw the page again with it."""
    toast_later(message)
    st.rerun()


def manage(record: VersionRecord, ref: str) -> None:
    store = common.get_store()
    owner = common.owner_kwargs()
    if owner and not common.attempt("checking who owns it", store.may_change, ref, owner["owner"]):
        # Not offered rather than refused on click: core would refuse each change anyway.
        st.caption(
            "Only the visitor who saved this name's first version can set its aliases, tags and note, or "
            "delete it: this version is someone else's. Save your own under a name of your own."
        )
        return
    left, right = st.columns(2)
    with left.form(f"alias_{ref}"):
        alias = st.text_input("Alias (e.g. production)").strip()
        if (
            st.form_submit_button("Set alias")
            and common.attempt("setting the alias", store.set_alias, ref, alias, **owner) is not None
        ):
            changed(f"@{alias} now points to {ref}.")
    aliases = record.get("aliases") or []
    if aliases:
        with left.form(f"unalias_{ref}"):
            gone = st.selectbox("Remove an alias", aliases, format_func=lambda a: f"@{a}")
            if (
                st.form_submit_button("Remove alias")
                and common.attempt("removing the alias", store.remove_alias, record["name"], gone, **owner) is not None
            ):
                changed(f"Removed @{gone} from {ref}.")
    with right.form(f"tags_{ref}"):
        add = st.text_input("Add tags, comma-separated")
        remove = st.multiselect("Remove tags", record.get("tags") or [])
        if (
            st.form_submit_button("Update tags")
            and common.attempt("changing the tags", store.update_tags, ref, parse_tags(add), remove, **owner)
            is not None
        ):
            changed(f"Tags of {ref} updated.")
    with st.form(f"note_{ref}"):
        note = st.text_area("Note", value=record.get("note") or "")
        if (
            st.form_submit_button("Save note")
            and common.attempt("saving the note", store.set_note, ref, note, **owner) is not None
        ):
            changed(f"Note of {ref} saved.")
    st.divider()
    if st.button("Delete this version...", icon=":material/delete:", key="delete"):
        st.session_state[DELETE_PENDING] = ref
    if st.session_state.get(DELETE_PENDING) == ref:  # kept, so the dialog's own clicks are seen
        confirm_delete(ref, bool(record.get("aliases")))


st.title("Model detail")
deleted = st.session_state.pop(DELETED, None)
if deleted:
    st.success(f"Deleted {common.plain(deleted[0])}: {human_bytes(deleted[1])} freed.", icon=":material/delete:")


def follow_link(linked: str) -> VersionRecord | None:
    """The version a link names; a link to a version that is not there says so and stays (no
    other version shown, the URL kept); any other trouble is for the picker to report, once."""
    try:
        return common.get_store().get(linked)
    except NotFoundError as exc:
        st.error(
            f"{common.plain(linked)} is not in the store: {common.plain(exc)} (deleted, or never saved).",
            icon=":material/link_off:",
        )
        if st.button("Choose another version", key="leave_missing_link"):
            st.query_params.pop("model", None)
            st.rerun()
        st.stop()
    except ModelShelfError:
        return None


linked = st.query_params.get("model")  # NAME, NAME@ALIAS or NAME:VERSION; the picker resolves it
shown = follow_link(linked) if linked else None
picked = common.version_picker(DETAIL_PICKER, current=linked, resolved=shown)
if picked is not None:
    if picked != linked:
        st.query_params["model"] = picked
    same = shown is not None and ref_of(shown) == picked
    record = shown if same else common.attempt("reading the version", common.get_store().get, picked)
    if record is not None:
        ref = ref_of(record)
        st.header(common.plain(ref), anchor=False)
        recorded = record.get("warnings") or []
        if recorded:  # at the top, whatever the tab: they say how far to trust everything below
            st.warning(
                "Recorded at training: " + "  \n".join(common.plain(w) for w in recorded), icon=":material/warning:"
            )
        # Only the open tab's body runs (on_change="rerun"): opening a link computes the Overview only.
        tabs = st.tabs(TABS, key="detail_tab", on_change="rerun")
        for tab, draw in zip(tabs, (overview, rescore_tab, predict, downloads, manage), strict=True):
            if tab.open:
                with tab:
                    draw(record, ref)
