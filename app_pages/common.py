"""What every dashboard page shares: the cached store and model loads, error display, demo mode.

Only view plumbing lives here; anything that computes something belongs in ``core``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypedDict, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import streamlit as st

from app_pages.state import OWNER, VISITOR_TOKEN, picker_link, picker_name, picker_version
from core import Store, formats
from core.errors import ModelShelfError
from core.settings import Settings, load_settings
from core.store import LoadedModel, Quota, StoreSettings, resolve_store
from core.text import escape_markdown
from core.turns import TurnGate

T = TypeVar("T")
log = logging.getLogger("modelshelf.dashboard")

#: Page files, relative to streamlit_app.py (st.switch_page and AppTest use these paths).
TRAIN = "app_pages/train.py"
MODELS = "app_pages/models.py"
DETAIL = "app_pages/model_detail.py"
UPLOAD = "app_pages/upload.py"
FORMATS = "app_pages/formats.py"

#: What the current script run has read already (a session's runs share a ScriptRunner thread:
#: ``new_run`` clears it at the start of each).
_this_run = threading.local()
#: Every session's page run takes its turn here (one per server process: this module is imported once).
PAGE_TURNS = TurnGate()


#: The cookie that keeps a demo visitor's random token across reloads (never in the URL: a shared
#: link would hand the visitor's versions over).
VISITOR_COOKIE = "modelshelf_visitor"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43,128}$")  # what secrets.token_urlsafe(32) makes, and no other text


@st.cache_resource(show_spinner=False)
def _store(key: str, quota: tuple[int, int, int, int] | None = None) -> Store:
    return StoreSettings.from_key(key).open(Quota(*quota) if quota else None)


def _quota() -> tuple[int, int, int, int] | None:
    found = settings()
    if not found.demo:
        return None
    return (
        found.demo_max_versions,
        found.demo_max_bytes,
        found.demo_session_max_versions,
        found.demo_session_max_bytes,
    )


def _secrets_table() -> Mapping[str, Any]:
    """The ``[modelshelf]`` table of ``st.secrets`` (Community Cloud's secrets too); empty without secrets."""
    try:
        table = st.secrets.get("modelshelf", {})
    except FileNotFoundError:  # no secrets file at all
        return {}
    return table if isinstance(table, Mapping) else {}


def store_settings() -> StoreSettings:
    """Which store to open (``core.store.config``: env, then secrets, then ./models); a bad one stops the app."""
    try:
        return resolve_store(secrets=_secrets_table())
    except ModelShelfError as exc:
        st.error("ModelShelf is misconfigured: " + escape_markdown(exc), icon=":material/error:")
        st.stop()


def get_store() -> Store:
    """The configured store, opened once per process; in demo mode with its quota.

    A store that cannot be opened (a damaged index, a folder that cannot be read) stops the page
    with core's one line instead of a traceback.
    """
    kept: Store | None = getattr(_this_run, "store", None)
    if kept is not None:
        return kept
    try:
        _this_run.store = _store(store_settings().key(), _quota())
    except ModelShelfError as exc:
        show_error(exc, "opening the store")
        st.stop()
    return _this_run.store


def new_run() -> None:
    """Forget what the previous run of this session read (streamlit_app.py calls it first): within
    one run the settings and the store are read once, not at every ``get_store()``."""
    _this_run.__dict__.clear()


@st.cache_resource(max_entries=16, show_spinner="Loading the model (sha256 checked first)...")
def _load(location: str, ref: str, sha256: str) -> LoadedModel:
    return get_store().load(ref)


def load_model(ref: str) -> LoadedModel:
    """A version's model, loaded once and kept, keyed by the file's sha256 (a changed file reloads)."""
    store = get_store()
    row = store.row(ref)
    return _load(store.location, row.ref, row.sha256)


def settings() -> Settings:
    """Deployment settings (env vars or secrets.toml, read by core.settings).

    A broken setting stops the app with one message: guessing could expose a public demo.
    """
    kept: Settings | None = getattr(_this_run, "settings", None)
    if kept is not None:
        return kept
    try:
        _this_run.settings = load_settings()
        return _this_run.settings
    except ModelShelfError as exc:
        st.error("ModelShelf is misconfigured: " + escape_markdown(exc), icon=":material/error:")
        st.stop()


def demo_mode() -> bool:
    """A public demo: changes are scoped to this browser session, paths and tracebacks stay hidden."""
    return settings().demo


def save_formats() -> tuple[str, ...]:
    """The formats a save form offers: a demo's visitors save as pickle or joblib (``VISITOR_FORMATS``)."""
    return formats.VISITOR_FORMATS if demo_mode() else formats.FORMATS


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def resolve_owner(
    user: Mapping[str, Any], cookie: str | None, session_token: str | None
) -> tuple[str, str | None, bool]:
    """Who this visitor is: ``(owner id, token to keep in the session, whether to set the cookie)``.

    A signed-in user (``st.login`` with an OIDC provider) is their issuer and subject (else email);
    otherwise the browser's random token: the one minted in this session, else the cookie's, else a
    new one. The index keeps only a digest, so reading the index never yields a usable token.
    """
    if user.get("is_logged_in") is True:
        subject = user.get("sub") or user.get("email")
        if subject:
            return "user-" + _digest(f"{user.get('iss') or ''}\n{subject}"), None, False
    if session_token:
        return "visitor-" + _digest(session_token), session_token, cookie != session_token
    if cookie and _TOKEN.match(cookie):
        return "visitor-" + _digest(cookie), cookie, False
    token = secrets.token_urlsafe(32)
    return "visitor-" + _digest(token), token, True


def cookie_script(token: str) -> str:
    """JavaScript that keeps ``token`` in the visitor cookie for a year (SameSite=Strict; not HttpOnly:
    a script cannot set that, see docs/safety.md)."""
    if not _TOKEN.match(token):
        raise ValueError("not a visitor token")
    value = json.dumps(f"{VISITOR_COOKIE}={token}; Path=/; Max-Age=31536000; SameSite=Strict")
    return (
        "<script>document.cookie = " + value + ' + (window.location.protocol === "https:" ? "; Secure" : "");</script>'
    )


def request_cookie() -> str | None:
    """The visitor cookie sent with this session's first request (None in AppTest or a new browser)."""
    value = st.context.cookies.get(VISITOR_COOKIE)
    return value if isinstance(value, str) else None


def _user_info() -> dict[str, Any]:
    try:
        info = st.user.to_dict()
        return info if isinstance(info, dict) else {}
    except Exception:  # noqa: BLE001 - no auth configured or no request: an anonymous visitor
        return {}


def identify_visitor() -> str | None:
    """In demo mode, this visitor's owner id (kept in the session; the cookie set when it is new)."""
    if not demo_mode():
        return None
    owner, token, set_cookie = resolve_owner(_user_info(), request_cookie(), st.session_state.get(VISITOR_TOKEN))
    st.session_state[OWNER] = owner
    if token is not None:
        st.session_state[VISITOR_TOKEN] = token
        if set_cookie:
            st.html(cookie_script(token), unsafe_allow_javascript=True)
    return owner


def login_controls() -> None:
    """With an OIDC provider configured (``[auth]`` in secrets.toml), offer to sign in: ownership then
    follows the account instead of this browser's cookie."""
    info = _user_info()
    if not isinstance(info.get("is_logged_in"), bool):
        return  # no [auth] section: no provider to sign in with
    if info["is_logged_in"]:
        st.caption("Signed in: your versions follow your account.")
        st.button("Log out", on_click=st.logout, key="logout")
    else:
        st.button("Log in", on_click=st.login, key="login")


class OwnerKwargs(TypedDict, total=False):
    """What ``owner_kwargs`` gives: typed, so ``**owner_kwargs()`` is checked against core's signatures."""

    owner: str


def owner_kwargs() -> OwnerKwargs:
    """``{"owner": <this visitor's id>}`` in demo mode, else nothing (a private store)."""
    if not demo_mode():
        return {}
    owner = st.session_state.get(OWNER) or identify_visitor()
    return {"owner": owner} if owner else {}


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


def version_picker(key: str, current: str | None = None, resolved: Mapping[str, Any] | None = None) -> str | None:
    """Choose a version by name, then number (cheap at any store size: two index queries).

    ``current`` is a link's reference; ``resolved``, the record it names when the caller has read
    it already (one lookup fewer per run)."""
    store = get_store()
    names = store.names()
    if not names:
        st.info("The store is empty: train a model on the Train page or upload one.")
        return None
    state = st.session_state
    name_key = picker_name(key)
    if current and current != state.get(picker_link(key)):
        # A new link (?model=NAME:VERSION or NAME@ALIAS) wins over what the pickers held before.
        state[picker_link(key)] = current
        linked = resolved or attempt("opening the link", store.get, current)
        if linked is not None:
            state[name_key] = linked["name"]
            state[picker_version(key, linked["name"])] = linked["version"]
    if state.get(name_key) not in names:
        state[name_key] = names[0]
    left, right = st.columns([3, 1])
    name = left.selectbox("Model", names, key=name_key)
    numbers = store.versions(name)  # only versions that exist: deleted ones are not offered
    version_key = picker_version(key, name)
    if state.get(version_key) not in numbers:
        state[version_key] = numbers[0]
    version = right.selectbox("Version", numbers, key=version_key)
    return f"{name}:{int(version)}"


def table_height(rows: int, cap: int = 20) -> int:
    """A dataframe height that shows ``rows`` rows (up to ``cap``) without an inner scroll bar."""
    return 38 + 35 * min(max(rows, 1), cap)


def confusion_chart_spec(cm: pd.DataFrame) -> tuple[pa.Table, dict[str, Any]]:
    """A confusion matrix as a heat map with its counts written in, classes as categories in their
    own order: the counts as an Arrow table and a Vega-Lite spec for ``st.vega_lite_chart``.

    Vega-Lite, which Streamlit draws natively, not plotly: a plotly figure is copied and turned
    into JSON on every run of every session, under the GIL every other visitor waits on; a spec
    and an Arrow table are sent as they are.
    """
    labels = [str(label) for label in cm.columns]
    counts = np.asarray(cm, dtype=np.int64)
    rows = [str(true) for true in cm.index]
    table = pa.table(
        {
            "true": pa.array(np.repeat(rows, len(labels)), pa.string()),
            "predicted": pa.array(np.tile(labels, len(rows)), pa.string()),
            "count": pa.array(counts.reshape(-1), pa.int64()),
        }
    )
    half = int(counts.max(initial=0)) / 2
    axis = {"type": "nominal", "sort": labels}
    greens = {"scheme": "greens"}
    spec = {
        "title": "Confusion matrix",
        "height": max(200, 60 * len(labels)),
        "encoding": {
            "x": {"field": "predicted", **axis, "axis": {"labelAngle": 0}},
            "y": {"field": "true", **axis},
        },
        "layer": [
            {"mark": "rect", "encoding": {"color": {"field": "count", "type": "quantitative", "scale": greens}}},
            {
                "mark": {"type": "text", "fontSize": 14},
                "encoding": {
                    "text": {"field": "count", "type": "quantitative"},
                    "color": {"condition": {"test": f"datum['count'] > {half}", "value": "white"}, "value": "black"},
                },
            },
        ],
    }
    return table, spec


@st.cache_resource(show_spinner=False)
def _sandbox_probe() -> dict[str, Any]:
    """Started once per server: a background thread asks a model worker which sandbox layers it
    really has (starting a worker takes seconds: no page waits for it, and the pool is warm for
    the first upload)."""
    from core import sandbox_layers

    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["layers"] = sandbox_layers()
        except ModelShelfError as exc:
            box["error"] = str(exc)

    threading.Thread(target=run, daemon=True, name="modelshelf-sandbox-report").start()
    return box


def sandbox_summary() -> str:
    """One line for the demo's sidebar: which layers the upload sandbox has on this kernel."""
    box = _sandbox_probe()
    if "error" in box:
        return f"Upload sandbox: unavailable ({box['error']})"
    layers = box.get("layers")
    if layers is None:
        return "Upload sandbox: starting (its layers show on the next page)..."
    active = sorted(name for name, layer in layers.items() if layer.get("active"))
    missing = sorted(name for name, layer in layers.items() if not layer.get("active"))
    text = f"Upload sandbox: {', '.join(active) or 'no layer'} active"
    return text + (f"; missing here: {', '.join(missing)}" if missing else "")
