"""ModelShelf dashboard: a thin view over ``core`` (run with ``streamlit run streamlit_app.py``)."""

from __future__ import annotations

import streamlit as st

from core import Store
from core.store import default_store_path

st.set_page_config(page_title="ModelShelf", page_icon=":material/shelves:", layout="wide")
st.title("ModelShelf")
store = Store(default_store_path())
summary = store.summary()
st.caption(f"Store: `{summary['location']}`: {summary['versions']} versions of {summary['names']} models")
if summary["versions"]:
    st.dataframe(store.table(limit=50), hide_index=True, width="stretch")
else:
    st.info("No models yet. Train one with:")
    st.code("python -m core train --data builtin:iris --estimator random_forest --name iris", language="bash")
