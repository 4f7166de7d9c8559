"""Models: the registry, filtered, sorted and paged in SQL; open one version or compare several."""

from __future__ import annotations

import math

import streamlit as st

from app_pages import common
from core.text import human_bytes, utc_minutes
from core.views import METRIC_NAMES, compare_details, metrics_long, metrics_table, params_diff

PAGE_SIZE = 50
SORTS = {"Created": "created", "Score": "score", "Accuracy": "accuracy", "Name": "name"}
TASKS = ("all", "classification", "regression", "clustering", "transformer")

st.title("Models")
store = common.get_store()

a, b, t, c, d = st.columns([2, 1, 1, 1, 1])
name = a.text_input("Name contains", key="models_name").strip() or None
tag = b.text_input("Tag contains", key="models_tag").strip() or None
chosen_task = t.selectbox("Task", TASKS, key="models_task")
task = None if chosen_task == "all" else chosen_task
sort = c.selectbox("Sort by", list(SORTS), key="models_sort")
order = d.selectbox("Order", ["Descending", "Ascending"], key="models_order")

total = common.attempt("counting the versions", store.count, name=name, tag=tag, task=task)
if total is None:
    st.stop()
pages = max(1, math.ceil(total / PAGE_SIZE))
page_number = 1
if pages > 1:
    page_number = int(
        st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1, key="models_page")
    )
table = common.attempt(
    "listing the versions",
    store.table,
    name=name,
    tag=tag,
    task=task,
    sort=SORTS[sort],
    limit=PAGE_SIZE,
    offset=(page_number - 1) * PAGE_SIZE,
    descending=order == "Descending",
)
if table is None:
    st.stop()

if total == 0:
    if name or tag or task:
        st.info("No version matches these filters.")
    else:
        st.info("The store is empty: train a model on the Train page or upload one.")
    st.stop()

first = (page_number - 1) * PAGE_SIZE + 1
st.caption(
    f"Versions {first} to {first + len(table) - 1} of {total}. Select one row to open it, several to compare. "
    "The score is each version's primary one, measured here: accuracy for classifiers, R² for regressors "
    "(sorting by score mixes them); clustering and transformer models are stored and listed, not scored. "
    "A version whose only accuracy is claimed by a bundle's sender has none (and sorts last)."
)
shown = table.assign(
    size=table["size_bytes"].map(human_bytes),
    created=table["created"].map(utc_minutes),
    warnings=table["warnings"].map(lambda n: f"⚠ {n}" if n else ""),
).drop(columns=["size_bytes"])
# Open sits above the table, so a selection's action is in view on a phone too.
action = st.container()
event = st.dataframe(
    shown,
    hide_index=True,
    key=f"models_table_{name}_{tag}_{task}_{sort}_{order}_{page_number}",
    on_select="rerun",
    selection_mode="multi-row",
    # The score right after the ref (pinned): on a narrow screen both stay in view.
    column_order=[
        "ref",
        "score",
        "warnings",
        "task",
        "estimator",
        "aliases",
        "format",
        "size",
        "sklearn",
        "created",
        "tags",
        "origin",
    ],
    column_config={
        "ref": st.column_config.TextColumn("ref", pinned=True),
        "warnings": st.column_config.TextColumn(
            "⚠", help="Warnings recorded at training (e.g. ConvergenceWarning): open the version to read them"
        ),
    },
)
selected = [str(table.iloc[i]["ref"]) for i in event.selection.rows]

if len(selected) == 1:
    ref = selected[0]
    if action.button(f"Open {common.plain(ref)}", type="primary", key="open_selected"):
        common.open_version(ref)
elif len(selected) > 1:
    st.subheader(f"Comparing {len(selected)} versions")
    records = common.attempt("reading the selected versions", lambda: [store.get(r) for r in selected])
    if records:
        wide = metrics_table(records)
        unmeasured = [m for m in METRIC_NAMES if wide[m].isna().all()]  # e.g. accuracy when all are regressors
        st.dataframe(
            wide.assign(size=wide["size_bytes"].map(human_bytes)).drop(columns=["size_bytes", *unmeasured]),
            hide_index=True,
            # Every score to 4 decimals (0.9200 beside 0.9259, not 0.92), still sortable as numbers.
            column_config={m: st.column_config.NumberColumn(format="%.4f") for m in METRIC_NAMES},
        )
        from core.plots import metrics_figure  # deferred: plotly loads only when versions are compared

        st.plotly_chart(metrics_figure(metrics_long(records)), width="stretch")
        diff = params_diff(records)
        st.markdown("**Hyperparameters that differ**")
        if diff.empty:
            st.caption("The selected versions have the same hyperparameters.")
        else:
            st.dataframe(diff, hide_index=True, key="compare_params")
        details = compare_details(records)
        fingerprints = set(details["fingerprint"])
        st.markdown("**Data set and warnings**")
        if len(fingerprints) == 1 and None not in fingerprints:
            st.caption(f"All trained on the same data (fingerprint {str(next(iter(fingerprints)))[:12]}...).")
        else:
            st.caption("Not all trained on the same data (or some record none): their scores may not compare.")
        st.dataframe(details, hide_index=True, key="compare_details")
