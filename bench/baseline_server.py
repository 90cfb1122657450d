"""The bare baseline: an aiohttp handler that inserts one row into SQLite and answers.

Same event loop (uvloop when installed), same SQLite driver (aiosqlite) and the
same pragmas as the hotline (WAL, and the synchronous setting named by the third
argument: FULL, the hotline's, by default), nothing else.
"""

from __future__ import annotations

import asyncio
import sys

import aiosqlite
from aiohttp import web


async def make_app(path: str, synchronous: str = "FULL") -> web.Application:
    db = await aiosqlite.connect(path)
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute(f"PRAGMA synchronous={synchronous}")
    await db.execute(
        "CREATE TABLE IF NOT EXISTS inbound (id INTEGER PRIMARY KEY, sender TEXT, body TEXT,"
        " provider_id TEXT UNIQUE)"
    )
    await db.commit()
    lock = asyncio.Lock()

    async def receive(request: web.Request) -> web.Response:
        data = await request.json()
        async with lock:
            cursor = await db.execute(
                "INSERT INTO inbound (sender, body, provider_id) VALUES (?, ?, ?)",
                (data["from"], data["text"], data.get("id")),
            )
            await db.commit()
        return web.json_response({"id": cursor.lastrowid}, status=201)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/sms", receive)
    app.router.add_get("/health", health)
    return app


if __name__ == "__main__":
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    web.run_app(
        make_app(sys.argv[1], *sys.argv[3:4]),
        host="127.0.0.1",
        port=int(sys.argv[2]),
        print=None,
        access_log=None,
    )
