"""The agent desk in a real Chromium notices the media server's crash and its return:
the embedded Janus is killed, the health check reports it (``media.changed``), the desk
says so, and says so again when the process is back."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from callcenter.actions.staff import log_in
from tests.conftest import load_test_city
from tests.media import harness
from tests.media.conftest import Hotline

pytestmark = pytest.mark.slow


async def test_the_desk_says_when_the_media_server_is_down_and_back(
    hotline: Hotline, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    rt = hotline.rt
    await load_test_city(rt)
    session = await log_in(rt, "agent1", "demo12345")
    media = rt.media
    assert media is not None and media.process is not None and media.process.pid

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=harness.CHROMIUM, headless=True)
        context = await browser.new_context(locale="en", viewport={"width": 1200, "height": 800})
        await context.add_cookies(
            [{"name": "hotline_session", "value": session.token, "url": hotline.url}]
        )
        page = await context.new_page()
        await page.goto(f"{hotline.url}/ui/desk")
        await page.wait_for_selector("#live[data-state=connected]")
        note = page.locator("#media-status")
        assert await note.get_attribute("data-state") == "up"
        assert await note.is_hidden()

        os.kill(media.process.pid, signal.SIGKILL)
        await page.wait_for_selector("#media-status[data-state=down]:not([hidden])", timeout=10_000)
        assert "媒体服务器无响应" in (await note.text_content() or "")  # agent1 reads Chinese
        await page.screenshot(path=str(tmp_path / "desk-media-down.png"))  # looked at by eye

        await page.wait_for_selector("#media-status[data-state=up]:not([hidden])", timeout=20_000)
        assert (await note.text_content() or "").strip() == "媒体服务器已恢复。"
        assert media.nodes["local"].restarts == 1

        await browser.close()
