"""Staff sign-in through real HTTP: sessions, CSRF on every state change, lockout, logout."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from callcenter.bootstrap import build_runtime, create_app
from callcenter.clock import ManualClock
from tests.conftest import load_test_city, make_settings


@pytest_asyncio.fixture
async def client(tmp_path: Path, sqlite_url: str, clock: ManualClock) -> AsyncIterator[TestClient]:
    settings = make_settings(tmp_path, sqlite_url)
    rt = build_runtime(settings, clock=clock, seed=1)
    async with TestClient(TestServer(create_app(settings, runtime=rt, start_jobs=False))) as c:
        await load_test_city(rt)
        c.rt = rt  # type: ignore[attr-defined]
        yield c


async def login(client: TestClient, user: str, password: str = "demo12345") -> Any:
    await client.get("/ui/login")
    token = client.session.cookie_jar.filter_cookies(client.make_url("/"))["hotline_login_csrf"]
    return await client.post(
        "/ui/login",
        data={"username": user, "password": password, "csrf": token.value},
        allow_redirects=False,
    )


def csrf_of(page: str) -> str:
    import json
    import re

    boot = re.search(r'<script type="application/json" id="boot">(.*?)</script>', page, re.S)
    assert boot is not None
    return str(json.loads(boot.group(1))["csrf"])


async def test_session_cookie_and_csrf(client: TestClient) -> None:
    response = await login(client, "agent1")
    assert response.status == 303 and response.headers["Location"] == "/ui/desk"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = await client.get("/ui/desk")
    assert page.status == 200
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    token = csrf_of(await page.text())
    # the cookie alone does not change anything
    refused = await client.post("/api/acd/presence", json={"presence": "available"})
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "csrf_failed"
    wrong = await client.post(
        "/api/acd/presence", json={"presence": "available"}, headers={"X-CSRF-Token": "x" * 43}
    )
    assert wrong.status == 403
    done = await client.post(
        "/api/acd/presence", json={"presence": "available"}, headers={"X-CSRF-Token": token}
    )
    assert done.status == 200
    me = await client.get("/api/me")  # reading needs no token
    assert (await me.json())["role"] == "agent"
    # logging out ends the session on the server
    out = await client.post("/ui/logout", data={"csrf": token}, allow_redirects=False)
    assert out.status == 303
    assert (await client.get("/api/me")).status == 401


async def test_login_form_needs_its_own_token(client: TestClient) -> None:
    response = await client.post(
        "/ui/login", data={"username": "agent1", "password": "demo12345", "csrf": "forged"}
    )
    assert response.status == 403


async def test_lockout_after_repeated_failures(client: TestClient) -> None:
    for _ in range(5):
        response = await login(client, "agent2", "wrong password")
        assert response.status == 401
    locked = await login(client, "agent2")  # even the right password, for a while
    assert locked.status == 429
    assert "锁定" in await locked.text()
    client.rt.clock.advance(minutes=16)  # type: ignore[attr-defined]
    assert (await login(client, "agent2")).status == 303
    unknown = await login(client, "nobody", "x")
    assert unknown.status == 401


async def test_no_open_redirect(client: TestClient) -> None:
    await client.get("/ui/login")
    token = client.session.cookie_jar.filter_cookies(client.make_url("/"))["hotline_login_csrf"]
    response = await client.post(
        "/ui/login",
        data={
            "username": "supervisor",
            "password": "demo12345",
            "csrf": token.value,
            "next": "//evil.example/",
        },
        allow_redirects=False,
    )
    assert response.headers["Location"] == "/ui/wallboard"
