"""Light visitors: Streamlit's own websocket protocol spoken from Python, no browser.

A browser spends most of a fresh visit loading and drawing Streamlit's front end (the floor app in
``bench.dash`` shows it): eight Chromium pages at once on two cores measure the clients more than
the server. A light visitor does what the front end does on the wire, and nothing else: it opens
``/_stcore/stream`` (a new session), asks for one script run of a page with its query string,
and reads the server's messages until the run has finished, with the page's heading among the
elements it sent (the same "settled" as in Chromium, without the drawing). Its time is the
server's: session, script run, and the messages it sends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from urllib.parse import urlsplit

WAIT_S = 120.0


async def _visit(base: str, path: str, heading: str) -> float:
    # deferred: streamlit's protobufs and its websocket library load only when this group runs
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    url = urlsplit(base + path)
    back = BackMsg()
    back.rerun_script.query_string = url.query
    back.rerun_script.page_name = url.path.strip("/")
    started = time.perf_counter()
    stream = f"ws://{url.netloc}/_stcore/stream"
    async with websockets.connect(stream, subprotocols=["streamlit"], origin=base, max_size=None) as ws:  # type: ignore[list-item, arg-type]
        await ws.send(back.SerializeToString())
        seen = finished = False
        while not (seen and finished):
            msg = ForwardMsg()
            msg.ParseFromString(await asyncio.wait_for(ws.recv(), WAIT_S))
            kind = msg.WhichOneof("type")
            if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                if element.WhichOneof("type") == "heading" and element.heading.body.startswith(heading):
                    seen = True
            elif kind == "script_finished":
                finished = True
        return time.perf_counter() - started


def light_settle_times(base: str, path: str, heading: str, visitors: int = 1) -> list[float]:
    """Seconds from connecting to a finished run showing ``heading``, for ``visitors`` sessions at once."""

    async def together() -> list[float]:
        return list(await asyncio.gather(*(_visit(base, path, heading) for _ in range(visitors))))

    # A thread of its own: Playwright's sync API keeps an event loop in the caller's thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, together()).result()
