"""``callcenter serve`` with the Twilio SMS channel, in a real subprocess, against the stand-in.

The whole loop over real HTTP: Twilio (the stand-in) posts a signed incoming
SMS, the server makes a ticket, its in-process executor sends the receipt
through the real ``twilio`` client, and the stand-in's signed status
callbacks ("sent", then "delivered") come back to the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from channels.twilio.sms import INBOUND_PATH
from tests.e2e.test_cli import free_port, run
from tests.fakes.twilio_api import TwilioStandIn

pytestmark = pytest.mark.slow

OUR = "+14155550100"


def _serve(tmp_path: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "callcenter.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def _get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url, headers={"Authorization": "Bearer demo-agent1"}) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_an_sms_through_twilio_becomes_a_ticket_and_its_receipt_is_delivered(
    tmp_path: Path,
) -> None:
    run(tmp_path, "migrate")
    run(tmp_path, "demo-data", "--tickets", "5", "--days", "2")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with TwilioStandIn(numbers=[OUR], auto_status=0.05) as standin:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
        env.update(
            CALLCENTER_PUBLIC_URL=base,
            CALLCENTER_CHANNELS='["channels.twilio.sms:TwilioSms"]',
            CALLCENTER_CHANNEL_OPTIONS=json.dumps(
                {
                    "sms": {
                        "account_sid": standin.account_sid,
                        "auth_token": standin.auth_token,
                        "from_number": OUR,
                        "api_base_url": standin.base_url,
                    }
                }
            ),
        )
        server = _serve(tmp_path, port, env)
        try:
            async with aiohttp.ClientSession() as session:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        async with session.get(base + "/api/health") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    assert server.poll() is None, server.stdout.read()  # type: ignore[union-attr]
                    assert time.monotonic() < deadline, "the server did not start"
                    await asyncio.sleep(0.1)

                status, text = await standin.send_inbound(
                    base + INBOUND_PATH, "+8613900001111", "港湾路垃圾没人清运", OUR
                )
                assert status == 200 and "<Response" in text
                # stored before the 200; the server's inbox driver handles it right after
                deadline = time.monotonic() + 20
                while True:
                    with sqlite3.connect(tmp_path / "data" / "callcenter.db") as db:
                        found = db.execute(
                            "SELECT id FROM conversations WHERE address = '+8613900001111'"
                        ).fetchall()
                    if found:
                        [(conversation_id,)] = found
                        break
                    assert time.monotonic() < deadline, "the text was not handled"
                    await asyncio.sleep(0.05)

                deadline = time.monotonic() + 20
                while True:
                    conversation = await _get(
                        session, f"{base}/api/conversations/{conversation_id}"
                    )
                    last = conversation["messages"][-1]
                    if last["direction"] == "out" and last["status"] == "delivered":
                        break
                    assert time.monotonic() < deadline, f"last message: {last}"
                    await asyncio.sleep(0.1)
        finally:
            server.terminate()
            server.wait(10)

    # the demo city's own queued notices may go out through Twilio too (outside quiet hours)
    [sent] = [m for m in standin.accepted if m["to"] == "+8613900001111"]
    assert sent["to"] == "+8613900001111" and sent["from"] == OUR
    assert sent["body"] == last["body"] and "工单号" in sent["body"]
