"""The dashboard as visitors meet it: ``streamlit run`` served to Chromium, driven by Playwright.

A page has *settled* when the app's script state is ``notRunning`` (the ``data-test-script-state``
of Streamlit's app root) and the page's heading is visible. An init script in each browser
context polls for that every 10 ms and keeps the wall-clock time it first held, so eight pages
opened at once are each timed by themselves, not in the order the benchmark asks about them.
Each sample runs from just before ``page.goto`` to that moment. The notes give the floor: a
one-heading Streamlit app served and visited the same way, in the same run.

- ``dash_train_cold``, ``dash_detail_cold``: a new ``streamlit run`` for each sample (its health
  endpoint answering), then the first page (Train) or a Model detail deep link (``?model=``).
- ``dash_detail_fresh``: a new browser context (no cookies, no session) opening the deep link on
  a server that has already served a page.
- ``dash_detail_8_browser``: 8 contexts of one browser open the deep link at once; the subject is
  the median of their settle times, the baseline one visitor alone, rounds interleaved. Reported
  only: on two cores the 8 browser contexts take most of the CPU (the floor app shows it).
- ``dash_detail_after_upload`` (issue 15): on that server, fresh loads of the lightest page
  (Upload) and of the deep link, interleaved; the figure is the deep link's median minus
  Upload's (each sample is shown less Upload's median, so the median is that difference).
- ``dash_detail_8_visitors`` (target <= 2x): the 8 visitors as light clients (``bench.dash_clients``:
  the websocket protocol without a browser), so the clients cannot starve the server of CPU.

Chromium is ``/usr/bin/chromium`` (``MODELSHELF_CHROMIUM``) with the tests' arguments; without it
(or without Playwright) every figure says "skipped: <why>", which CI does not accept.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.dash_clients import light_settle_times
from bench.machine import cached_bytecode_env
from bench.timing import Samples

if TYPE_CHECKING:
    from bench.figures import Bench, Figure

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("MODELSHELF_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
VISITORS = 8
WAIT_MS = 120_000
#: The floor: a Streamlit app that draws one heading, served and visited the same way.
FLOOR_APP = 'import streamlit as st\n\nst.title("Floor")\n'

#: Installed in every page of a context before its scripts run: records when the page settled.
_WATCH = """
(() => {
  const heading = %r;
  const timer = setInterval(() => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return;
    const shown = Array.from(document.querySelectorAll('h1')).some(
      (h) => h.offsetParent !== null && h.textContent.trim().startsWith(heading));
    if (!shown) return;
    window.__settledAt = Date.now();
    clearInterval(timer);
  }, 10);
})();
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def served(
    store: Path | None, log: Path, script: str = "streamlit_app.py", env: dict[str, str] | None = None
) -> Iterator[str]:
    """``streamlit run SCRIPT`` over ``store`` until its health endpoint answers; its base URL.

    The one way the benchmark and the browser tests start a server; ``env`` adds to (or, with
    ``store=None``, replaces the store of) the inherited environment, e.g. a demo flag or the
    index and artifacts URLs of a shared store.
    """
    port = _free_port()
    command = [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true"]
    command += ["--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    stored = {"MODEL_STORE": str(store)} if store else {}
    env = {**cached_bytecode_env(), "MODELSHELF_DEMO": "0", **stored, **(env or {})}
    base = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"streamlit exited with {process.returncode}; see {log}")
                with (
                    contextlib.suppress(OSError),
                    urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer,
                ):
                    if answer.read().strip() == b"ok":
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not become healthy in 90 s; see {log}")
                time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


def settle_times(browser: Any, url: str, heading: str, visitors: int = 1) -> list[float]:
    """Seconds from ``goto`` to settled for ``visitors`` new contexts opening ``url`` at once."""
    contexts = [browser.new_context() for _ in range(visitors)]
    try:
        pages = []
        for context in contexts:
            context.add_init_script(_WATCH % heading)
            pages.append(context.new_page())
        started = time.time()
        for page in pages:  # "commit": the request is answered; the app then loads by itself
            page.goto(url, wait_until="commit")
        for page in pages:
            page.wait_for_function("() => window.__settledAt !== undefined", timeout=WAIT_MS, polling=50)
        return [page.evaluate("() => window.__settledAt") / 1000 - started for page in pages]
    finally:
        for context in contexts:
            context.close()


def _why_not() -> str | None:
    if not CHROMIUM.exists():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -r requirements-dev.txt)"
    return None


