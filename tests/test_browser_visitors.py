"""Demo visitors in a real Chromium: the owner token is set as a cookie and survives a reload.

AppTest cannot send cookies, so this is the one test of the real path: the page's JavaScript sets
``modelshelf_visitor`` (SameSite=Strict), the reload's websocket request carries it back, and the
same visitor is recognised; another browser (a fresh context, no cookie) is someone else.
Selected with ``-m browser``, like tests/test_browser.py (whose browser fixtures it uses).
"""

from __future__ import annotations

import hashlib
import re
import time

import pytest

from core import Store
from tests import test_browser
from tests.test_browser import ARGS, WAIT, no_exception, streamlit_server

pytestmark = pytest.mark.browser

chromium = test_browser.chromium
browser = test_browser.browser
COOKIE = "modelshelf_visitor"


@pytest.fixture(scope="module")
def demo_server(chromium, tmp_path_factory):
    """The app in public-demo mode on a free port with an empty store; always stopped."""
    with streamlit_server(tmp_path_factory.mktemp("visitors") / "store", demo=True) as running:
        yield running


def _visitor_cookie(context) -> dict:
    found = [c for c in context.cookies() if c["name"] == COOKIE]
    assert len(found) == 1, context.cookies()
    return found[0]


def _manage(page, base: str, ref: str) -> None:
    page.goto(f"{base}/model_detail?model={ref}")
    page.get_by_role("heading", name=ref).wait_for()
    page.get_by_role("tab", name="Manage").click()


def test_the_owner_token_survives_a_reload_and_another_browser_is_someone_else(demo_server, browser):
    base = demo_server["base"]
    assert ARGS  # the same Chromium flags as the main browser test
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT)
        page.goto(base + "/")
        page.get_by_role("button", name="Train").wait_for()
        page.wait_for_function(f"() => document.cookie.includes('{COOKIE}=')", timeout=WAIT)
        cookie = _visitor_cookie(context)
        token = cookie["value"]
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
        assert cookie["sameSite"] == "Strict" and cookie["path"] == "/" and cookie["expires"] > time.time() + 86400
        assert not cookie["httpOnly"]  # set by a script: it cannot be HttpOnly (docs/safety.md)
        assert token not in page.url

        page.get_by_role("combobox", name="Estimator").click()
        page.get_by_role("option", name="Gaussian naive Bayes").click()
        page.get_by_role("button", name="Train").click()
        page.get_by_text("Held-out results").wait_for()
        page.get_by_label("Name", exact=True).fill("mine")
        page.get_by_role("button", name="Save", exact=True).click()
        page.get_by_text("Saved as mine:1").wait_for()
        owner = "visitor-" + hashlib.sha256(token.encode()).hexdigest()[:40]
        assert Store(demo_server["store"]).row("mine:1").owner == owner

        page.reload()  # a new session: only the cookie can say who this is
        page.get_by_role("button", name="Train").wait_for()
        _manage(page, base, "mine:1")
        page.get_by_label("Alias (e.g. production)").wait_for()
        assert page.get_by_role("button", name=re.compile("Delete this version")).count() == 1
        assert _visitor_cookie(context)["value"] == token  # not replaced by a new token
        no_exception(page)
    finally:
        context.close()

    stranger = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = stranger.new_page()
        page.set_default_timeout(WAIT)
        _manage(page, base, "mine:1")
        page.get_by_text("this version is someone else's").wait_for()
        assert page.get_by_label("Alias (e.g. production)").count() == 0
        assert page.get_by_role("button", name=re.compile("Delete this version")).count() == 0
        assert _visitor_cookie(stranger)["value"] != token
        no_exception(page)
    finally:
        stranger.close()


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("file:///etc/passwd", "The public demo reads only built-in data sets"),
        ("/etc/passwd", "The public demo reads only built-in data sets"),
        ("http://169.254.169.254/latest/meta-data/", "only https:// URLs are allowed here"),
    ],
)
def test_the_demo_train_page_refuses_local_files_and_internal_urls(demo_server, browser, url, said):
    """A visitor's URL may not read a server file or reach the server's own network: one error,
    no table. (Refused before any connection: the scheme and the path are checked first; the
    address checks themselves are proven without connecting in tests/test_fetch.py.)"""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT)
        page.goto(demo_server["base"] + "/")
        page.get_by_text("CSV from a URL").click()
        field = page.get_by_label("CSV URL")
        field.fill(url)
        field.press("Enter")
        page.get_by_text(said).wait_for()
        assert page.get_by_text("root:x:0").count() == 0
        assert page.get_by_text("Held-out results").count() == 0
        assert page.locator("[data-testid='stDataFrame']").count() == 0
        no_exception(page)
    finally:
        context.close()
