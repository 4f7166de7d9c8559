"""Two replicas of the dashboard (two ``streamlit run`` processes) sharing one PostgreSQL + S3 store.

Driven in Chromium through Playwright, as tests/test_browser.py does: a version saved on one
replica is listed on the other, and two saves of one new name clicked on both at once end with
two versions, both loadable, each page naming the version it really saved.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.dash import served
from core import Store
from tests.backends import Bucket
from tests.test_browser import ARGS, WAIT, chromium, no_exception  # noqa: F401  # chromium: a fixture

pytestmark = [pytest.mark.remote, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def replica(env: dict[str, str], log: Path) -> Iterator[str]:
    """``streamlit run streamlit_app.py`` on a free port with the store in ``env``; its base URL."""
    with served(None, log, env=env) as base:
        yield base


def trained(page, base: str, name: str, seed: int | None = None) -> None:  # type: ignore[no-untyped-def]
    """Train the default model on the Train page (on another split with ``seed``) and type the name to save it under."""
    page.goto(base + "/")
    page.get_by_role("button", name="Train").wait_for()
    if seed is not None:
        seed_box = page.get_by_role("spinbutton", name="Seed").first  # Train's; Compare estimators has its own below
        seed_box.fill(str(seed))
        seed_box.press("Enter")
    page.get_by_role("button", name="Train").click()
    page.get_by_text("Held-out results").wait_for()
    page.get_by_label("Name", exact=True).fill(name)
    no_exception(page)


def test_two_replicas_share_one_store(
    chromium: Path,  # noqa: F811
    postgres_url: str,
    s3_bucket: Bucket,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "MODELSHELF_INDEX_URL": postgres_url, "MODELSHELF_ARTIFACTS_URL": s3_bucket.url}
    env.pop("MODEL_STORE", None)
    env["MODELSHELF_DEMO"] = "0"
    with (
        replica(env, tmp_path / "a.log") as one,
        replica(env, tmp_path / "b.log") as other,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(chromium), args=ARGS)
        try:
            pages = []
            for _ in range(2):
                tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                tab.set_default_timeout(WAIT)
                pages.append(tab)
            a, b = pages

            # A save on one replica is listed on the other.
            trained(a, one, "shared")
            a.get_by_role("button", name="Save", exact=True).click()
            a.get_by_text("Saved as shared:1").wait_for()
            b.goto(other + "/models")
            b.get_by_text("Versions 1 to 1 of 1").wait_for()
            b.goto(other + "/model_detail?model=shared:1")  # the grid is a canvas: open the version itself
            b.get_by_role("heading", name="shared:1").wait_for()
            no_exception(b)

            # Both replicas save one new name at the same moment: two versions, each page truthful.
            # Two different models: the same bytes twice would be refused as identical (issue 15).
            trained(a, one, "together")
            trained(b, other, "together", seed=8)
            a.get_by_role("button", name="Save", exact=True).click()
            b.get_by_role("button", name="Save", exact=True).click()
            said = []
            for tab in (a, b):
                tab.get_by_text("Saved as together:").wait_for()
                said.append(tab.get_by_text("Saved as together:").inner_text())
                no_exception(tab)
                assert tab.locator('[data-testid="stAlertContentError"]').count() == 0
        finally:
            browser.close()
    assert sorted(said) == ["Saved as together:1.", "Saved as together:2."], said
    store = Store(index_url=postgres_url, artifacts_url=s3_bucket.url)
    try:
        assert [r["version"] for r in store.list(name="together")] == [2, 1]
        for version in (1, 2):  # loaded from S3 (hash checked) and scored on its own evaluation set
            assert store.evaluate(f"together:{version}").reproduced is True
    finally:
        store.close()
