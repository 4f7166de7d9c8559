"""Train page, "Compare estimators": several catalog estimators on one split, a leaderboard, save any row.

A section of the Train page (not a page of its own): it works on the data, target and task
chosen above it, and calls ``core.workbench.compare_estimators`` with a progress bar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from app_pages import common
from app_pages.feedback import toast_later
from app_pages.state import COMPARE_RESULT, COMPARE_SAVED
from core.catalog_tasks import catalog_for
from core.datasets import from_frame
from core.formats import DEFAULT_FORMAT
from core.record import ref_of
from core.refs import suggest_name
from core.text import human_bytes

if TYPE_CHECKING:
    from core.workbench import Leaderboard


def run_comparison(
    frame: pd.DataFrame, label: str, target: str, task: str, keys: list[str], options: dict, made_of: tuple
) -> None:
    """Fit ``keys`` inside a status box whose progress bar names the estimator being fitted; keep the
    leaderboard with ``made_of``, what it was made for."""
    # deferred: scikit-learn loads when estimators are fitted; in demo mode each fit runs in a worker, under limits
    from core.demo_training import compare_estimators

    with st.status(f"Comparing {len(keys)} estimators on {common.plain(label)}...", expanded=True) as status:
        bar = st.progress(0.0, text="Preparing the data...")

        def progress(done: int, total: int, key: str) -> None:
            text = f"Fitting {key} ({done + 1} of {total})..." if key else f"Fitted {total} estimators"
            bar.progress(done / total if total else 1.0, text=text)

        dataset = common.attempt("preparing the data", from_frame, frame, target, label)
        board = (
            None
            if dataset is None
            else common.attempt(
                "comparing the estimators", compare_estimators, dataset, keys, task=task, progress=progress, **options
            )
        )
        if board is None:
            status.update(label="Comparison failed", state="error", expanded=True)
            return
        best = board.entries[0]
        status.update(
            label=f"Compared {len(keys)} estimators: best {best.key} ({board.primary} {best.score or 0:.4f})",
            state="complete",
            expanded=False,
        )
    st.session_state[COMPARE_RESULT] = (made_of, board)
    st.session_state.pop(COMPARE_SAVED, None)


def leaderboard(board: Leaderboard) -> int:
    """The ranked table, one row selectable; the row index chosen (the best by default)."""
    table = board.table()
    shown = table.assign(size=table["size_bytes"].map(human_bytes)).drop(columns=["size_bytes"])
    if board.cv is None:
        shown = shown.drop(columns=["cv_mean", "cv_std"])
    if shown["error"].isna().all():
        shown = shown.drop(columns=["error"])
    st.caption(
        # The task's reason is the "Inferred task" line above the estimator: not repeated here.
        f"{board.task.capitalize()}: each trained on the same {board.n_train} "
        f"rows with its default hyperparameters, scored on the same {board.n_test} held-out rows, ranked by "
        f"{board.primary}" + (f"; cv: {board.cv}-fold cross-validation on the training rows." if board.cv else ".")
    )
    event = st.dataframe(
        shown,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="compare_leaderboard",
        height=35 * (len(shown) + 1) + 3,  # every row in view (the catalog has at most a dozen per task)
        column_config={"fit_seconds": st.column_config.NumberColumn("fit (s)", format="%.3f")},
    )
    rows = event.selection.rows
    return int(rows[0]) if rows else 0


def save_row(board: Leaderboard, index: int, label: str) -> None:
    """Save the chosen row's fitted model exactly as ``train`` would have saved it."""
    entry = board.entries[index]
    if entry.result is None:
        st.error(f"{common.plain(entry.key)} could not be fitted: {common.plain(entry.error)}")
        return
    with st.form("compare_save_form"):
        st.markdown(f"**Save #{index + 1}: {common.plain(entry.label)}** (select another row to save it instead)")
        a, b = st.columns([3, 1])
        suggested = suggest_name(label, entry.key.replace("_", "-"))  # as the Train form suggests it
        name = a.text_input("Name", value=suggested, key=f"compare_name_{entry.key}")
        offered = common.save_formats()
        fmt = b.selectbox(
            "Format",
            offered,
            index=offered.index(DEFAULT_FORMAT),
            key="compare_format",
        )
        submitted = st.form_submit_button(f"Save {entry.key}", type="primary")
    if submitted:
        record = common.attempt(
            "saving the model",
            common.get_store().save_trained,
            entry.result,
            name.strip(),
            format=fmt,
            on_duplicate="refuse",  # as on Train: the identical version is offered instead of a copy
            **common.owner_kwargs(),
        )
        if record is not None:
            duplicate = record.get("stored") is False
            st.session_state[COMPARE_SAVED] = (ref_of(record), duplicate)
            if not duplicate:
                toast_later(f"Saved as {ref_of(record)}.")
                st.rerun()  # so the sidebar counts the new version
    kept = st.session_state.get(COMPARE_SAVED)
    if kept:
        ref, duplicate = kept
        if duplicate:
            st.info(
                f"Not saved: this model is identical to {common.plain(ref)} (same bytes, same sha256), "
                "so no copy was stored.",
                icon=":material/content_copy:",
            )
        else:
            # The toast confirmed the save; this line stays, in other words, beside its Open button.
            st.success(f"This row is stored as {common.plain(ref)}.", icon=":material/check_circle:")
        if st.button(f"Open {ref}", key="open_compare_saved"):
            common.open_version(ref)


def compare_section(frame: pd.DataFrame, label: str, data_id: tuple[Any, ...], target: str, task: str) -> None:
    """The section: which estimators, folds and split; the leaderboard of the last comparison of this choice.

    ``data_id`` is what identifies the data read (as for the Train result): another file under the
    same name, or another reading of its first row, drops the leaderboard as another target does.
    """
    made_of = (data_id, target, task)
    st.divider()
    st.subheader("Compare estimators")
    catalog = catalog_for(task)
    with st.form("compare_form"):
        keys = st.multiselect(
            "Candidates (every one of the task by default)",  # not "Estimator...": that names the selectbox above
            list(catalog),
            default=list(catalog),
            format_func=lambda k: catalog[k].label,
            key=f"compare_keys_{task}",
        )
        a, b, c, d = st.columns(4)
        folds = a.number_input(
            "Cross-validation folds (0: none)", min_value=0, max_value=20, value=0, step=1, key="compare_folds"
        )
        test_size = b.slider("Test size", min_value=0.05, max_value=0.95, value=0.33, step=0.01, key="compare_test")
        seed = c.number_input("Seed", min_value=0, max_value=2**32 - 1, value=7, step=1, key="compare_seed")
        scale = d.checkbox("Scale numeric features", value=False, key="compare_scale")
        go = st.form_submit_button("Compare", type="primary")
    if go:
        if not keys:
            st.error("Choose at least one estimator to compare.")
        else:
            options: dict[str, Any] = {
                "cv": int(folds) or None,
                "test_size": test_size,
                "seed": int(seed),
                "scale": scale,
            }
            run_comparison(frame, label, target, task, keys, options, made_of)
    kept = st.session_state.get(COMPARE_RESULT)
    if kept is None:
        return
    chosen, board = kept
    if chosen != made_of:
        st.session_state.pop(COMPARE_RESULT, None)  # made for other data, target or task: no longer shown
        st.session_state.pop(COMPARE_SAVED, None)
        return
    save_row(board, leaderboard(board), label)
