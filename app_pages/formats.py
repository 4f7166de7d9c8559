"""Formats: one version saved as pickle, joblib (three compression levels) and skops, measured."""

from __future__ import annotations

import streamlit as st

from app_pages import common
from app_pages.state import FORMAT_COMPARISON, FORMATS_PICKER
from core.format_comparison import ADVICE, compare_formats
from core.plots import formats_figure
from core.text import human_bytes

st.title("Formats")
st.caption(
    "Save one model in every format, measure file size, save time and load time, and see which is safe to accept."
)
ref = common.version_picker(FORMATS_PICKER, current=st.query_params.get("model"))
if ref is not None:
    repeats = st.slider("Repeats (the fastest run of each is kept)", min_value=1, max_value=5, value=1)
    if st.button("Compare formats", type="primary", key="compare_formats"):
        with st.status(f"Saving and loading {common.plain(ref)} in every format...") as status:
            loaded = common.attempt("loading the model", common.load_model, ref)
            table = (
                None
                if loaded is None
                else common.attempt("comparing formats", compare_formats, loaded.model, repeats=repeats)
            )
            if table is None:
                status.update(label="The comparison failed", state="error", expanded=True)
            else:
                status.update(label=f"Measured {len(table)} variants of {common.plain(ref)}", state="complete")
                st.session_state[FORMAT_COMPARISON] = (ref, table)
    kept = st.session_state.get(FORMAT_COMPARISON)
    if kept is not None and kept[0] == ref:
        table = kept[1]
        shown = table.assign(
            size=table["size_bytes"].map(human_bytes),
            save_ms=(table["save_seconds"] * 1000).round(2),
            load_ms=(table["load_seconds"] * 1000).round(2),
        )
        st.dataframe(
            shown[["label", "size", "save_ms", "load_ms", "safe_for_strangers", "safety"]],
            hide_index=True,
            column_config={
                "save_ms": st.column_config.NumberColumn("save (ms)"),
                "load_ms": st.column_config.NumberColumn("load (ms)"),
                "safe_for_strangers": st.column_config.CheckboxColumn("safe from strangers"),
            },
        )
        fig = formats_figure(table, f"{ref}: formats compared")
        st.plotly_chart(fig, width="stretch")
        st.info(ADVICE, icon=":material/lightbulb:")
