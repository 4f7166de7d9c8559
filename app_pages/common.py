"""What every dashboard page shares: the cached store and model loads, error display, demo mode.

Only view plumbing lives here; anything that computes something belongs in ``core``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
import plotly.express as px
import streamlit as st

from core import Store
from core.errors import ModelShelfError
from core.settings import Settings, load_settings
from core.store import LoadedModel, default_store_path
from core.text import escape_markdown

T = TypeVar("T")
log = logging.getLogger("modelshelf.dashboard")

#: Page files, relative to streamlit_app.py (st.switch_page and AppTest use these paths).
TRAIN = "app_pages/train.py"
MODELS = "app_pages/models.py"
DETAIL = "app_pages/model_detail.py"
UPLOAD = "app_pages/upload.py"
FORMATS = "app_pages/formats.py"


@st.cache_resource(show_spinner=False)
def _store(location: str) -> Store:
    return Store(location)


def get_store() -> Store:
    """The store at ``$MODEL_STORE`` (else ./models), opened once per process."""
    return _store(default_store_path())


@st.cache_resource(max_entries=16, show_spinner="Loading the model (sha256 checked first)...")
def _load(location: str, ref: str, sha256: str) -> LoadedModel:
    return _store(location).load(ref)


def load_model(ref: str) -> LoadedModel:
    """A version's model, loaded once and kept, keyed by the file's sha256 (a changed file reloads)."""
    store = get_store()
    row = store.row(ref)
    return _load(store.location, f"{row.name}:{row.version}", row.sha256)


def settings() -> Settings:
    """Deployment settings (env vars or secrets.toml, read by core.settings).

    A broken setting stops the app with one message: guessing could expose a public demo.
    """
    try:
        return load_settings()
    except ModelShelfError as exc:
        st.error("ModelShelf is misconfigured: " + escape_markdown(exc), icon=":material/error:")
        st.stop()


def demo_mode() -> bool:
    """A public demo: changes are scoped to this browser session, paths and tracebacks stay hidden."""
    return settings().demo


def owner_kwargs() -> dict[str, str]:
    """``{"owner": <this browser session's id>}`` in demo mode, else nothing (a private store)."""
    if not demo_mode():
        return {}
    if "owner" not in st.session_state:
        st.session_state["owner"] = "demo-" + uuid.uuid4().hex[:16]
    return {"owner": st.session_state["owner"]}


def after_save() -> list[str]:
    """In demo mode, evict the oldest demo versions beyond the quota; returns what was evicted."""
    found = settings()
    if not found.demo:
        return []
    evicted = get_store().enforce_quota(found.demo_max_versions, found.demo_max_bytes)
    if evicted:
        st.session_state["evicted"] = evicted  # shown once by the sidebar, after the rerun
    return evicted


def show_error(exc: BaseException, action: str) -> None:
    """One clear message: core's own for a refusal, a generic one for anything unexpected."""
    if isinstance(exc, ModelShelfError):
        st.error(escape_markdown(exc), icon=":material/error:")
        return
    log.exception("Unexpected error while %s", action, exc_info=exc)
    st.error(
        f"Something went wrong while {action}; nothing was changed. The details are in the server log.",
        icon=":material/error:",
    )


def attempt(action: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Run ``fn``; on failure show one ``st.error`` (never a traceback) and return None.

    Streamlit's own control flow (rerun, switch_page, stop) derives from BaseException and
    passes through untouched.
    """
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one message on the page
        show_error(exc, action)
        return None


def plain(text: object) -> str:
    """User text for a Markdown-rendering element (caption, success...), made inert."""
    return escape_markdown(text)


def open_version(ref: str) -> None:
    """Go to the detail page of ``ref`` with a deep link (``?model=NAME:VERSION``)."""
    st.switch_page(DETAIL, query_params={"model": ref})


def version_picker(key: str, current: str | None = None) -> str | None:
    """Choose a version by name, then number (cheap at any store size: two index queries)."""
    store = get_store()
    names = store.names()
    if not names:
        st.info("The store is empty: train a model on the Train page or upload one.")
        return None
    state = st.session_state
    name_key = f"{key}_name"
    if current and current != state.get(f"{key}_link"):
        # A new link (?model=NAME:VERSION or NAME@ALIAS) wins over what the pickers held before.
        state[f"{key}_link"] = current
        linked = attempt("opening the link", store.row, current)
        if linked is not None:
            state[name_key] = linked.name
            state[f"{key}_version_{linked.name}"] = linked.version
    if state.get(name_key) not in names:
        state[name_key] = names[0]
    left, right = st.columns([3, 1])
    name = left.selectbox("Model", names, key=name_key)
    numbers = store.versions(name)  # only versions that exist: deleted ones are not offered
    version_key = f"{key}_version_{name}"
    if state.get(version_key) not in numbers:
        state[version_key] = numbers[0]
    version = right.selectbox("Version", numbers, key=version_key)
    return f"{name}:{int(version)}"


def table_height(rows: int, cap: int = 20) -> int:
    """A dataframe height that shows ``rows`` rows (up to ``cap``) without an inner scroll bar."""
    return 38 + 35 * min(max(rows, 1), cap)


def confusion_figure(cm: pd.DataFrame) -> Any:
    """A confusion matrix as a heat map with its counts written in, classes as categories."""
    fig = px.imshow(cm, text_auto=True, color_continuous_scale="Greens", title="Confusion matrix")
    fig.update_xaxes(type="category", title="predicted")
    fig.update_yaxes(type="category", title="true")
    return fig
