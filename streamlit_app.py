"""ModelShelf dashboard: a thin view over ``core`` (run with ``streamlit run streamlit_app.py``).

This script sets up the page, draws the sidebar (where the store is, how much it holds) and
hands over to the page the user picked; each page lives in ``app_pages/``.
"""

from __future__ import annotations

import streamlit as st

from app_pages import common
from app_pages.feedback import show_toasts
from core.text import human_bytes

common.new_run()
st.set_page_config(page_title="ModelShelf", page_icon=":material/shelves:", layout="wide")

pages = [
    st.Page(common.TRAIN, title="Train", icon=":material/model_training:", default=True),
    st.Page(common.MODELS, title="Models", icon=":material/table_view:"),
    st.Page(common.DETAIL, title="Model detail", icon=":material/description:"),
    st.Page(common.UPLOAD, title="Upload", icon=":material/upload_file:"),
    st.Page(common.FORMATS, title="Formats", icon=":material/compare_arrows:"),
]
# One run at a time (core.turns): with eight visitors at once the median is served in about half
# the time of interleaved runs; a run past the gate's budget (a fit) no longer holds anyone up.
with common.PAGE_TURNS.turn():
    page = st.navigation(pages)
    common.get_store()  # a store that cannot be opened says so once, here, above every page

    with st.sidebar:
        st.markdown("**ModelShelf**")
        owner = common.identify_visitor()  # demo mode: who this browser is (kept in a cookie)
        summary = common.attempt("reading the store", lambda: common.get_store().summary())
        if summary is not None:
            if common.demo_mode():
                st.caption(
                    "Public demo: everyone sees every version; you can change only the ones you made, and a "
                    "name belongs to whoever saved its first version. Nothing is removed to make room: when "
                    "your quota or the store is full, new saves are refused."
                )
                quota = common.get_store().quota
                used = common.attempt("reading your quota", lambda: common.get_store().usage(owner))
                if used is not None and quota is not None:
                    st.caption(
                        f"Yours: {used['versions']} of {quota.visitor_max_versions} versions, "
                        f"{human_bytes(used['stored_bytes'])} of {human_bytes(quota.visitor_max_bytes)}."
                    )
                st.caption(common.sandbox_summary())
                common.login_controls()
            else:
                st.caption("Store")
                st.code(str(summary["location"]), language=None, wrap_lines=True)
            if summary["read_only"]:
                st.caption(
                    ("Read-only snapshot" if summary["snapshot"] else "Read-only")
                    + ": you can browse, load, score and predict; saving, tagging and deleting are refused."
                )
            st.metric("Versions", summary["versions"])
            models = "model" if summary["names"] == 1 else "models"
            st.caption(f"{summary['names']} {models}, {human_bytes(summary['size_bytes'])}")

    show_toasts()  # confirmations of the change made by the run before
    page.run()
