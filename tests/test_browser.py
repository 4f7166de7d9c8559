"""End to end in a real Chromium: the dashboard served by ``streamlit run``, driven by Playwright.

Train on a built-in data set, save, find the version on the Models page, open it, re-score it,
download the model file and load the downloaded bytes back, compare formats, upload a file.
A screenshot of each page is taken; it goes to a temporary folder, or to the folder named by
``MODELSHELF_SCREENSHOTS`` (``MODELSHELF_SCREENSHOTS=docs/screenshots python -m pytest -m browser``
refreshes the ones the README shows), so a plain test run leaves the work tree clean.

Select these tests with ``-m browser``; they skip when /usr/bin/chromium is missing, unless
``CI`` is set, where a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import pytest

from bench.dash import served
from core import Store, load_dataset, train
from core.formats import detect_format, sha256_bytes
from core.safety.loader import _load_untrusted as load_untrusted

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("MODELSHELF_CHROMIUM", "/usr/bin/chromium"))
SHOTS = Path(os.environ.get("MODELSHELF_SCREENSHOTS") or tempfile.mkdtemp(prefix="modelshelf-screenshots-"))
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
WAIT = 60_000  # ms: first renders import scikit-learn and plotly on a shared 2-core machine


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@contextlib.contextmanager
def streamlit_server(store: Path, demo: bool = False, env: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """``streamlit run streamlit_app.py`` on a free port over ``store`` (``env``: settings to add); stopped on exit."""
    store.parent.mkdir(parents=True, exist_ok=True)
    env = {"MODELSHELF_DEMO": "1" if demo else "0", **(env or {})}
    with served(store, store.parent / "streamlit.log", env=env) as base:
        yield {"base": base, "store": store}


@pytest.fixture(scope="module")
def server(chromium, tmp_path_factory):
    """The app on a free port with an empty store; always stopped."""
    with streamlit_server(tmp_path_factory.mktemp("browser") / "store") as running:
        yield running


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(chromium), args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(WAIT)
    yield tab
    context.close()


def screenshot(page, name: str, height: int) -> None:
    """Streamlit scrolls inside the page, so a tall viewport stands in for a full-page shot."""
    page.set_viewport_size({"width": 1400, "height": height})
    page.wait_for_timeout(1500)  # let charts finish drawing
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"no screenshot of {name}"
    page.set_viewport_size({"width": 1400, "height": 1000})


def settled(page) -> None:
    """Wait until the app has finished the rerun an input started (not running, nothing shown stale)."""
    page.wait_for_timeout(700)  # the rerun may not have begun yet
    page.locator('[data-testid="stStatusWidgetRunningIcon"]').wait_for(state="detached", timeout=WAIT)
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')", timeout=WAIT)


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, "a traceback reached the page"


def test_train_save_find_open_rescore_download_upload(server, page):
    base = server["base"]

    # Train on iris with a random forest, through the generated hyperparameter widgets.
    page.goto(base + "/")
    page.get_by_role("button", name="Train").wait_for()
    page.get_by_role("combobox", name="Estimator").click()
    page.get_by_role("option", name="Random forest").click()
    page.get_by_role("spinbutton", name="n_estimators").wait_for()
    page.get_by_role("spinbutton", name="n_estimators").fill("30")
    page.get_by_role("button", name="Train").click()
    page.get_by_text("Held-out results").wait_for()
    no_exception(page)
    screenshot(page, "train", 2100)

    # Save it under a name of our own.
    page.get_by_label("Name", exact=True).fill("iris-browser")
    page.get_by_label("Tags, comma-separated").fill("e2e")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("Saved as iris-browser:1").wait_for()
    record = Store(server["store"]).get("iris-browser:1")
    assert record["params"]["n_estimators"] == 30 and record["tags"] == ["e2e"]

    # Find it on the Models page: select its row, the page offers to open exactly that version.
    page.goto(base + "/models")
    page.get_by_text("Versions 1 to 1 of 1").wait_for()
    screenshot(page, "models", 900)
    grid = page.locator('[data-testid="stDataFrame"]').first.bounding_box()
    page.mouse.click(grid["x"] + 15, grid["y"] + 35 + 18)  # the first row's selection box
    page.get_by_role("button", name="Open iris-browser:1").click()
    page.wait_for_url("**/model_detail?model=iris-browser%3A1")
    page.get_by_role("heading", name="iris-browser:1").wait_for()
    no_exception(page)
    page.get_by_text("Show the pipeline diagram (loads the model)").click()
    diagram = page.frame_locator('iframe[src^="data:text/html"]')
    diagram.get_by_text("RandomForestClassifier").filter(visible=True).first.wait_for()
    page.set_viewport_size({"width": 1400, "height": 2700})
    page.get_by_role("heading", name="Model detail").scroll_into_view_if_needed()
    screenshot(page, "model_detail", 2700)

    # Reload and re-score: the recorded accuracy comes back exactly.
    page.get_by_role("tab", name="Re-score").click()
    page.get_by_role("button", name="Reload and re-score").click()
    page.get_by_text("the recorded accuracy is reproduced to 12 significant digits").wait_for()
    screenshot(page, "model_detail_rescore", 1000)

    # Download the model file and load the bytes back.
    page.get_by_role("tab", name="Download").click()
    with page.expect_download() as waiting:
        page.get_by_role("button", name="Download iris-browser-v1.pkl").click()
    downloaded = Path(waiting.value.path()).read_bytes()
    assert waiting.value.suggested_filename == "iris-browser-v1.pkl"  # the default format
    assert sha256_bytes(downloaded) == record["sha256"]
    assert detect_format(downloaded).format == "pickle"
    model = load_untrusted(downloaded).model  # the one load path for bytes from outside the store
    data = load_dataset("builtin:iris")
    assert list(model.predict(data.X.head(5))) == list(
        Store(server["store"]).predict("iris-browser:1", data.X.head(5))["prediction"]
    )

    # Formats: every format measured for this version.
    page.goto(base + "/formats?model=iris-browser:1")
    page.get_by_role("button", name="Compare formats").click()
    page.get_by_text("Measured 5 variants").wait_for()
    no_exception(page)
    screenshot(page, "formats", 1500)

    # Upload a joblib file made outside the store.
    outside = train(data, "decision_tree", seed=3).model
    buffer = io.BytesIO()
    joblib.dump(outside, buffer)
    page.goto(base + "/upload")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
        {"name": "outside.joblib", "mimeType": "application/octet-stream", "buffer": buffer.getvalue()}
    )
    page.get_by_label("Name to store it under").wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('input')].some(i => i.value === 'outside')", timeout=WAIT
    )
    page.locator('[data-testid="stRadio"]').get_by_text("Built-in data set").click()
    page.get_by_role("button", name="Add to the store").click()
    page.get_by_text("Added as outside:1").wait_for()
    no_exception(page)
    screenshot(page, "upload", 1350)
    assert Store(server["store"]).get("outside:1")["origin"] == "imported"

    # Two versions selected on the Models page: compared side by side.
    page.goto(base + "/models")
    page.get_by_text("Versions 1 to 2 of 2").wait_for()
    grid = page.locator('[data-testid="stDataFrame"]').first.bounding_box()
    for row in (0, 1):
        page.mouse.click(grid["x"] + 15, grid["y"] + 35 + 18 + 35 * row)
        page.wait_for_timeout(500)
    page.get_by_text("Comparing 2 versions").wait_for()
    no_exception(page)
    screenshot(page, "models_compare", 1300)


def test_bad_input_in_the_browser_shows_one_message_not_a_traceback(server, page):
    page.goto(server["base"] + "/model_detail?model=nothing-here:3")
    page.locator('[data-testid="stAlertContentError"]').first.wait_for()
    assert "nothing-here" in page.locator('[data-testid="stAlertContentError"]').first.inner_text()
    no_exception(page)


def test_regression_leaderboard_and_compare_diff(server, page):
    """A regression trained and saved, the Compare estimators leaderboard with CV and a row saved from it,
    then the two versions compared: the hyperparameters that differ, the same data set fingerprint."""
    base = server["base"]
    page.goto(base + "/")
    page.get_by_role("button", name="Train").wait_for()
    page.get_by_role("combobox", name="Data set").click()
    page.get_by_role("option", name="diabetes").click()
    page.get_by_text("Inferred task: regression").wait_for()
    page.get_by_role("combobox", name="Estimator", exact=True).click()
    page.get_by_role("option", name="Random forest").click()
    page.get_by_role("spinbutton", name="n_estimators").fill("30")
    page.get_by_role("button", name="Train").click()
    page.get_by_text("Held-out results").wait_for()
    page.get_by_text("Predicted vs actual").first.wait_for()
    no_exception(page)
    screenshot(page, "train_regression", 1800)
    page.get_by_label("Name", exact=True).fill("diab-browser")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("Saved as diab-browser:1").wait_for()

    # Every regressor of the catalog (the default) on one split, 3-fold CV, with a progress bar.
    page.get_by_role("spinbutton", name="Cross-validation folds (0: none)").fill("3")
    page.get_by_role("button", name="Compare", exact=True).click()
    done = page.get_by_text("Compared 11 estimators: best")
    done.wait_for(timeout=3 * WAIT)  # 44 fits on a shared 2-core machine
    best = done.inner_text()
    no_exception(page)
    page.set_viewport_size({"width": 1400, "height": 4000})  # all of the page at once: no scrolling under the mouse
    page.wait_for_timeout(1000)
    box = page.locator('[data-testid="stDataFrame"]').last.bounding_box()
    page.mouse.click(box["x"] + 15, box["y"] + 35 + 18 + 35)  # the second row's selection box
    page.get_by_text("Save #2:").wait_for()
    no_exception(page)
    page.set_viewport_size({"width": 1400, "height": 1300})  # the shot's size first: a resize scrolls back up
    page.get_by_role("heading", name="Compare estimators").evaluate("e => e.scrollIntoView({block: 'start'})")
    screenshot(page, "compare_estimators", 1300)
    page.locator('input[aria-label="Name"]').last.fill("diab-second")
    page.locator('[data-testid="stFormSubmitButton"] button').filter(has_text="Save ").last.click()
    page.get_by_text("Saved as diab-second:1").wait_for()
    second = Store(server["store"]).get("diab-second:1")
    assert second["task"] == "regression" and second["cv"]["k"] == 3 and len(second["cv"]["scores"]) == 3
    assert f"best {second['estimator_key']} " not in best  # the second row, not the best

    # The two compared on the Models page.
    page.goto(base + "/models")
    page.get_by_label("Name contains").fill("diab")
    page.get_by_label("Name contains").press("Enter")
    page.get_by_text("Versions 1 to 2 of 2").wait_for()
    settled(page)  # the filtered table has replaced the unfiltered one: a click now is not lost
    grid = page.locator('[data-testid="stDataFrame"]').first.bounding_box()
    for row in (0, 1):
        page.mouse.click(grid["x"] + 15, grid["y"] + 35 + 18 + 35 * row)
        settled(page)
    page.get_by_text("Hyperparameters that differ").wait_for()
    page.get_by_text("All trained on the same data").wait_for()
    no_exception(page)
    screenshot(page, "models_compare_diff", 1500)
