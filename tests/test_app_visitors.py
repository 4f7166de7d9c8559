"""Demo visitors on the pages (AppTest): a second visitor sees no owner controls and cannot take a name;
the visitor's token, kept in a cookie, brings ownership back after a reload.

AppTest sends no cookies, so the cookie is given through ``app_pages.common.request_cookie``, the one
place the pages read it from (the real browser path: tests/test_browser.py).
"""

from __future__ import annotations

import os

import pytest

from app_pages import common
from app_pages.state import OWNER, VISITOR_TOKEN
from tests import test_app
from tests.test_app import DETAIL, TRAIN, labels, ok, open_page, open_tab

# test_app's fixtures, used here too: a fresh store and caches per test (autouse), a filled store.
fresh_app = test_app.fresh_app
app_store = test_app.app_store
iris_results = test_app.iris_results
filled = test_app.filled

MANAGE = ("Alias (e.g. production)", "Add tags, comma-separated")


@pytest.fixture
def demo(monkeypatch):
    monkeypatch.setenv("MODELSHELF_DEMO", "1")


def _train_and_save(at, name: str) -> None:
    at.switch_page(TRAIN).run()
    at.selectbox(key="train_estimator").set_value("naive_bayes").run()
    at.button[labels(at.button).index("Train")].click().run()
    at.text_input[labels(at.text_input).index("Name")].set_value(name)
    at.button[labels(at.button).index("Save")].click().run()


def _manage_offered(at, ref: str) -> bool:
    at.query_params["model"] = ref
    at.switch_page(DETAIL).run()
    open_tab(at, "Manage")
    ok(at)
    offered = [label for label in MANAGE if label in labels(at.text_input)]
    assert offered in ([], list(MANAGE))
    assert ("Delete this version..." in labels(at.button)) == bool(offered)
    return bool(offered)


def test_a_second_visitor_gets_no_controls_and_cannot_take_the_name(demo, filled):
    first = open_page(TRAIN)
    _train_and_save(first, "mine")
    ok(first)
    assert _manage_offered(first, "mine:1")
    first_token = first.session_state[VISITOR_TOKEN]

    second = open_page(TRAIN)  # another browser: a fresh session with its own token
    assert second.session_state[VISITOR_TOKEN] != first_token
    assert second.session_state[OWNER] != first.session_state[OWNER]
    assert not _manage_offered(second, "mine:1")
    assert any("someone else's" in c.value for c in second.caption)
    # Before: this save became mine:2, and the bare name "mine" then opened the second visitor's model.
    _train_and_save(second, "mine")
    assert not second.exception
    assert [e.value for e in second.error] == ["the name mine belongs to another visitor; choose another name"]
    assert filled.versions("mine") == [1]
    assert filled.row("mine").owner == first.session_state[OWNER]
    _train_and_save(second, "theirs")
    ok(second)
    assert filled.row("theirs:1").owner == second.session_state[OWNER]
    assert not _manage_offered(first, "theirs:1")


def test_the_token_in_the_cookie_brings_ownership_back_after_a_reload(demo, filled, monkeypatch):
    first = open_page(TRAIN)
    token = first.session_state[VISITOR_TOKEN]
    # A new token is handed to the browser as a SameSite=Strict cookie, never in the URL.
    script = [h.proto.body for h in first.get("html") if common.VISITOR_COOKIE in h.proto.body]
    assert len(script) == 1 and token in script[0] and "SameSite=Strict" in script[0]
    assert token not in str(dict(first.query_params))
    _train_and_save(first, "kept")
    ok(first)

    monkeypatch.setattr(common, "request_cookie", lambda: token)  # the reload sends the cookie back
    reloaded = open_page(TRAIN)
    assert reloaded.session_state[OWNER] == first.session_state[OWNER]
    assert not [h for h in reloaded.get("html") if common.VISITOR_COOKIE in h.proto.body]  # already set
    assert _manage_offered(reloaded, "kept:1")

    # A cookie that is not a token ModelShelf made is ignored, and replaced by a fresh token.
    monkeypatch.setattr(common, "request_cookie", lambda: "visitor; alert(1)")
    forged = open_page(TRAIN)
    assert forged.session_state[VISITOR_TOKEN] not in (token, "visitor; alert(1)")
    assert not _manage_offered(forged, "kept:1")


def test_owner_ids_from_a_signed_in_user_a_cookie_or_a_new_token() -> None:
    user = {"is_logged_in": True, "iss": "https://issuer.example", "sub": "248289761001", "email": "a@example.com"}
    owner, token, set_cookie = common.resolve_owner(user, cookie=None, session_token=None)
    assert owner.startswith("user-") and token is None and not set_cookie
    assert common.resolve_owner(user, "x" * 43, None)[0] == owner  # the account wins over the cookie
    other_issuer = common.resolve_owner(user | {"iss": "https://evil.example"}, None, None)[0]
    assert other_issuer != owner
    assert common.resolve_owner({"is_logged_in": False, "sub": "248289761001"}, None, None)[0] != owner

    minted, token, set_cookie = common.resolve_owner({}, cookie=None, session_token=None)
    assert set_cookie and len(token) >= 43 and token not in minted  # the index keeps a digest only
    assert common.resolve_owner({}, cookie=token, session_token=None) == (minted, token, False)
    assert common.resolve_owner({}, cookie=None, session_token=token) == (minted, token, True)
    assert common.resolve_owner({}, cookie=None, session_token=None)[0] != minted  # unguessable, never reused
    with pytest.raises(ValueError):
        common.cookie_script('x"; document.location="https://evil.example')


def test_a_full_visitor_quota_refuses_the_save_and_evicts_no_one(demo, filled, monkeypatch):
    """Per-visitor quota on the page: the second save is refused with one line, nothing evicted."""
    monkeypatch.setenv("MODELSHELF_DEMO_SESSION_MAX_VERSIONS", "1")
    before = {(r["name"], r["version"]) for r in filled.list(limit=1000)}
    at = open_page(TRAIN)
    _train_and_save(at, "quota")
    ok(at)
    _train_and_save(at, "quota-two")  # another name: the same bytes under "quota" are a duplicate, not a save
    assert not at.exception
    assert len(at.error) == 1 and "quota is full" in at.error[0].value, [e.value for e in at.error]
    assert filled.versions("quota") == [1] and filled.versions("quota-two") == []
    assert before <= {(r["name"], r["version"]) for r in filled.list(limit=1000)}  # nothing evicted


def test_the_demo_sidebar_says_which_sandbox_layers_are_active(demo, filled):
    """Asked of a real worker in the background (no page waits for it), shown on a later run."""
    import time

    at = open_page(TRAIN)
    ok(at)
    deadline = time.monotonic() + 60
    while not ({"layers", "error"} & set(common._sandbox_probe())) and time.monotonic() < deadline:
        time.sleep(0.2)
    at.run()
    ok(at)
    line = next(c.value for c in at.sidebar.caption if c.value.startswith("Upload sandbox"))
    assert "landlock" in line and "seccomp" in line and "active" in line, line
    if os.environ.get("CI"):  # CI's kernel has every layer (tests/test_worker.py insists too)
        assert "missing" not in line, line
