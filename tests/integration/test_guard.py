"""The server-wide guard (callcenter/api/guard.py): headers on every answer, cookie flags,
and rate limits per client address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from callcenter.bootstrap import build_runtime, create_app
from callcenter.clock import ManualClock
from tests.conftest import load_test_city, make_settings

CHAT_SITE = "https://www.minghu.gov.cn"


async def open_server(tmp_path: Path, url: str, clock: ManualClock, **overrides: Any) -> TestClient:
    settings = make_settings(
        tmp_path,
        url,
        channels=["channels.simulated:SimulatedSms", "channels.webchat:WebChat"],
        channel_options={"webchat": {"allowed_origins": [CHAT_SITE]}},
        ui=["agent_ui.app:setup"],
        **overrides,
    )
    rt = build_runtime(settings, clock=clock, seed=2)
    client = TestClient(TestServer(create_app(settings, runtime=rt, start_jobs=False)))
    await client.start_server()
    await load_test_city(rt)
    return client


@pytest_asyncio.fixture
async def client(tmp_path: Path, sqlite_url: str, clock: ManualClock) -> AsyncIterator[TestClient]:
    c = await open_server(tmp_path, sqlite_url, clock)
    yield c
    await c.close()


def directives(policy: str) -> dict[str, str]:
    return {
        part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2]
        for part in policy.split(";")
        if part.strip()
    }


EVERY_KIND = [
    ("GET", "/", 200),
    ("GET", "/ui/login", 200),
    ("GET", "/ui/desk", 302),  # not signed in: to the sign-in page
    ("GET", "/ui/static/ui.js", 200),
    ("GET", "/status", 200),
    ("GET", "/status/status.css", 200),
    ("GET", "/chat/widget.js", 200),
    ("GET", "/api/health", 200),
    ("GET", "/api/openapi.json", 200),
    ("GET", "/api/tickets", 401),
    ("GET", "/no/such/page", 404),
    ("DELETE", "/status", 405),
    ("POST", "/channels/simulated/sms", 400),
]


async def test_every_kind_of_answer_carries_the_security_headers(client: TestClient) -> None:
    for method, path, status in EVERY_KIND:
        response = await client.request(method, path, allow_redirects=False)
        assert response.status == status, (method, path, response.status)
        headers = response.headers
        policy = directives(headers["Content-Security-Policy"])
        assert policy["script-src"] == "'self'", path
        assert policy["style-src"] == "'self'", path
        assert "unsafe-inline" not in headers["Content-Security-Policy"], path
        assert "unsafe-eval" not in headers["Content-Security-Policy"], path
        assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'", path
        assert policy["frame-ancestors"] == "'none'", path
        assert headers["X-Frame-Options"] == "DENY", path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "same-origin", path
        assert "microphone=(self)" in headers["Permissions-Policy"], path
        private = path.startswith(("/api/", "/ui/")) and "/static/" not in path
        assert (headers.get("Cache-Control") == "no-store") == private, path


async def test_only_the_chat_page_may_be_framed_and_only_by_the_widgets_sites(
    client: TestClient,
) -> None:
    response = await client.get("/chat/")
    assert response.status == 200
    assert directives(response.headers["Content-Security-Policy"])["frame-ancestors"] == CHAT_SITE
    assert "X-Frame-Options" not in response.headers


async def test_every_cookie_is_httponly_and_samesite(client: TestClient) -> None:
    response = await client.get("/ui/login")
    raw = response.headers.getall("Set-Cookie")
    assert raw
    response = await client.post(
        "/ui/lang", json={"locale": "en"}, headers={"Content-Type": "application/json"}
    )
    assert response.status == 200
    raw += response.headers.getall("Set-Cookie")
    for cookie in raw:
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie


async def test_behind_https_cookies_are_secure_and_hsts_is_sent(
    tmp_path: Path, sqlite_url: str, clock: ManualClock
) -> None:
    c = await open_server(tmp_path, sqlite_url, clock, public_url="https://hotline.example.gov.cn")
    try:
        response = await c.get("/ui/login")
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        for cookie in response.headers.getall("Set-Cookie"):
            assert "Secure" in cookie
        policy = directives(response.headers["Content-Security-Policy"])
        assert "wss://hotline.example.gov.cn" in policy["connect-src"]
    finally:
        await c.close()


async def login(client: TestClient, username: str, password: str) -> int:
    page = await client.get("/ui/login")
    assert page.status == 200
    jar = client.session.cookie_jar.filter_cookies(client.make_url("/"))
    token = jar["hotline_login_csrf"].value
    response = await client.post(
        "/ui/login",
        data={"username": username, "password": password, "csrf": token},
        allow_redirects=False,
    )
    return response.status


async def test_failed_sign_ins_from_one_address_are_limited_across_accounts(
    tmp_path: Path, sqlite_url: str, clock: ManualClock
) -> None:
    c = await open_server(tmp_path, sqlite_url, clock, security={"failed_logins_per_ip": 5})
    try:
        # many successful sign-ins from one office address are not limited
        for _ in range(8):
            assert await login(c, "agent1", "demo12345") == 303
        # password spraying: one try per account, so no account locks by itself
        users = ["agent2", "agent3", "supervisor", "admin", "mh-water", "mh-municipal"]
        answers = [await login(c, user, "123456") for user in users]
        assert answers[:5] == [401] * 5 and answers[5] == 429
        assert await login(c, "agent1", "demo12345") == 429  # until the lock ends
        clock.advance(timedelta(minutes=16))
        assert await login(c, "agent1", "demo12345") == 303
    finally:
        await c.close()


async def test_wrong_api_tokens_from_one_address_are_limited(
    tmp_path: Path, sqlite_url: str, clock: ManualClock
) -> None:
    c = await open_server(tmp_path, sqlite_url, clock, security={"bad_tokens_per_ip": 3})
    try:
        for i in range(3):
            response = await c.get("/api/me", headers={"Authorization": f"Bearer guess-{i}"})
            assert response.status == 401
        response = await c.get("/api/me", headers={"Authorization": "Bearer guess-x"})
        assert response.status == 429 and int(response.headers["Retry-After"]) > 0
        body = await response.json()
        assert body["error"]["code"] == "rate_limited"
        response = await c.get("/api/me", headers={"Authorization": "Bearer demo-agent1"})
        assert response.status == 429  # locked for every token from there
        assert (await c.get("/api/health")).status == 200  # no token: not concerned
    finally:
        await c.close()


async def test_web_chat_connections_from_one_address_are_limited(
    tmp_path: Path, sqlite_url: str, clock: ManualClock
) -> None:
    c = await open_server(tmp_path, sqlite_url, clock, security={"chat_connections_per_ip": 3})
    try:
        for _ in range(3):
            ws = await c.ws_connect("/chat/ws", headers={"Origin": CHAT_SITE})
            await ws.close()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await c.ws_connect("/chat/ws", headers={"Origin": CHAT_SITE})
        assert refused.value.status == 429
    finally:
        await c.close()
