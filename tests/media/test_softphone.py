"""A caller reaches an agent who answers in the desk, in a real Chromium, through Janus.

Inside the test's network namespace: the hotline with its SIP side (pyVoIP) and its
embedded Janus; a caller (baresip) sending a 350 Hz tone from a file dials in, presses
through the IVR to a person and waits (hears its place, then hold music); an agent in
Chromium (its fake microphone a 1800 Hz tone) becomes available, is offered the call
and accepts it; the desk's softphone bridges itself through Janus's SIP plugin. The
agent's page must hear the caller's tone, the caller's recording the agent's. Then the
agent holds (the caller hears music again), takes the caller back and hangs up.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from sqlalchemy import select

from callcenter.actions.staff import log_in
from callcenter.bootstrap import build_runtime, close_runtime, create_app, start_runtime
from callcenter.clock import ManualClock
from callcenter.store.tables import calls
from tests.conftest import T0, load_test_city, make_settings
from tests.e2e.test_cli import free_port
from tests.e2e.test_sip import baresip_command
from tests.e2e.test_sip_bridge import (
    AGENT_HZ,
    CALLER_HZ,
    heard,
    music_seconds,
    prompt_score,
    seconds_with,
    start_baresip,
    to_the_queue,
)
from tests.media import harness
from tests.media.conftest import Hotline
from tests.voice.tools import free_port_pair, free_udp_port

pytestmark = pytest.mark.slow

AGENT = harness.Fake(int(AGENT_HZ), "green")


@pytest_asyncio.fixture
async def phone_hotline(media_ns: str, tmp_path: Path, sqlite_url: str) -> AsyncIterator[Hotline]:
    """The hotline with its SIP side and its embedded Janus, in the namespace."""
    if shutil.which("baresip") is None:
        pytest.skip("baresip (Debian baresip-core) is not installed")
    port = free_port()
    rtp = free_port_pair()
    plain = build_runtime(make_settings(tmp_path, sqlite_url))
    await start_runtime(plain, start_jobs=False)
    await load_test_city(plain)
    await close_runtime(plain)
    settings = make_settings(
        tmp_path,
        sqlite_url,
        port=port,
        media={
            "janus": "embedded",
            "health_seconds": 0.5,
            "restart_seconds": 0.3,
            "sip_local_ip": "127.0.0.1",
        },
        channels=["channels.simulated:SimulatedSms", "channels.sip:SipChannel"],
        channel_options={
            "sip": {
                "mode": "direct",
                "host": "127.0.0.1",
                "port": free_udp_port(),
                "rtp_low": rtp,
                "rtp_high": rtp + 200,
            }
        },
        voice={"recognizers": {"en": "none", "zh-CN": "none"}, "hold_announce_seconds": 6},
    )
    # working hours (the flow's way to a person), at the clock the tests share
    rt = build_runtime(settings, clock=ManualClock(T0), seed=secrets.randbits(32))
    app = create_app(settings, runtime=rt)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield Hotline(rt, f"http://127.0.0.1:{port}", app)
    finally:
        await runner.cleanup()


async def _call_row(hotline: Hotline) -> Any:
    async with hotline.rt.db.read() as conn:
        return (await conn.execute(select(calls))).first()


async def _until(check: Any, what: str, within: float = 40.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: not within {within}s")


async def _page_hears(page: Any) -> dict[str, Any]:
    tone: dict[str, Any] = await page.evaluate(
        "(async () => { const a = document.getElementById('call-audio');"
        " if (!a || !a.srcObject) return {};"
        " return await window.__mediaProbe.tone(a.srcObject, 800); })()"
    )
    return tone


async def _caller_waits(hotline: Hotline, tmp_path: Path) -> tuple[Any, int]:
    """The caller dials, chooses English and a person, and waits (place, then music)."""
    sip_port = hotline.rt.settings.channel_options["sip"]["port"]
    caller, ctrl = await start_baresip(
        tmp_path / "caller", CALLER_HZ, f"sip:hotline@127.0.0.1:{sip_port}", tmp_path / "c.log"
    )

    try:
        await to_the_queue(hotline.rt, ctrl)
        await asyncio.sleep(10.0)  # the place in the queue, then music
    except BaseException:
        caller.terminate()
        await caller.wait()
        raise
    return caller, ctrl


async def _agent_answers(hotline: Hotline, person: Any) -> Any:
    """agent1 signs in to the desk, becomes available, accepts the ringing call; the
    softphone connects. Returns the page."""
    session = await log_in(hotline.rt, "agent1", "demo12345")
    context = await person.browser.new_context(locale="en", viewport={"width": 1200, "height": 900})
    await context.add_cookies(
        [{"name": "hotline_session", "value": session.token, "url": hotline.url}]
    )
    await context.add_init_script(path=str(harness.PROBE))
    page = await context.new_page()
    await page.goto(f"{hotline.url}/ui/desk")
    await page.click("#presence-available")
    offer = page.locator(".offer.call")
    await offer.wait_for(timeout=20_000)
    assert "+86137****0000" in await offer.inner_text()  # masked until taken
    await offer.locator(".accept").click()
    await page.wait_for_selector("#call-card[data-mine='yes']")
    assert "queue" in await page.inner_text("#call-path")
    assert await page.inner_text("#call-caller") == "+8613700000000"  # in full: it is theirs
    await harness.until(
        page, "document.getElementById('call-status').dataset.state === 'connected'"
    )
    return page


async def test_an_agent_answers_a_caller_in_the_desk_and_they_hear_each_other(
    phone_hotline: Hotline, tmp_path: Path
) -> None:
    hotline = phone_hotline
    rt = hotline.rt
    caller, _ = await _caller_waits(hotline, tmp_path)
    try:
        async with harness.Participants(tmp_path / "fake", [AGENT]) as (person,):
            page = await _agent_answers(hotline, person)
            shown = await page.inner_text("#call-status")
            assert shown and shown == await page.get_attribute("#call-status", "data-connected")
            if os.environ.get("HOTLINE_SCREENSHOTS"):
                await page.screenshot(path=os.environ["HOTLINE_SCREENSHOTS"] + "/desk-call.png")

            async def agent_hears_caller() -> dict[str, Any] | None:
                tone = await _page_hears(page)
                ok = abs(tone.get("hz", 0) - CALLER_HZ) <= 15 and tone.get("share", 0) > 0.3
                return tone if ok else None

            await _until(agent_hears_caller, "the caller's tone at the agent", within=20)
            await asyncio.sleep(4.0)  # the caller hears the agent meanwhile
            await page.click("#call-hold")
            await harness.until(
                page, "document.getElementById('call-status').dataset.state === 'held'"
            )
            await asyncio.sleep(4.0)
            rt.clock.advance(seconds=4)  # type: ignore[attr-defined]
            await page.click("#call-hold")
            await harness.until(
                page, "document.getElementById('call-status').dataset.state === 'connected'"
            )
            await asyncio.sleep(3.0)
            await page.click("#call-hangup")

            async def ended() -> Any:
                row = await _call_row(hotline)
                return row if row is not None and row.ended_at is not None else None

            row = await _until(ended, "the end of the call", within=15)
    finally:
        if caller.returncode is None:
            caller.terminate()
            await caller.wait()
    log = (tmp_path / "c.log").read_text(errors="replace")
    assert row.outcome == "completed" and row.agent_answered_at is not None, log
    assert row.hold_s == 4 and row.held_at is None
    to_caller = heard(tmp_path / "caller")
    agent_seconds = seconds_with(to_caller, AGENT_HZ)
    music = music_seconds(to_caller)
    assert len(agent_seconds) >= 5, (agent_seconds, log)
    assert [s for s in music if s < agent_seconds[0]], music  # music while waiting
    assert [s for s in music if agent_seconds[0] < s < agent_seconds[-1]], music  # on hold
    # the caller heard their place in the queue before the agent answered
    spoken = prompt_score(
        rt, to_caller[: agent_seconds[0] * 8000], "queue_position", "en",
        position="one", minutes="three",
    )  # fmt: skip
    assert spoken > 0.6, spoken


async def test_a_crash_of_janus_mid_call_puts_the_caller_back_in_the_queue(
    phone_hotline: Hotline, tmp_path: Path
) -> None:
    """The media server dies while caller and agent talk: the desk says so, and the
    caller, whose line the hotline keeps, hears the apology and waits again."""
    from sqlalchemy import select as sql_select

    from callcenter.store.tables import conversations

    hotline = phone_hotline
    rt = hotline.rt
    media = rt.media
    assert media is not None and media.process is not None
    caller, ctrl = await _caller_waits(hotline, tmp_path)
    try:
        async with harness.Participants(tmp_path / "fake", [AGENT]) as (person,):
            page = await _agent_answers(hotline, person)
            await asyncio.sleep(3.0)
            assert media.process.pid
            os.kill(media.process.pid, signal.SIGKILL)
            await page.wait_for_selector("#call-media-down:not([hidden])", timeout=10_000)

            async def waiting_again() -> bool:
                async with rt.db.read() as conn:
                    row = (await conn.execute(sql_select(conversations))).one()
                return bool(row.state == "queued")

            await _until(waiting_again, "the caller back in the queue", within=30)
            await asyncio.sleep(7.0)  # the apology
            call = await _call_row(hotline)
            assert call.outcome == "queued" and call.ended_at is None  # the caller is still on
            await baresip_command(ctrl, "hangup")

            async def ended() -> Any:
                row = await _call_row(hotline)
                return row if row is not None and row.ended_at is not None else None

            row = await _until(ended, "the end of the call", within=15)
            assert row.outcome == "abandoned"
    finally:
        if caller.returncode is None:
            caller.terminate()
            await caller.wait()
    heard_by_caller = heard(tmp_path / "caller")
    assert prompt_score(rt, heard_by_caller, "queue_agent_lost", "en") > 0.6