def dash_figures(bench: Bench) -> None:
    """``dash_train_cold``, ``dash_detail_cold``, ``dash_detail_fresh``, ``dash_detail_8_browser``,
    ``dash_detail_after_upload``, ``dash_detail_8_visitors``."""
    from bench.figures import Figure, save_workload

    runs = {"full": 5, "quick": 3}.get(bench.scale.name, 1)
    cold = {
        "train": Figure(
            "dash_train_cold",
            "Train page, first load after streamlit run starts",
            "pima",
            "settle time",
            "",
            "under",
            3.0,
        ),
        "detail": Figure(
            "dash_detail_cold",
            "Model detail deep link, first load after streamlit run starts",
            "pima",
            "settle time",
            "",
            "under",
            3.0,
        ),
    }
    fresh = Figure(
        "dash_detail_fresh", "Model detail deep link, a new browser context on a warm server", "pima", "settle time"
    )
    crowd = Figure(
        "dash_detail_8_browser",
        f"Model detail deep link, {VISITORS} visitors at once (one browser, {VISITORS} contexts)",
        "pima",
        f"median settle of {VISITORS}",
        "one visitor alone",
        kind="at_most",
        target=None,
    )
    after_upload = Figure(
        "dash_detail_after_upload",
        "Model detail deep link, fresh load, settled after Upload's (median of each, same server)",
        "pima",
        "detail minus Upload",
        "",
        "under",
        0.5,
    )
    light = Figure(
        "dash_detail_8_visitors",
        f"Model detail deep link, {VISITORS} light clients at once (websocket protocol, no browser)",
        "pima",
        f"median settle of {VISITORS}",
        "one light client alone",
        kind="at_most",
        target=2.0,
    )
    figures = [*cold.values(), fresh, crowd, after_upload, light]
    why = _why_not()
    if why is not None:
        for figure in figures:
            figure.unavailable = f"skipped: {why}"
            bench.figures.append(figure)
            bench.log(f"- {figure.key}: {figure.unavailable}")
        return
    from playwright.sync_api import sync_playwright

    folder = bench.fresh_dir("dash")
    store_path, log = folder / "store", folder / "streamlit.log"
    from core import Store

    store = Store(store_path)
    try:
        ref = f"bench:{save_workload(store, bench.work('pima'), 'bench')['version']}"
    finally:
        store.close()
    label = f"{bench.work('pima').label}, one version"
    pages = {
        "train": ("/", "Train a model"),
        "detail": (f"/model_detail?model={ref}", "Model detail"),
        "upload": ("/upload", "Upload a model"),
    }

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:

            def first_load(fig: Figure, page: str) -> None:
                fig.workload = label
                path, heading = pages[page]
                values = []
                for _ in range(runs):
                    with served(store_path, log) as base:
                        values += settle_times(browser, base + path, heading)
                fig.subject = Samples(values)
                fig.note = f"{runs} server start(s), median; timed from goto once /_stcore/health answers"

            for page, figure in cold.items():
                bench.add(figure, lambda f, page=page: first_load(f, page))
            with served(store_path, log) as base:
                path, heading = pages["detail"]
                settle_times(browser, base + pages["train"][0], pages["train"][1])  # the server has served a page

                def warm(fig: Figure) -> None:
                    fig.workload = label
                    fig.subject = Samples([settle_times(browser, base + path, heading)[0] for _ in range(runs)])

                def together(fig: Figure) -> None:
                    fig.workload = label
                    alone, crowded, worst = [], [], []
                    for _ in range(runs):
                        alone.append(settle_times(browser, base + path, heading)[0])
                        times = settle_times(browser, base + path, heading, VISITORS)
                        crowded.append(statistics.median(times))
                        worst.append(max(times))
                    fig.baseline, fig.subject = Samples(alone), Samples(crowded)
                    fig.note = f"slowest of the {VISITORS} per round: " + ", ".join(f"{w:.2f} s" for w in worst)

                def after(fig: Figure) -> None:
                    fig.workload = label
                    lightest, detail = [], []
                    for _ in range(max(runs, 5)):  # issue 15 asks for 5 of each
                        lightest.append(settle_times(browser, base + pages["upload"][0], pages["upload"][1])[0])
                        detail.append(settle_times(browser, base + path, heading)[0])
                    floor = statistics.median(lightest)
                    fig.subject = Samples([d - floor for d in detail])
                    fig.note = (
                        f"Upload {floor:.2f} s, deep link {statistics.median(detail):.2f} s "
                        f"(medians of {len(detail)} fresh contexts each, interleaved)"
                    )

                def light_crowd(fig: Figure) -> None:
                    fig.workload = label
                    alone, crowded, worst = [], [], []
                    for _ in range(max(runs, 7)):  # 8 at once spread widely: 7 rounds
                        alone.append(light_settle_times(base, path, heading)[0])
                        times = light_settle_times(base, path, heading, VISITORS)
                        crowded.append(statistics.median(times))
                        worst.append(max(times))
                    fig.baseline, fig.subject = Samples(alone), Samples(crowded)
                    fig.note = f"slowest of the {VISITORS} per round: " + ", ".join(f"{w * 1000:.0f} ms" for w in worst)

                # The light crowd first: after the browser crowds, Chromium's closing contexts still
                # take CPU, the very thing light clients are there to keep out of the figure.
                bench.add(light, light_crowd)
                bench.add(fresh, warm)
                bench.add(crowd, together)
                bench.add(after_upload, after)
            floor_script = folder / "floor_app.py"
            floor_script.write_text(FLOOR_APP)
            with served(store_path, log, str(floor_script)) as base:
                first = settle_times(browser, base + "/", "Floor")[0]  # its first load after start
                alone, crowded, light_alone, light_crowded = [], [], [], []
                for _ in range(runs):
                    alone.append(settle_times(browser, base + "/", "Floor")[0])
                    crowded.append(statistics.median(settle_times(browser, base + "/", "Floor", VISITORS)))
                    light_alone.append(light_settle_times(base, "/", "Floor")[0])
                    light_crowded.append(statistics.median(light_settle_times(base, "/", "Floor", VISITORS)))
            floor = (
                f"the floor, a one-heading Streamlit app in the same browser: alone {statistics.median(alone):.2f} s, "
                f"{VISITORS} at once {statistics.median(crowded):.2f} s median "
                f"({statistics.median(crowded) / statistics.median(alone):.1f}x)"
            )
            for figure in (fresh, crowd):
                figure.note = "; ".join(x for x in (figure.note, floor) if x)
            for figure in cold.values():
                figure.note += f"; the floor app's first load after its start: {first:.2f} s"
            light_floor = (
                f"the floor, a one-heading Streamlit app, light clients: alone {statistics.median(light_alone):.2f} s, "
                f"{VISITORS} at once {statistics.median(light_crowded):.2f} s median "
                f"({statistics.median(light_crowded) / statistics.median(light_alone):.1f}x)"
            )
            light.note = "; ".join(x for x in (light.note, light_floor) if x)
            bench.log(f"  {floor}")
            bench.log(f"  {light_floor}")
        finally:
            browser.close()
