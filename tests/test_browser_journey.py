"""The tutorial's journey in Chromium, at a desktop size (1400x900) and a phone's (390x844).

A headerless Pima CSV uploaded on Train ("First row is data"), logistic regression with liblinear
trained and saved; the solver changed to lbfgs marks that result out of date and disables its Save;
the lbfgs result gets a fresh Save form and is saved; saving it again stores nothing and offers the
stored version. Then: both versions compared on Models, the lbfgs one opened (its recorded warning
at the top), re-scored, downloaded in every format (each file's name, the model file's sha256
against the store's record), uploaded back (twice: the second time refused as identical), and a
version deleted. At phone size each page is also checked for horizontal scrolling, its main button
inside the screen, the Models grid's score column in view and the sidebar closed after navigating.

Select with ``-m browser``; the helpers and fixtures are ``tests/test_browser.py``'s. Phone
screenshots (``phone_*.png``) go where that file's screenshots go (``MODELSHELF_SCREENSHOTS``).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import expect

from core import Store
from core.portable.exports import export_status
from core.portable.how_to_load import DOWNLOAD_FORMATS, download_filename
from core.refs import suggest_name
from core.shipped import load_shipped
from tests.test_browser import SHOTS, WAIT, browser, chromium, no_exception, streamlit_server  # noqa: F401

pytestmark = pytest.mark.browser

SIZES = {"desktop": (1400, 900), "phone": (390, 844)}


@pytest.fixture(params=list(SIZES))
def journey(request, browser, tmp_path):  # noqa: F811 - the browser fixture imported above
    """A fresh server over an empty store, and a page of the requested size."""
    width, height = SIZES[request.param]
    phone = request.param == "phone"
    # A phone is a touch screen whose browser says it is a phone: Streamlit closes the sidebar after
    # navigating only on such a device (its user agent), as on a real phone.
    device: dict[str, Any] = {"is_mobile": True, "has_touch": True, "device_scale_factor": 2} if phone else {}
    if phone:
        device["user_agent"] = (
            "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{browser.version} Mobile Safari/537.36"
        )
    with streamlit_server(tmp_path / "store") as server:
        context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True, **device)
        page = context.new_page()
        page.set_default_timeout(WAIT)
        try:
            yield {**server, "page": page, "phone": phone, "size": (width, height)}
        finally:
            context.close()


def headerless_pima() -> bytes:
    """The shipped builtin:pima table as the tutorial's file: no header row."""
    return load_shipped("pima").to_csv(header=False, index=False).encode()


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox ``label`` (a click during a rerun may not open it: try again)."""
    box = page.get_by_role("combobox", name=label, exact=True)
    for _ in range(5):
        box.click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=5000)
            break
        except Exception:  # noqa: BLE001 - the list did not open: close whatever did and retry
            page.keyboard.press("Escape")
    else:
        raise AssertionError(f"could not choose {option!r} in {label!r}")
    expect(box).to_have_value(option, timeout=WAIT)


def settle(page) -> None:
    """Wait until the app's run is over (call it once something the run draws is seen)."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()


def sidebar_closed(page) -> bool:
    box = page.locator('[data-testid="stSidebar"]').bounding_box()
    return box is None or box["x"] + box["width"] <= 0


def navigate(page, title: str, phone: bool) -> None:
    """Go to a page through the sidebar, as a user does; on a phone the sidebar must close behind them."""
    if phone:
        assert sidebar_closed(page), "the sidebar covers the page before navigating"
        page.get_by_test_id("stExpandSidebarButton").click()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=stSidebar]').getBoundingClientRect().left >= 0"
        )
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title).click()
    page.get_by_role("heading", name=HEADINGS[title]).first.wait_for()
    if phone:
        page.wait_for_function(
            "() => document.querySelector('[data-testid=stSidebar]').getBoundingClientRect().right <= 0"
        )
        assert sidebar_closed(page), f"the sidebar stayed open after navigating to {title}"


HEADINGS = {
    "Train": "Train a model",
    "Models": "Models",
    "Model detail": "Model detail",
    "Upload": "Upload a model",
    "Formats": "Formats",
}


