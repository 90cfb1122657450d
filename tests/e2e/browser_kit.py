"""What the real-browser tests share: the hotline in a thread on a free port (optionally on
a ManualClock), Debian's Chromium driven by Playwright, signing in, screenshots, and a
watch on the console for errors (a blocked inline script or style is one)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from callcenter.bootstrap import build_runtime, create_app
from callcenter.clock import Clock
from callcenter.config import Settings
from callcenter.runtime import Runtime
from callcenter.store.migrate import upgrade
from tests.conftest import load_test_city
from tests.e2e.test_cli import free_port

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path("build/screenshots")


class Server:
    """The hotline in a thread with its own event loop, on a free port."""

    def __init__(self, tmp: Path, *, clock: Clock | None = None, **settings: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        db = self.db = tmp / "callcenter.db"
        self.settings = Settings(
            data_dir=tmp / "data",
            database_url=f"sqlite+aiosqlite:///{db}",
            port=self.port,
            channels=["channels.simulated:SimulatedSms", "channels.webchat:WebChat"],
            **{"media": {"janus": "off"}, "staff": {"two_factor_roles": []}, **settings},
        )
        self.clock = clock
        self.loop = asyncio.new_event_loop()
        self.rt: Runtime
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        await upgrade(f"sqlite+aiosqlite:///{self.db}")
        self.rt = build_runtime(self.settings, clock=self.clock)
        app = create_app(self.settings, runtime=self.rt)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        await load_test_city(self.rt)

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self) -> None:
        self.call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@contextlib.contextmanager
def running_server(tmp: Path, **kwargs: Any) -> Iterator[Server]:
    srv = Server(tmp, **kwargs)
    srv.thread.start()
    assert srv.ready.wait(60)
    try:
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def watch_console(page: Any) -> list[str]:
    """Errors the page logs (a script error, a blocked inline script or style)."""
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(f"{m.text} at {m.location.get('url')}:{m.location.get('lineNumber')}")
            if m.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def new_page(browser: Any, *, locale: str = "zh-CN", **options: Any) -> Any:
    context = browser.new_context(locale=locale, **options)
    context.set_default_timeout(15000)
    page = context.new_page()
    page.console_errors = watch_console(page)
    return page


def sign_in(
    browser: Any, server: Server, username: str, *, locale: str = "zh-CN", **options: Any
) -> Any:
    page = new_page(browser, locale=locale, **options)
    page.goto(server.url + "/ui/login")
    page.fill("#username", username)
    page.fill("#password", "demo12345")
    page.click("#submit")
    page.wait_for_load_state("networkidle")
    assert "/ui/login" not in page.url, page.content()
    return page


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot under build/screenshots/ (look at them)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
