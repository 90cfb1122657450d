"""What browsers reach of the media server, all through the hotline's own origin.

- ``/media/janus/{node}``: a WebSocket relayed frame by frame to that node's
  Janus WebSocket API. It checks nothing itself: Janus does, since every
  request needs a token the hotline added for that participant (``token_auth``).
  Janus's API ports stay on the media hosts' private side; browsers need only
  the hotline's origin and the nodes' RTP ports.
- ``/media/assets/{name}``: ``janus.js`` and ``adapter.js`` from Debian's
  ``libjs-janus-gateway`` and ``libjs-webrtc-adapter``, and the hotline's own
  media scripts; nothing comes from a CDN.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import aiohttp
from aiohttp import WSMsgType, web

from callcenter.api.keys import RUNTIME

log = logging.getLogger(__name__)

DEBIAN_JS = Path("/usr/share/javascript")
OWN_JS = Path(__file__).parent / "static"
ASSETS: dict[str, Path] = {
    "janus.js": DEBIAN_JS / "janus-gateway" / "janus.js",
    "adapter.js": DEBIAN_JS / "webrtc-adapter" / "adapter.js",
}
MAX_FRAME = 256 * 1024
PROTOCOL = "janus-protocol"


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = ASSETS.get(name) or (OWN_JS / name if "/" not in name else None)
    if path is None or not path.is_file() or not name.endswith(".js"):
        raise web.HTTPNotFound()
    return web.FileResponse(
        path, headers={"Content-Type": "text/javascript", "Cache-Control": "max-age=3600"}
    )


async def janus_socket(request: web.Request) -> web.StreamResponse:
    rt = request.config_dict[RUNTIME]
    media = rt.media
    name = request.match_info["node"]
    node = media.nodes.get(name) if media is not None else None
    if node is None:
        raise web.HTTPNotFound()
    if not node.up:
        raise web.HTTPServiceUnavailable(text="media server unavailable")
    browser = web.WebSocketResponse(protocols=(PROTOCOL,), max_msg_size=MAX_FRAME, heartbeat=30)
    await browser.prepare(request)
    session = aiohttp.ClientSession()
    try:
        upstream = await session.ws_connect(
            node.client.node.ws_url, protocols=(PROTOCOL,), max_msg_size=MAX_FRAME
        )
    except (aiohttp.ClientError, OSError) as exc:
        log.warning("media proxy: node %s unreachable: %r", name, exc)
        await session.close()
        await browser.close(code=1011, message=b"media server unavailable")
        return browser

    async def pump(
        source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    ) -> None:
        async for msg in source:
            if msg.type is WSMsgType.TEXT:
                await sink.send_str(msg.data)
            elif msg.type is WSMsgType.BINARY:
                await sink.send_bytes(msg.data)
            else:
                break

    tasks = [
        asyncio.create_task(pump(browser, upstream)),
        asyncio.create_task(pump(upstream, browser)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await upstream.close()
        await session.close()
        await browser.close()
    return browser


def setup_media_routes(app: web.Application) -> None:
    app.router.add_get("/media/janus/{node}", janus_socket)
    app.router.add_get("/media/assets/{name}", asset)
