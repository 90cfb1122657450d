"""Run inside a network namespace (see test_simulated_access.py): the simulated provider's
inbound endpoint, asked from loopback and from an address that is not loopback.

The namespace's ``lo`` carries a second address, 10.200.0.1, which is not a loopback
address: a request to it comes from it, as a request from another machine would come
from that machine's address. Prints one JSON document with what each request got.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import func, select

from callcenter.api.keys import RUNTIME
from callcenter.bootstrap import create_app
from callcenter.config import Settings
from callcenter.store.migrate import upgrade
from callcenter.store.tables import inbox

OTHER = "10.200.0.1"


async def serve(folder: Path, options: dict[str, Any]) -> dict[str, Any]:
    settings = Settings(
        data_dir=folder,
        channels=["channels.simulated:SimulatedSms"],
        channel_options={"sms": options},
        ui=[],
        jobs={"driver": "none"},
    )
    await upgrade(settings.effective_database_url)
    app = create_app(settings, start_jobs=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", 0)
    await site.start()
    port = runner.addresses[0][1]
    rt = app[RUNTIME]
    answers: dict[str, Any] = {}

    async def post(name: str, host: str, headers: dict[str, str] | None = None) -> None:
        body = {"from": "+8613800000000", "text": "退订", "id": f"SIM-{name}"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://{host}:{port}/channels/simulated/sms?lang=en", json=body, headers=headers
            ) as response,
        ):
            answers[name] = [response.status, await response.json()]

    try:
        await post("other", OTHER)
        await post("loopback", "127.0.0.1")
        await post("forwarded", "127.0.0.1", {"X-Forwarded-For": "203.0.113.9"})
        await post("other_token", OTHER, {"Authorization": "Bearer right-token"})
        await post("other_wrong_token", OTHER, {"Authorization": "Bearer wrong"})
        async with rt.db.read() as conn:
            answers["stored"] = sorted(
                (await conn.execute(select(inbox.c.provider_id))).scalars().all()
            )
            answers["count"] = int(await conn.scalar(select(func.count()).select_from(inbox)))
    finally:
        await runner.cleanup()
    return answers


async def main() -> None:
    folder = Path(sys.argv[1])
    print(
        json.dumps(
            {
                "no_token": await serve(folder / "a", {}),
                "token": await serve(folder / "b", {"token": "right-token"}),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