def fits(page, journey: dict[str, Any], main_button, what: str) -> None:
    """On a phone: nothing scrolls sideways and the page's main button is within the screen's width."""
    if not journey["phone"]:
        return
    settle(page)
    widths = page.evaluate(
        "() => [document.scrollingElement.scrollWidth, window.innerWidth,"
        " document.querySelector('[data-testid=stMain]').scrollWidth,"
        " document.querySelector('[data-testid=stMain]').clientWidth]"
    )
    assert widths[0] <= widths[1], f"{what}: the page scrolls sideways ({widths[0]} > {widths[1]} px)"
    assert widths[2] <= widths[3], f"{what}: the main area scrolls sideways ({widths[2]} > {widths[3]} px)"
    main_button.scroll_into_view_if_needed()
    box = main_button.bounding_box()
    assert box is not None, f"{what}: its main button is not drawn"
    assert box["x"] >= 0 and box["x"] + box["width"] <= widths[1], f"{what}: its main button is off screen: {box}"


def phone_screenshot(page, name: str) -> None:
    """What a phone shows (the viewport as it is): docs/screenshots/phone_*.png."""
    page.wait_for_timeout(1500)  # let charts finish drawing
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"phone_{name}.png"
    page.screenshot(path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"no screenshot of {name}"


def save_form(page) -> dict[str, str]:
    """The Save form's name, tags and note as shown once the run that draws it is over."""
    settle(page)
    return {
        "name": page.get_by_label("Name", exact=True).input_value(),
        "tags": page.get_by_label("Tags, comma-separated").input_value(),
        "note": page.get_by_label("Note", exact=True).input_value(),
    }


def fill_save_form(page, name: str, tags: str, note: str) -> None:
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Tags, comma-separated").fill(tags)
    page.get_by_label("Note", exact=True).fill(note)


def save_button(page):
    return page.get_by_role("button", name="Save", exact=True)


def select_rows(page, rows: list[int]) -> None:
    """Tick rows of the Models grid (its selection boxes, drawn on a canvas)."""
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    assert box is not None
    for row in rows:
        page.mouse.click(box["x"] + 15, box["y"] + 35 + 18 + 35 * row)
        page.wait_for_timeout(500)


def grid_text(page, index: int = 0) -> dict[str, list[str]]:
    """A grid's header cells and rows as its accessible table holds them: only the columns in view."""
    settle(page)
    grid = page.locator('[data-testid="stDataFrame"]').nth(index)
    grid.locator("tbody tr td").first.wait_for(state="attached")  # the table is drawn after the run
    return page.evaluate(
        """(i) => {
            const grid = document.querySelectorAll('[data-testid="stDataFrame"]')[i];
            const cells = (row, tag) => [...row.querySelectorAll(tag)].map(c => c.innerText.trim());
            return {
                header: cells(grid, '[role="columnheader"]'),
                rows: [...grid.querySelectorAll('tbody tr')].map(r => cells(r, 'td').join(' | ')),
            };
        }""",
        index,
    )


def download(page, filename: str) -> bytes:
    """Click the button that downloads ``filename``; the browser must save it under exactly that name."""
    with page.expect_download() as waiting:
        page.get_by_role("button", name=f"Download {filename} (").click()
    assert waiting.value.suggested_filename == filename
    return Path(waiting.value.path()).read_bytes()


def test_the_tutorials_journey(journey):
    page, phone, store = journey["page"], journey["phone"], Store(journey["store"])
    base = journey["base"]

    # Train: a headerless Pima CSV, its first row read as data.
    page.goto(base + "/")
    page.get_by_role("heading", name="Train a model").wait_for()
    page.locator('[data-testid="stRadio"]').get_by_text("Upload a CSV").click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
        {"name": "pima.csv", "mimeType": "text/csv", "buffer": headerless_pima()}
    )
    page.locator('[data-testid="stRadio"]').get_by_text("First row is data").click()
    page.get_by_text("Preview: 768 rows, 9 columns").wait_for()  # not 767: the first row kept as data
    choose(page, "Estimator", "Logistic regression")
    choose(page, "solver", "liblinear")
    train_button = page.get_by_role("button", name="Train", exact=True)
    fits(page, journey, train_button, "Train")
    train_button.click()
    page.get_by_role("heading", name="Held-out results").wait_for()
    no_exception(page)
    suggested = suggest_name("pima.csv", "logistic-regression")
    assert save_form(page) == {"name": suggested, "tags": "", "note": ""}
    fill_save_form(page, "pima", "liblinear", "the tutorial's solver")
    save_button(page).click()
    page.get_by_text("This result is stored as pima:1.").wait_for()
    first = store.get("pima:1")
    assert first["params"]["solver"] == "liblinear" and first["tags"] == ["liblinear"]
    assert first["dataset"]["n_rows"] == 768 and first["dataset"]["target"] == "column_9"

    # Another solver: the liblinear result is out of date and cannot be saved as if it were lbfgs's.
    choose(page, "solver", "lbfgs")
    page.get_by_role("heading", name="Held-out results (out of date)").wait_for()
    settle(page)
    assert save_button(page).is_disabled()
    assert page.get_by_text("Out of date: the data, target").is_visible()
    if phone:
        page.get_by_role("heading", name="Held-out results (out of date)").scroll_into_view_if_needed()
        phone_screenshot(page, "train_out_of_date")

    # Train it: the new result's Save form starts fresh (not "pima", "liblinear", the old note).
    train_button.click()
    page.get_by_role("heading", name="Held-out results", exact=True).wait_for()
    no_exception(page)
    settle(page)
    assert save_button(page).is_enabled()
    assert save_form(page) == {"name": suggested, "tags": "", "note": ""}
    fill_save_form(page, "pima", "lbfgs", "today's default solver")
    save_button(page).click()
    page.get_by_text("This result is stored as pima:2.").wait_for()
    second = store.get("pima:2")
    assert second["params"]["solver"] == "lbfgs" and second["tags"] == ["lbfgs"]
    assert any("ConvergenceWarning" in w for w in second["warnings"])

    # Save the same result again: nothing stored, the identical version offered instead.
    fill_save_form(page, "pima", "again", "")
    save_button(page).click()
    page.get_by_text("Not saved: this model is identical to pima:2").wait_for()
    assert page.get_by_role("button", name="Open pima:2").is_visible()
    assert sorted(store.versions("pima")) == [1, 2]  # no third version

    # Models: both versions, the lbfgs one flagged; compared side by side.
    navigate(page, "Models", phone)
    page.get_by_text("Versions 1 to 2 of 2").wait_for()
    no_exception(page)
    shown = grid_text(page)
    assert shown["header"][:3] == ["ref", "score", "⚠"], shown  # the score next to the pinned ref, in view
    if phone:
        assert "origin" not in shown["header"], shown  # the accessible table holds only the columns in view
    newest, oldest = shown["rows"][:2]  # newest first
    assert newest.startswith("pima:2 | accuracy") and "⚠ 1" in newest, shown
    assert oldest.startswith("pima:1 | accuracy") and "⚠" not in oldest, shown
    select_rows(page, [1])
    open_button = page.get_by_role("button", name="Open pima:1")
    fits(page, journey, open_button, "Models")
    if phone:
        page.locator('[data-testid="stDataFrame"]').first.scroll_into_view_if_needed()
        phone_screenshot(page, "models")
    select_rows(page, [0])
    page.get_by_text("Comparing 2 versions").wait_for()
    compared = grid_text(page, 1)
    assert {r.split(" | ")[0] for r in compared["rows"]} >= {"pima:1", "pima:2"}, compared
    no_exception(page)

    # Model detail of the lbfgs version: its recorded warning at the top, above the tabs.
    select_rows(page, [1])  # untick pima:1: one row selected again
    page.get_by_role("button", name="Open pima:2").click()
    page.wait_for_url("**/model_detail?model=pima%3A2")
    page.get_by_role("heading", name="pima:2").wait_for()
    warning = page.get_by_text("Recorded at training: ConvergenceWarning")
    assert warning.bounding_box()["y"] < page.get_by_role("tab", name="Overview").bounding_box()["y"]
    no_exception(page)

    # Re-score: the recorded accuracy comes back exactly.
    page.get_by_role("tab", name="Re-score").click()
    rescore = page.get_by_role("button", name="Reload and re-score")
    fits(page, journey, rescore, "Model detail")
    rescore.click()
    page.get_by_text("the recorded accuracy is reproduced to 12 significant digits").wait_for()

    # Download every format the version allows, each under its own name; the model file as stored.
    page.get_by_role("tab", name="Download").click()
    record = store.get("pima:2")
    # The picker starts on the version's own format.
    expect(page.get_by_role("combobox", name="Format", exact=True)).to_have_value(
        f"{record['format']} (the stored file)", timeout=WAIT
    )
    downloaded = set()
    status = export_status(record)
    for fmt in DOWNLOAD_FORMATS:
        filename = download_filename(record, fmt)
        if status[fmt]["status"] == "refused":
            continue
        if fmt == record["format"]:
            choose(page, "Format", f"{fmt} (the stored file)")
            data = download(page, filename)
            assert hashlib.sha256(data).hexdigest() == record["sha256"]  # the bytes the store recorded
            model_file = data
        else:
            choose(page, "Format", fmt)
            page.get_by_role("button", name=f"Prepare {filename}").click()
            data = download(page, filename)
        downloaded.add(filename)
        # The snippet under it loads exactly the file its button saved.
        page.get_by_text(f"How to load {filename}").wait_for()
        assert filename in page.locator('[data-testid="stCode"]').last.inner_text(), fmt
        if fmt == "bundle":
            with zipfile.ZipFile(io.BytesIO(data)) as bundle:
                inside = {n: bundle.read(n) for n in bundle.namelist()}
            assert record["sha256"] in {hashlib.sha256(b).hexdigest() for b in inside.values()}
    metadata = json.loads(download(page, download_filename(record, "metadata")))
    assert metadata["sha256"] == record["sha256"] and metadata["version"] == 2
    downloaded.add(download_filename(record, "metadata"))

    # Predict: the one-row form keeps the features' order (also stacked on a phone); a CSV batch's
    # predictions download under their own name.
    page.get_by_role("tab", name="Predict").click()
    features = [f"column_{i}" for i in range(1, 9)]
    form = page.locator('[data-testid="stForm"]').filter(has_text="One row")
    form.locator('[data-testid="stNumberInput"]').nth(len(features) - 1).wait_for()
    settle(page)
    inputs = form.locator('[data-testid="stNumberInput"]')
    drawn = [(inputs.nth(i).bounding_box(), inputs.nth(i).inner_text().strip()) for i in range(inputs.count())]
    in_reading_order = [label for box, label in sorted(drawn, key=lambda d: (round(d[0]["y"]), d[0]["x"]))]
    assert in_reading_order == features, drawn
    rows = load_shipped("pima").iloc[:20, :8]
    rows.columns = features
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
        {"name": "rows.csv", "mimeType": "text/csv", "buffer": rows.to_csv(index=False).encode()}
    )
    predicted = pd.read_csv(io.BytesIO(download(page, download_filename(record, "predictions"))))
    downloaded.add(download_filename(record, "predictions"))
    assert list(predicted["prediction"]) == list(store.predict("pima:2", rows)["prediction"])
    every = ("pkl", "joblib", "skops", "onnx", "params.json", "zip", "metadata.json", "predictions.csv")
    refused = {download_filename(record, f) for f in DOWNLOAD_FORMATS if status[f]["status"] == "refused"}
    assert downloaded == {f"pima-v2.{end}" for end in every} - refused
    no_exception(page)

    # Upload the downloaded model file back: added once; the same bytes again are refused as identical.
    navigate(page, "Upload", phone)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
        {"name": "pima-v2.joblib", "mimeType": "application/octet-stream", "buffer": model_file}
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('input')].some(i => i.value === 'pima-v2')", timeout=WAIT
    )
    add = page.get_by_role("button", name="Add to the store")
    fits(page, journey, add, "Upload")
    add.click()
    page.get_by_text("The file is stored as pima-v2:1.").wait_for()
    assert store.get("pima-v2:1")["sha256"] == record["sha256"]
    add.click()
    page.get_by_text("Not added: this file is identical to pima-v2:1").wait_for()
    assert page.get_by_role("button", name="Open pima-v2:1").is_visible()
    assert store.versions("pima-v2") == [1]
    no_exception(page)

    # Formats: the page's main action fits too.
    navigate(page, "Formats", phone)
    fits(page, journey, page.get_by_role("button", name="Compare formats"), "Formats")

    # Delete the liblinear version from its page.
    navigate(page, "Model detail", phone)
    choose(page, "Model", "pima")
    choose(page, "Version", "1")
    page.get_by_role("heading", name="pima:1").wait_for()
    page.get_by_role("tab", name="Manage").click()
    page.get_by_role("button", name="Delete this version...").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete", exact=True).click()
    page.get_by_text(re.compile(r"Deleted pima:1: .* freed")).wait_for()
    assert store.versions("pima") == [2]
    no_exception(page)

    # A link to the deleted version says so and stays put (no other version shown, the URL kept).
    page.goto(base + "/model_detail?model=pima:1")
    page.get_by_text("pima:1 is not in the store").wait_for()
    settle(page)
    assert page.url.endswith("/model_detail?model=pima%3A1") or page.url.endswith("/model_detail?model=pima:1")
    assert page.get_by_role("heading", name="pima:2").count() == 0
    no_exception(page)
